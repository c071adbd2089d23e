"""Training and inference engine: optim (AdamW + layer-wise lr decay), schedule (warm-up + steps),
loss, checkpoint (resumable state), distributed (process group from the environment), trainer
(`train`), inference (`predict`, `evaluate`). Import the submodules; nothing is re-exported here so
that light users (the optimizer rule, the config) do not pull in the data pipeline.
"""
