"""Forecasting: the lecture's first case for a real-valued series, P(x_{t+1..t+k} | x_{1..t}).

A multivariate series is read from a CSV file: one that ships inside an installed PyPI package ("sunspots": yearly
sunspot numbers 1700-2008, and "co2": weekly Mauna Loa CO2 1958-2001, both from statsmodels), or a file in
--data_dir ("file"). It is split in time order; the per-feature scaling is fitted on the training split only. Each
example is `input_length` steps and the `horizon` steps after them; a validation or test example may read steps of
the split before it, but predicts steps of its own split only.

Metrics are in the series' own units: MAE and RMSE over every forecast step and feature, and the same for the naive
forecast (the last observed value, repeated), with `improvement` = 1 - MAE / naive MAE (> 0: better than naive).
The targets carry the last observed value in row 0 for that comparison; rows 1..horizon are the future.

The export takes float [batch, T, F] in the series' units and returns the forecast float [batch, horizon, F].
"""

import functools
import json
import os

import numpy as np
import tensorflow as tf

import zoo
from training.data import series as series_data
from training.tasks.task import Task

_SERIES = {
    "sunspots": {"columns": ["SUNACTIVITY"], "date_column": "YEAR", "fill": None},
    "co2": {"columns": ["co2"], "date_column": "date", "fill": "interpolate"},
}

_COMMON = {
    "series": "sunspots",
    "data_dir": None,
    "file": None,  # with series "file": the CSV's name in --data_dir
    "columns": None,  # with series "file": the columns to forecast
    "date_column": None,
    "fill": None,
    "fractions": [0.7, 0.15, 0.15],
    "input_length": 22,  # two solar cycles of about 11 years
    "horizon": 3,
    "model": "forecaster",
    "model_options": {"units": 32},
    "batch_size": 16,
    "learning_rate": 3e-3,
    "clip_global_norm": 1.0,
    "epochs": 25,
}


class ForecastingTask(Task):
    name = "forecasting"
    monitor = ("rmse", "min")
    default_preset = "sunspots"
    presets = {
        "sunspots": _COMMON,
        # Weekly CO2: 52 weeks in, the next 4 weeks out.
        "co2": {**_COMMON, "series": "co2", "input_length": 52, "horizon": 4, "batch_size": 32, "epochs": 20},
        # A series of your own: --data_dir=DIR --override=file=NAME.csv,columns=[a,b],date_column=date
        "file": {**_COMMON, "series": "file"},
    }

    # Data.

    def prepared(self, config):
        """The series of this config: a `PreparedSeries` (cached)."""
        keys = ("series", "data_dir", "file", "columns", "date_column", "fill", "fractions", "input_length", "horizon")
        return _prepared(json.dumps({k: config[k] for k in keys}, sort_keys=True))

    def split_data(self, config):
        return self.prepared(config).splits

    def input_features(self, config):
        return self.prepared(config).features

    def example_features(self, config):
        return None

    def chance_levels(self, config):
        """The naive forecast's RMSE and MAE on the validation split."""
        naive = self.prepared(config).naive_validation
        return {"rmse": naive["rmse"], "mae": naive["mae"]}

    # Model, loss, metrics.

    def model_head(self, config):
        return {}

    def build_model(self, config):
        return zoo.models.get(config["model"], features=self.input_features(config), horizon=config["horizon"],
                              **config["model_options"])

    def loss(self, config, targets, predictions):
        error = tf.cast(predictions, tf.float32) - targets[:, 1:]
        return tf.reduce_mean(tf.square(error), axis=[1, 2])

    def metrics(self, config, targets, predictions):
        scale = tf.constant(self.prepared(config).scaler.std, tf.float32)
        future, last = targets[:, 1:], targets[:, :1]
        error = (tf.cast(predictions, tf.float32) - future) * scale
        naive = (last - future) * scale
        return {
            "mae": tf.reduce_mean(tf.abs(error), axis=[1, 2]),
            "squared_error": tf.reduce_mean(tf.square(error), axis=[1, 2]),
            "naive_mae": tf.reduce_mean(tf.abs(naive), axis=[1, 2]),
            "naive_squared_error": tf.reduce_mean(tf.square(naive), axis=[1, 2]),
        }

    def summarize(self, config, means):
        if "squared_error" not in means:
            return means
        summary = dict(means)
        summary["rmse"] = float(np.sqrt(summary.pop("squared_error")))
        summary["naive_rmse"] = float(np.sqrt(summary.pop("naive_squared_error")))
        summary["improvement"] = 1.0 - summary["mae"] / max(summary["naive_mae"], 1e-12)
        return summary

    # Export.

    def serving_module(self, config, model):
        return ForecasterServing(self.prepared(config).scaler, self.input_features(config), model)

    def warmup_inputs(self, config, count=2):
        prepared = self.prepared(config)
        return {"inputs": tf.constant(prepared.scaler.inverse_transform(prepared.splits["test"][0][:count]),
                                      tf.float32)}


class PreparedSeries:
    """A series read, split in time order, scaled with the training split's statistics, and cut into windows."""

    def __init__(self, config):
        if config["series"] == "file":
            if not config["data_dir"] or not config["file"] or not config["columns"]:
                raise ValueError("series 'file' reads --data_dir/FILE: give --data_dir and --override=file=NAME.csv,"
                                 "columns=[...]")
            path = os.path.join(config["data_dir"], config["file"])
            columns, date_column, fill = config["columns"], config["date_column"], config["fill"]
        elif config["series"] in _SERIES:
            if config["data_dir"]:
                raise ValueError(f"series {config['series']!r} ships inside a Python package; leave out --data_dir "
                                 "or use the preset 'file' for a CSV of your own")
            path = series_data.packaged_series(config["series"])
            known = _SERIES[config["series"]]
            columns, date_column, fill = known["columns"], known["date_column"], known["fill"]
        else:
            raise ValueError(f"series must be one of {sorted(_SERIES) + ['file']}, got {config['series']!r}")
        values, _ = series_data.read_series_csv(path, columns, date_column=date_column, fill=fill)
        parts = series_data.chronological_splits(values, tuple(config["fractions"]))
        self.scaler = series_data.Scaler().fit(parts[0])
        self.features = values.shape[1]
        length, horizon = config["input_length"], config["horizon"]
        scaled = [self.scaler.transform(part) for part in parts]
        self.splits = {}
        for index, name in enumerate(("train", "validation", "test")):
            # The steps before this split, as far back as one input window: a window may read the past of earlier
            # splits, but forecasts only this split's steps.
            history = np.concatenate(scaled[:index], axis=0)[-length:] if index else scaled[0][:0]
            inputs, future = series_data.windows(np.concatenate([history, scaled[index]], axis=0), length, horizon)
            targets = np.concatenate([inputs[:, -1:], future], axis=1)
            self.splits[name] = (inputs, targets)
        inputs, targets = self.splits["validation"]
        naive = (targets[:, :1] - targets[:, 1:]) * np.asarray(self.scaler.std, "float32")
        self.naive_validation = {"mae": float(np.mean(np.abs(naive))), "rmse": float(np.sqrt(np.mean(naive**2)))}


@functools.lru_cache(maxsize=4)
def _prepared(config_json):
    return PreparedSeries(json.loads(config_json))


class ForecasterServing(tf.Module):
    """serving_default(inputs: float [batch, T, F] in the series' units) -> forecast: float [batch, horizon, F]."""

    def __init__(self, scaler, features, model):
        super().__init__()
        self.model = model
        mean = tf.constant(np.asarray(scaler.mean, "float32"))
        std = tf.constant(np.asarray(scaler.std, "float32"))

        @tf.function(input_signature=[tf.TensorSpec([None, None, features], tf.float32, name="inputs")])
        def serving_default(inputs):
            scaled = (inputs - mean) / std
            return {"forecast": tf.cast(self.model(scaled, training=False), tf.float32) * std + mean}

        self.functions = {"serving_default": serving_default}
