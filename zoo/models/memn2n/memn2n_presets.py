"""Presets of MemN2N: the paper's bAbI recipes (Sukhbaatar et al. 2015, §4.1, and the authors' config_babi.m and
config_babi_joint.m); the task supplies `vocab_size`.

Both are position encoding, temporal encoding, adjacent tying, 3 hops, memory of the last 50 sentences, N(0, 0.1)
weights, and empty memories in the softmax (`empty_memories`: the authors' Memory.m and train.m fill a memory of fixed
size with the nil word, whose embedding is zero, and take the softmax over all of it; without them the yes/no task
QA6 stays at chance). Linear start and random noise are training-time: the model's `linear_start` switch (turned on
by the task for the first epochs) and empty memories inserted by the data pipeline.
"""

_BABI = {
    "memory_size": 50, "embedding_dim": 20, "hops": 3, "tying": "adjacent", "encoding": "position",
    "temporal_encoding": True, "hop_map": False, "linear_start": False, "initializer_stddev": 0.1,
    "empty_memories": True,
}

MEMN2N_PRESETS = {
    # One model per task: d = 20 (config_babi.m).
    "memn2n_babi": dict(_BABI),
    # One model for all tasks together: d = 50 (config_babi_joint.m).
    "memn2n_babi_joint": {**_BABI, "embedding_dim": 50},
}
