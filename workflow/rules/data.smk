# Data: real downloads at paper scale, the synthetic COCO-format dataset at smoke scale.
# stages.download writes <data_root>/<dataset>/.complete.json last, so a job depends on that one file.


rule data:
    output:
        f"{DATA_ROOT}/{{dataset}}/.complete.json",
    wildcard_constraints:
        dataset="coco|aic|mpii|crowdpose",
    params:
        py=PY,
        command=lambda wildcards: REG.download_command(wildcards.dataset),
    log:
        f"logs/{SCALE}/data-{{dataset}}.log",
    conda:
        CONDA_ENV
    shell:
        "{params.py} {params.command} 2> {log}"


rule weights:
    output:
        f"{DATA_ROOT}/weights/{{name}}.pth",
    params:
        py=PY,
        command=lambda wildcards: REG.download_command(wildcards.name),
    log:
        f"logs/{SCALE}/weights-{{name}}.log",
    conda:
        CONDA_ENV
    shell:
        "{params.py} {params.command} 2> {log}"
