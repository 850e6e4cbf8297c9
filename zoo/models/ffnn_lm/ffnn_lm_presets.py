"""Presets of FeedForwardLM: plain architecture values; the task supplies `vocab_size` when it builds the model."""

FFNN_LM_PRESETS = {
    # A 5-gram model with direct connections, the form of Bengio et al.'s best Brown-corpus models, at a size that
    # trains on a CPU.
    "ffnn_lm": {
        "order": 5,
        "embedding_dim": 64,
        "hidden_units": 128,
        "direct_connections": True,
        "dropout": 0.1,
    },
}
