"""The adding problem: remember one value across a long gap and add it to another.

Hochreiter & Schmidhuber (1997, experiment 4), in the two-channel form of Le, Jaitly & Hinton (2015) and Arjovsky,
Shah & Bengio (2016): at each step a value drawn from U[0, 1] and a marker; exactly two steps are marked, one in
each half of the sequence; the target is the sum of the two marked values. Predicting the mean (1.0) gives
MSE = Var(X1 + X2) = 2/12 ~ 0.167, the baseline a model that cannot carry information across T steps stays at.
"""

import numpy as np
import tensorflow as tf

from training.tasks.task import SEQUENCE_TASK_DEFAULTS
from training.tasks.task import Task
from training.tasks.task import length_jittered
from training.tasks.task import mean_squared_error

BASELINE_MSE = 1.0 / 6.0

_COMMON = {**SEQUENCE_TASK_DEFAULTS, "length_jitter": 0.0}


class AddingTask(Task):
    name = "adding"
    monitor = ("mse", "min")
    default_preset = "default"
    presets = {
        # The lecture's setting: T = 100, where tanh RNNs stay at the baseline and gated cells do not.
        "default": {**_COMMON, "length": 100, "train_size": 10000, "epochs": 30},
        # A short run for the demo and the tests: T = 30 is learnt by an LSTM in a few epochs.
        "short": {**_COMMON, "length": 30, "train_size": 8000, "units": 32, "learning_rate": 1e-2, "epochs": 6},
    }

    def check_config(self, config):
        super().check_config(config)
        if config["length"] < 2:
            raise ValueError(f"length must be at least 2 (one marked value in each half), got {config['length']}")

    def generate(self, config, count, rng):
        length = config["length"]
        lengths = length_jittered(length, config["length_jitter"], count, rng)
        inputs, targets = [], np.zeros((count, 1), "float32")
        for i, n in enumerate(lengths):
            values = rng.uniform(size=n).astype("float32")
            markers = np.zeros(n, "float32")
            markers[rng.integers(0, n // 2)] = 1.0
            markers[rng.integers(n // 2, n)] = 1.0
            inputs.append(np.stack([values, markers], axis=-1))
            targets[i, 0] = values[markers == 1.0].sum()
        return (np.stack(inputs) if config["length_jitter"] == 0 else inputs), targets

    def chance_levels(self, config):
        return {"mse": BASELINE_MSE, "loss": BASELINE_MSE}

    def model_head(self, config):
        return {"output_units": 1, "output_activation": None, "per_step_outputs": False}

    def serving_outputs(self, config, predictions):
        return {"sum": tf.cast(predictions, tf.float32)[:, 0]}

    def serving_functions(self, config, model):
        functions = super().serving_functions(config, model)
        if self.example_features(config) is None:
            return functions

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def regress(inputs):
            # TF Serving's regression signature: tf.Examples in ("inputs"), one float per example out ("outputs"),
            # so the model answers :regress with features x0 (the values) and x1 (the markers).
            sequences = self.sequences_from_examples(config, inputs)
            return {"outputs": tf.cast(model(sequences, training=False), tf.float32)[:, 0]}

        return {**functions, "regress": regress}

    def loss(self, config, targets, predictions):
        return mean_squared_error(targets, predictions)

    def metrics(self, config, targets, predictions):
        error = tf.abs(tf.cast(predictions, tf.float32) - targets)[:, 0]
        # Hochreiter & Schmidhuber (1997) count a sequence as solved when |error| < 0.04.
        return {"mse": tf.square(error), "solved": tf.cast(error < 0.04, tf.float32)}
