# Finetuning: one job per run. Resumable state lives in work/<scale>/<run>/ (not a declared output),
# so a killed or preempted job resumes instead of starting again.


rule finetune:
    input:
        unpack(finetune_inputs),
    output:
        "results/{scale}/{run}/model.pth",
    wildcard_constraints:
        run=AVAILABLE_RE,
    params:
        py=PY,
        launch=LAUNCH_ARGS,
        config_hash=run_hash,
        summary=summary,
    threads: 1
    resources:
        gpu=1,
    message:
        "finetune {wildcards.run}: {params.summary}"
    log:
        "logs/{scale}/{run}/finetune.log",
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads} {params.py} -m stages.finetune --run {wildcards.run} "
        "--scale {wildcards.scale} {params.launch} 2> {log}"


# Runs that need a capability this code base does not have yet. They are part of the DAG (a dry run
# lists them) but produce no numbers: `unavailable.json` records why, for the report's index; asking
# for such a run's metrics fails at once with the name of the missing capability.
rule unavailable:
    output:
        "results/{scale}/{run}/unavailable.json",
    wildcard_constraints:
        run=UNAVAILABLE_RE,
    params:
        py=PY,
        summary=summary,
    message:
        "unavailable {wildcards.run}: {params.summary}"
    log:
        "logs/{scale}/{run}/unavailable.log",
    conda:
        CONDA_ENV
    shell:
        "{params.py} -m workflow.registry unavailable {wildcards.run} --scale {wildcards.scale} "
        "--out {output} 2> {log}"


rule unavailable_metrics:
    output:
        "results/{scale}/{run}/metrics.json",
    wildcard_constraints:
        run=UNAVAILABLE_RE,
    params:
        py=PY,
    log:
        "logs/{scale}/{run}/finetune.log",
    conda:
        CONDA_ENV
    shell:
        "{params.py} -m stages.finetune --run {wildcards.run} --scale {wildcards.scale} 2> {log}"
