"""Presets of Forecaster: plain data; the caller passes the sizes that come from the data (features, horizon)."""

FORECASTER_PRESETS = {
    "forecaster": {"cell": "lstm", "units": 32, "num_layers": 1},
}
