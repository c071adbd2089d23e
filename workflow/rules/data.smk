# Data: real downloads at paper scale, the synthetic COCO-format dataset at smoke scale.
# stages.download writes <data_root>/<dataset>/.complete.json last, so a job depends on that one file.


rule data:
    output:
        f"{DATA_ROOT}/{{dataset}}/.complete.json",
    wildcard_constraints:
        dataset="coco|aic|mpii|crowdpose|imagenet",
    params:
        py=PY,
        command=lambda wildcards: REG.download_command(wildcards.dataset),
    log:
        f"logs/{SCALE}/data-{{dataset}}.log",
    conda:
        CONDA_ENV
    shell:
        "{params.py} {params.command} 2> {log}"


# MAE pre-training sets (Table 3): an index of each set's images (person crops or whole images of COCO /
# AIC train, or ImageNet's class folders), built once and read by every pre-training run on the set.
rule pretrain_data:
    input:
        unpack(lambda wildcards: REG.pretrain_index_inputs(wildcards.set)),
    output:
        f"{DATA_ROOT}/pretrain/{{set}}.json",
    wildcard_constraints:
        set="|".join(re.escape(s) for s in PRETRAIN_SOURCES),
    params:
        py=PY,
        command=lambda wildcards: REG.pretrain_index_command(wildcards.set),
    log:
        f"logs/{SCALE}/pretrain-data-{{set}}.log",
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
