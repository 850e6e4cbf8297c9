"""Latching: classify a sequence by its first L steps after T - L steps of noise.

Bengio, Simard & Frasconi (1994), "Learning long-term dependencies with gradient descent is difficult": the class
is set by the first L inputs only; the remaining T - L inputs are Gaussian noise (mean 0, variance s) that the
network must ignore while it holds ("latches") the class. Targets are +0.8 / -0.8 read at the last step with a tanh
output and a squared loss, as in the paper. The informative inputs are fixed +1 / -1 codes, as in Hochreiter &
Schmidhuber's version of the problem (1997, experiment 3a), rather than the paper's trainable free inputs.
"""

import numpy as np
import tensorflow as tf

from training.tasks.task import SEQUENCE_TASK_DEFAULTS
from training.tasks.task import Task
from training.tasks.task import length_jittered
from training.tasks.task import mean_squared_error

TARGET = 0.8

_COMMON = {
    **SEQUENCE_TASK_DEFAULTS,
    "informative_steps": 3,
    "noise_variance": 0.2,
    "length_jitter": 0.0,
    "units": 32,
}


class LatchingTask(Task):
    name = "latching"
    monitor = ("accuracy", "max")
    presets = {
        "default": {**_COMMON, "length": 100, "train_size": 10000, "epochs": 20},
        # Bengio et al.'s setting (T = 20, L = 3, s = 0.2), small enough for a test.
        "short": {**_COMMON, "length": 20, "train_size": 4000, "learning_rate": 1e-2, "epochs": 4},
    }

    def check_config(self, config):
        super().check_config(config)
        _check_informative_steps(config)

    def generate(self, config, count, rng):
        _check_informative_steps(config)
        informative = config["informative_steps"]
        lengths = length_jittered(config["length"], config["length_jitter"], count, rng)
        classes = rng.integers(0, 2, size=count)
        inputs = []
        for n, c in zip(lengths, classes):
            x = rng.normal(scale=np.sqrt(config["noise_variance"]), size=(n, 1)).astype("float32")
            x[:informative, 0] = 1.0 if c else -1.0
            inputs.append(x)
        targets = np.where(classes[:, None] == 1, TARGET, -TARGET).astype("float32")
        return (np.stack(inputs) if config["length_jitter"] == 0 else inputs), targets

    def chance_levels(self, config):
        return {"accuracy": 0.5, "mse": TARGET**2, "loss": TARGET**2}

    def model_head(self, config):
        return {"output_units": 1, "output_activation": "tanh", "per_step_outputs": False}

    def serving_outputs(self, config, predictions):
        score = tf.cast(predictions, tf.float32)[:, 0]
        return {"class": tf.cast(score > 0.0, tf.int64), "score": score}

    def serving_functions(self, config, model):
        functions = super().serving_functions(config, model)
        if self.example_features(config) is None:
            return functions

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def classify(inputs):
            # TF Serving's classification signature: tf.Examples in, "classes" and "scores" [batch, 2] out.
            score = tf.cast(model(self.sequences_from_examples(config, inputs), training=False), tf.float32)[:, 0]
            positive = (score + 1.0) / 2.0
            batch = tf.shape(score)[0]
            classes = tf.tile(tf.constant([["negative", "positive"]]), [batch, 1])
            return {"classes": classes, "scores": tf.stack([1.0 - positive, positive], axis=1)}

        return {**functions, "classify": classify}

    def loss(self, config, targets, predictions):
        return mean_squared_error(targets, predictions)

    def metrics(self, config, targets, predictions):
        predictions = tf.cast(predictions, tf.float32)[:, 0]
        correct = tf.equal(predictions > 0.0, targets[:, 0] > 0.0)
        return {"accuracy": tf.cast(correct, tf.float32), "mse": tf.square(predictions - targets[:, 0])}


def _check_informative_steps(config):
    if config["informative_steps"] >= config["length"]:
        raise ValueError(
            f"informative_steps ({config['informative_steps']}) must be smaller than length ({config['length']})"
        )
