"""Training and inference engine: optim (AdamW + layer-wise lr decay), schedule (warm-up + steps),
loss, objective (what a run trains: model, data, loss, export; `HeatmapObjective` by default),
trainer (`train`: the one loop every objective runs through), checkpoint (resumable state), trainlog
(`train_log.jsonl`), distributed (process group from the environment), inference (`predict`,
`evaluate`). Import the submodules; nothing is re-exported here so that light users (the optimizer
rule, the config) do not pull in the data pipeline.
"""
