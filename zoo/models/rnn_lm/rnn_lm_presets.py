"""Presets of RNNLM: plain architecture values; the task supplies `vocab_size` when it builds the model.

Tied embeddings (`tie_embeddings=True`) are an override, not a preset value: they need units == embedding_dim, which
a task that overrides only one of the two would break.
"""

RNN_LM_PRESETS = {
    # Mikolov et al. (2010): one Elman layer.
    "elman_lm": {"cell": "elman", "units": 128, "num_layers": 1, "embedding_dim": 128, "dropout": 0.0},
    # Zaremba et al. (2014), scaled down: two LSTM layers with dropout on the non-recurrent connections.
    "lstm_lm": {"cell": "lstm", "units": 128, "num_layers": 2, "embedding_dim": 128, "dropout": 0.2},
    "gru_lm": {"cell": "gru", "units": 128, "num_layers": 2, "embedding_dim": 128, "dropout": 0.2},
}
