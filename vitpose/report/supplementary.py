"""The supplementary table the paper defers (§4.2, "results on other datasets are available in the
supplementary"): every multi-dataset run's score on every dataset it trained on, each through its own
decoder. Read from metrics.json `per_dataset`; written as `supplementary_multi_dataset.md`."""
from __future__ import annotations

from vitpose.report.markdown import escape

# The headline metric of each dataset (fractions in metrics.json, shown x100 with one decimal as the
# paper prints AP): COCO-style AP, CrowdPose AP, MPII PCKh@0.5.
PRIMARY = {"coco": "AP", "aic": "AP", "crowdpose": "AP", "mpii": "PCKh"}
ORDER = ("coco", "aic", "mpii", "crowdpose")
FILE = "supplementary_multi_dataset.md"


def multi_dataset_runs(metrics: list[dict]) -> list[dict]:
    return sorted((m for m in metrics if m.get("per_dataset")), key=lambda m: m["run"])


def _cell(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def supplementary_markdown(metrics: list[dict], scale: str, synthetic: bool) -> str:
    """The table (one row per multi-dataset run, one column per dataset), with notes the runs carry."""
    runs = multi_dataset_runs(metrics)
    lines = ["# Supplementary: multi-dataset runs scored on every dataset they trained on", ""]
    if synthetic:
        lines += ["> **SMOKE SCALE: synthetic data, not a reproduction.**", ""]
    lines += [f"Scale `{scale}`. Each dataset's val split through that dataset's own decoder: "
              + ", ".join(f"{d.upper() if d != 'crowdpose' else 'CrowdPose'} {PRIMARY[d]}" for d in ORDER)
              + " (×100). The paper gives none of these numbers (its supplementary is not public), "
                "so there is no paper column. AIC, MPII and CrowdPose use ground-truth boxes.", ""]
    if not runs:
        return "\n".join(lines + ["No multi-dataset run has metrics yet.", ""])
    used = [d for d in ORDER if any(d in m["per_dataset"] for m in runs)]
    lines += ["| run | serves | " + " | ".join(f"{d} {PRIMARY[d]}" for d in used) + " |",
              "|---|---|" + "---:|" * len(used)]
    notes = []
    for m in runs:
        serves = ", ".join(f"T{s['table']} `{escape(s['row'])}`" for s in m["serves"]) or "—"
        cells = [_cell(m["per_dataset"].get(d, {}).get(PRIMARY[d])) if d in m["per_dataset"] else ""
                 for d in used]
        lines.append(f"| `{m['run']}` | {serves} | " + " | ".join(cells) + " |")
        notes += [f"`{m['run']}`: {escape(n)}" for n in m.get("notes") or []]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines + [""])
