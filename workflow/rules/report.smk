# The report: tables and Figure 1 from metrics.json files only, plus the target rules.
#
# A target names its runs' metrics.json as well as its table: Snakemake does not rebuild a missing input
# of an output that exists and is newer than its other inputs, so a table written by hand (or by a run
# that produced some rows) would otherwise keep "—" cells whose runs can be produced. Listed here, a
# missing metrics file is produced, and then the table is older than its inputs and rebuilt.


for _n in TABLES:

    rule:
        name:
            f"report_table{_n}"
        input:
            table_metrics(_n),
            "params.yaml",
        output:
            f"paper_tables/{SCALE}/table{_n}.tex",
            f"paper_tables/{SCALE}/table{_n}.md",
            *([f"paper_tables/{SCALE}/supplementary_multi_dataset.md"] if _n == 7 else []),
        params:
            py=PY,
            scale=SCALE,
            resolved=REPORT_PARAMS,
            n=_n,
        log:
            f"logs/{SCALE}/report-table{_n}.log",
        conda:
            CONDA_ENV
        shell:
            "{params.py} -m stages.tables --scale {params.scale}{params.resolved} --tables {params.n} 2> {log}"

    rule:
        name:
            f"table{_n}"
        input:
            lambda wildcards, n=_n: blocked(n),
            f"paper_tables/{SCALE}/table{_n}.tex",
            table_metrics(_n),
        default_target: False


rule report_figure1:
    input:
        table_metrics(9),
        "params.yaml",
    output:
        f"paper_tables/{SCALE}/figure1_pareto.pdf",
        f"paper_tables/{SCALE}/figure1_pareto.png",
        f"paper_tables/{SCALE}/figure1_pareto.csv",
    params:
        py=PY,
        scale=SCALE,
        resolved=REPORT_PARAMS,
    log:
        f"logs/{SCALE}/report-figure1.log",
    conda:
        CONDA_ENV
    shell:
        "{params.py} -m stages.tables --scale {params.scale}{params.resolved} --figure1 2> {log}"


rule figure1:
    input:
        f"paper_tables/{SCALE}/figure1_pareto.png",
        table_metrics(9),


rule report_all:
    input:
        [r.metrics for r in EVALUATED],
        [r.file("curve") for r in EVALUATED],
        [f"{r.result_dir}/unavailable.json" for r in UNAVAILABLE],
        [r.file("testdev_record") for r in TESTDEV],
        # the COCO server's scores once imported by hand (never asked for here: a manual step)
        [r.metrics for r in TESTDEV if Path(r.metrics).exists()],
        [r.metrics for r in RELEASED_IN_PLACE],
        # Figure 3 draws one run's val predictions (workflow/registry.py FIGURE3_ROW)
        [REG.figure3_run().file("keypoints")] if REG.figure3_run() else [],
        "params.yaml",
    output:
        f"paper_tables/{SCALE}/index.md",
        f"paper_tables/{SCALE}/index.html",
    params:
        py=PY,
        scale=SCALE,
        resolved=REPORT_PARAMS,
    log:
        f"logs/{SCALE}/report.log",
    conda:
        CONDA_ENV
    shell:
        "{params.py} -m stages.tables --scale {params.scale}{params.resolved} 2> {log}"


rule all:
    input:
        f"paper_tables/{SCALE}/index.md",
        [r.metrics for r in EVALUATED],
        [r.file("testdev_record") for r in TESTDEV],
        [r.metrics for r in RELEASED_IN_PLACE],
    default_target: True


# The authors' released checkpoints evaluated here (params.yaml `released`); Tables 2 and 9 show them
# beside ours once their metrics exist (`snakemake table2`, or `python -m stages.tables`).
rule released:
    input:
        [r.metrics for r in RELEASED],
    default_target: False
