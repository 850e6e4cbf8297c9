"""Presets of StackedRNN: plain data, one per recurrence of the lecture."""

STACKED_RNN_PRESETS = {
    "elman": {"cell": "elman", "units": 64},
    "jordan": {"cell": "jordan", "units": 64},
    "leaky": {"cell": "leaky", "units": 64, "cell_options": {"alpha": 0.5, "trainable_alpha": True}},
    "lstm": {"cell": "lstm", "units": 64},
    "peephole_lstm": {"cell": "lstm", "units": 64, "cell_options": {"peepholes": True}},
    "gru": {"cell": "gru", "units": 64},
}
