"""Presets of NTM: one per algorithmic task of Graves et al. (2014, §4); the task supplies `output_units`.

All follow Collier & Beel (2018), the configuration they found to converge reliably: an LSTM controller of 100 units,
one read and one write head, shifts -1..1, memory initialised to the constant 1e-6, head parameters and outputs
clipped to ±20. Memory N x M as the paper's tables (128 x 20), except where a task needs no more (CPU-sized).
"""

_COLLIER_BEEL = {
    "memory_size": 128, "memory_width": 20, "controller": "lstm", "controller_units": 100, "read_heads": 1,
    "write_heads": 1, "shift_range": 1, "clip_value": 20.0, "memory_init": 1e-6,
}

NTM_PRESETS = {
    "ntm_copy": dict(_COLLIER_BEEL),
    "ntm_repeat_copy": dict(_COLLIER_BEEL),
    "ntm_associative_recall": dict(_COLLIER_BEEL),
    # Graves et al. (2014) Table 3 give the LSTM-controlled NTM 5 heads for priority sort (and a 2 x 100 controller;
    # this cell's controller has one layer).
    "ntm_priority_sort": {**_COLLIER_BEEL, "read_heads": 5, "write_heads": 5},
}
