# Data: real downloads at paper scale, the synthetic COCO-format dataset at smoke scale.
# stages.download writes <data_root>/<dataset>/.complete.json last, so a job depends on that one file.


rule data:
    output:
        f"{DATA_ROOT}/{{dataset}}/.complete.json",
    wildcard_constraints:
        dataset="coco|aic|mpii|crowdpose",
    params:
        py=PY,
        scale=SCALE,
        data_root=lambda wildcards, output: str(Path(output[0]).parent.parent),
    log:
        f"logs/{SCALE}/data-{{dataset}}.log",
    conda:
        CONDA_ENV
    shell:
        "{params.py} -m stages.download {wildcards.dataset} --scale {params.scale} "
        "--data-root {params.data_root} 2> {log}"


rule weights:
    output:
        f"{DATA_ROOT}/weights/{{name}}.pth",
    params:
        py=PY,
        scale=SCALE,
        data_root=lambda wildcards, output: str(Path(output[0]).parent.parent),
    log:
        f"logs/{SCALE}/weights-{{name}}.log",
    conda:
        CONDA_ENV
    shell:
        "{params.py} -m stages.download {wildcards.name} --scale {params.scale} "
        "--data-root {params.data_root} 2> {log}"
