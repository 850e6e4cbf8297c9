"""Presets of GatedCNNLM: plain architecture values; the task supplies `vocab_size` when it builds the model."""

GATED_CNN_LM_PRESETS = {
    # Four gated blocks of width 4: a receptive field of 1 + 4 * 3 = 13 tokens.
    "gated_cnn_lm": {
        "embedding_dim": 64,
        "channels": 64,
        "kernel_size": 4,
        "num_blocks": 4,
        "dropout": 0.1,
    },
}
