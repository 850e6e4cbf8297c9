"""Copy memory: reproduce the first k symbols after a delay of T blanks.

Hochreiter & Schmidhuber (1997) and, in this form, Arjovsky, Shah & Bengio (2016): the input is k symbols drawn
from an alphabet of `symbols`, then T - 1 blanks, a delimiter, and k more blanks; the target is blank everywhere
except the last k steps, which must repeat the k symbols in order. A network without memory can do no better than
guess the symbols: recall accuracy 1 / `symbols`, and a mean cross-entropy over the T + 2k steps of
k log(symbols) / (T + 2k).
"""

import numpy as np
import tensorflow as tf

from training.tasks.task import SEQUENCE_TASK_DEFAULTS
from training.tasks.task import Task

_COMMON = {**SEQUENCE_TASK_DEFAULTS, "symbols": 8, "validation_size": 500, "test_size": 500}


class CopyMemoryTask(Task):
    name = "copy_memory"
    monitor = ("recall_accuracy", "max")
    presets = {
        "default": {**_COMMON, "copy_length": 10, "delay": 100, "train_size": 10000, "epochs": 30},
        # k = 5 symbols over a delay of 10: an LSTM(128) gets past 0.9 recall accuracy in about 20 epochs.
        "short": {
            **_COMMON,
            "copy_length": 5,
            "delay": 10,
            "train_size": 6000,
            "units": 128,
            "learning_rate": 5e-3,
            "epochs": 30,
        },
    }

    # Input categories: 0 blank, 1..symbols the symbols, symbols + 1 the delimiter (one-hot, never all zero).

    def generate(self, config, count, rng):
        k, delay, symbols = config["copy_length"], config["delay"], config["symbols"]
        length = delay + 2 * k
        sequence = rng.integers(1, symbols + 1, size=(count, k))
        categories = np.zeros((count, length), "int64")
        categories[:, :k] = sequence
        categories[:, k + delay - 1] = symbols + 1
        targets = np.zeros((count, length), "int32")
        targets[:, -k:] = sequence
        inputs = np.eye(symbols + 2, dtype="float32")[categories]
        return inputs, targets

    def chance_levels(self, config):
        k, symbols = config["copy_length"], config["symbols"]
        length = config["delay"] + 2 * k
        return {"recall_accuracy": 1.0 / symbols, "loss": k * np.log(symbols) / length}

    def model_head(self, config):
        # Logits over blank and the symbols at every step.
        return {"output_units": config["symbols"] + 1, "output_activation": None, "per_step_outputs": True}

    def serving_outputs(self, config, predictions):
        k = config["copy_length"]
        recalled = predictions[:, -k:]
        return {
            "symbols": tf.argmax(recalled, axis=-1, output_type=tf.int64),
            "probabilities": tf.nn.softmax(tf.cast(recalled, tf.float32), axis=-1),
        }

    def loss(self, config, targets, predictions):
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, tf.cast(predictions, tf.float32))
        return tf.reduce_mean(cross_entropy, axis=1)

    def metrics(self, config, targets, predictions):
        k = config["copy_length"]
        predicted = tf.argmax(predictions[:, -k:], axis=-1, output_type=tf.int32)
        recall = tf.reduce_mean(tf.cast(tf.equal(predicted, targets[:, -k:]), tf.float32), axis=1)
        return {"recall_accuracy": recall}
