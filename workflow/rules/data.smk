# Data: real downloads at paper scale, the synthetic COCO-format dataset at smoke scale.
# stages.download writes <data_root>/<dataset>/.complete.json last, so a job depends on that one file.


rule data:
    output:
        f"{DATA_ROOT}/{{dataset}}/.complete.json",
    wildcard_constraints:
        dataset="|".join(re.escape(d) for d in [*DATASET_FILES, "imagenet"]),
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


# Downloaded weights (MAE backbones, the authors' released checkpoints under weights/vitpose/): a
# download, or a manual item whose instructions the download stage prints. At a synthetic scale nothing
# is released: a released checkpoint is a file a person (or a test) saves there in the released format.
rule weights:
    output:
        f"{DATA_ROOT}/weights/{{name}}.pth",
    params:
        py=PY,
        command=lambda wildcards, output: REG.weights_command(output[0]),
        shown=lambda wildcards, output: (
            f"{PY} {REG.weights_command(output[0])}" if REG.weights_command(output[0])
            else "no released checkpoint at a synthetic scale: save one here in the released format"
        ),
    message:
        "weights {output}: {params.shown}"
    log:
        f"logs/{SCALE}/weights-{{name}}.log",
    conda:
        CONDA_ENV
    run:
        if params.command is None:
            raise WorkflowError(
                f"{output[0]}: no released checkpoint at the synthetic scale {SCALE!r}: save one there in the "
                "released format (e.g. a smoke run's model.pth) to evaluate it; `snakemake all` leaves such "
                "runs out until their file exists"
            )
        shell("{params.py} {params.command} 2> {log}")
