# Throughput (inference) and training memory of a run's architecture: Tables 5, 6, 8 and 9.
# Needs only the architecture, not trained weights, so it runs beside finetuning.


rule benchmark:
    output:
        "results/{scale}/{run}/benchmark.json",
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
        "logs/{scale}/{run}/benchmark.log",
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads} {params.py} -m stages.benchmark --run {wildcards.run} "
        "--scale {wildcards.scale} --out {output} {params.launch} 2> {log}"
