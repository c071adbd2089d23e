# COCO evaluation of a trained run: writes metrics.json, the only input of the report stage.


rule evaluate:
    input:
        unpack(finetune_inputs),
        checkpoint="results/{scale}/{run}/model.pth",
        benchmark="results/{scale}/{run}/benchmark.json",
    output:
        metrics="results/{scale}/{run}/metrics.json",
        keypoints="results/{scale}/{run}/results_keypoints.json",
    wildcard_constraints:
        run=AVAILABLE_RE,
    params:
        py=PY,
        launch=LAUNCH_ARGS,
        config_hash=run_hash,
    threads: 1
    resources:
        gpu=1,
    log:
        "logs/{scale}/{run}/evaluate.log",
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads} {params.py} -m stages.evaluate --run {wildcards.run} "
        "--scale {wildcards.scale} {params.launch} 2> {log}"
