# The jobs of every run: one rule per job kind declared in workflow/kinds.py (config, finetune,
# benchmark, evaluate, and whatever an extension registers). Inputs and outputs come from the registry,
# so Snakemake's DAG and DVC's generated stages (workflow/dvcgen.py) have the same edges.
#
# `config` writes results/<scale>/<run>/config.json from the registry resolved in this process (overrides
# included); every other job reads that file and nothing else for its run. Resumable state lives in
# work/<scale>/<run>/ (not a declared output), so a killed or preempted job resumes instead of restarting.


rule config:
    output:
        "results/{scale}/{run}/config.json",
    wildcard_constraints:
        run=AVAILABLE_RE,
    params:
        config_hash=run_hash,
        summary=summary,
    message:
        "config {wildcards.run}: {params.summary}"
    log:
        "logs/{scale}/{run}/config.log",
    run:
        doc = REG.write_config(wildcards.run, output[0])
        Path(log[0]).write_text(f"{output[0]}: config_hash {doc['config_hash']}\n")


for _kind in (k for k in KINDS if k.module is not None and not k.manual):
    _inputs, _command = job_rule(_kind)

    rule:
        name:
            _kind.name
        input:
            unpack(_inputs),
        output:
            [f"results/{{scale}}/{{run}}/{name}" for name in _kind.outputs],
        wildcard_constraints:
            run=_alternatives(REG.kind_runs(_kind)),
        params:
            py=PY,
            command=_command,
            launch=LAUNCH_ARGS if _kind.launcher else "",
            summary=summary,
        threads: 1
        resources:
            gpu=1 if _kind.launcher else 0,
        message:
            f"{_kind.name} {{wildcards.run}}: {{params.summary}}"
        log:
            f"logs/{{scale}}/{{run}}/{_kind.name}.log",
        conda:
            CONDA_ENV
        shell:
            "OMP_NUM_THREADS={threads} {params.py} {params.command} {params.launch} 2> {log}"


# Manual steps (workflow/kinds.py `Kind.manual`, e.g. uploading a test-dev submission to the COCO server):
# in the DAG so that a dry run lists them; the job fails with the instructions until the person has
# placed its output, after which Snakemake takes the file as made.
for _kind in (k for k in KINDS if k.manual):
    _inputs, _ = job_rule(_kind)

    rule:
        name:
            _kind.name
        input:
            unpack(_inputs),
        output:
            [f"results/{{scale}}/{{run}}/{name}" for name in _kind.outputs],
        wildcard_constraints:
            run=_alternatives(REG.kind_runs(_kind)),
        params:
            instructions=lambda wildcards, k=_kind: REG.manual_instructions(k, wildcards.run),
        message:
            f"{_kind.name} {{wildcards.run}}: MANUAL STEP: {{params.instructions}}"
        log:
            f"logs/{{scale}}/{{run}}/{_kind.name}.log",
        run:
            raise WorkflowError(f"manual step for run {wildcards.run}: {params.instructions}")


# Runs that need a capability this code base does not have yet. They are part of the DAG (a dry run
# lists them) but produce no numbers: `unavailable.json` records why, for the report's index; asking
# for such a run's metrics fails at once with the name of the missing capability.
rule unavailable:
    output:
        "results/{scale}/{run}/unavailable.json",
    wildcard_constraints:
        run=UNAVAILABLE_RE,
    params:
        summary=summary,
    message:
        "unavailable {wildcards.run}: {params.summary}"
    log:
        "logs/{scale}/{run}/unavailable.log",
    run:
        record = REG.write_unavailable(wildcards.run, output[0])
        Path(log[0]).write_text(f"{wildcards.run}: {record['unavailable']}\n")


rule unavailable_metrics:
    output:
        "results/{scale}/{run}/metrics.json",
    wildcard_constraints:
        run=UNAVAILABLE_RE,
    log:
        "logs/{scale}/{run}/unavailable-metrics.log",
    run:
        raise WorkflowError(f"run {wildcards.run} ({SCALE}) cannot be produced: {REG.get(wildcards.run).missing}")
