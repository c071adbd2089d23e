# Finetuning: one job per run. Resumable state lives in work/<scale>/<run>/ (not a declared output),
# so a killed or preempted job resumes instead of starting again.


rule finetune:
    input:
        unpack(finetune_inputs),
    output:
        "results/{scale}/{run}/model.pth",
    params:
        py=PY,
        config_hash=run_hash,
    threads: 2
    resources:
        gpu=1,
    log:
        "logs/{scale}/{run}/finetune.log",
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads} {params.py} -m stages.finetune --run {wildcards.run} "
        "--scale {wildcards.scale} 2> {log}"
