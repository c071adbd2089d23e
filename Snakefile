# ViTPose reproduction DAG. The science is in params.yaml; workflow/registry.py expands it into runs.
#   snakemake table5                      # one table at the default (smoke) scale
#   snakemake all --config scale=paper    # the whole paper (see README: SLURM profile)
# Targets: table1 .. table10, figure1, released (the authors' checkpoints, evaluated here), all.

configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/jobs.smk"
include: "workflow/rules/report.smk"
