"""Sequence labelling: the lecture's second case, one output per input step, with the previous output optionally fed
back into the next step.

The transduction is a running sum modulo K: tokens x_1..x_T drawn from {1, ..., K}, tags y_t = (y_{t-1} + x_t) mod K
with y_0 = 0. Each tag is a function of the previous tag and the current token alone, so a labeller that is fed its
previous output (`feedback=True`) has a K x K table to learn; one that is not must carry the running sum in its
hidden state, and a bidirectional one gains nothing from the future. A model that ignores the past gets 1/K.

Lengths are drawn from [min_length, max_length]; shorter sequences are padded (token 0). Targets are stored as
y_t + 1 so that 0 marks padding; the model's tags are 0..K-1.

Training feeds a feedback labeller the gold previous tags (teacher forcing); validation and test run it on its own
predictions, as the export does. The export takes token strings ("1".."K", "" for padding) [batch, T] and returns the
tag strings ("0".."K-1", "" at padding).
"""

import numpy as np
import tensorflow as tf

import zoo
from training.tasks.task import Task
from zoo.models.sequence_labeller.sequence_labeller import shift_tags

_COMMON = {
    "classes": 5,
    "min_length": 10,
    "max_length": 30,
    "train_size": 8000,
    "validation_size": 1000,
    "test_size": 1000,
    "model": "feedback_labeller",
    "model_options": {"units": 32, "embedding_dim": 16, "tag_embedding_dim": 8},
    "batch_size": 64,
    "learning_rate": 1e-2,
    "clip_global_norm": 1.0,
    "epochs": 10,
}


class LabellingTask(Task):
    name = "labelling"
    monitor = ("tag_accuracy", "max")
    default_preset = "feedback"
    presets = {
        "feedback": _COMMON,
        # The same left-to-right labeller without its previous output.
        "plain": {**_COMMON, "model": "labeller", "model_options": {**_COMMON["model_options"],
                                                                    "bidirectional": False}},
        # Both directions, no feedback.
        "bidirectional": {**_COMMON, "model": "labeller",
                          "model_options": {"units": 32, "embedding_dim": 16, "bidirectional": True}},
    }

    def check_config(self, config):
        super().check_config(config)
        if config["min_length"] > config["max_length"]:
            raise ValueError(
                f"min_length ({config['min_length']}) must not exceed max_length ({config['max_length']})"
            )

    def generate(self, config, count, rng):
        classes = config["classes"]
        lengths = rng.integers(config["min_length"], config["max_length"] + 1, size=count)
        inputs, targets = [], []
        for length in lengths:
            tokens = rng.integers(1, classes + 1, size=length)
            inputs.append(tokens.astype("int32"))
            targets.append((np.cumsum(tokens) % classes + 1).astype("int32"))
        return inputs, targets

    def chance_levels(self, config):
        return {"tag_accuracy": 1.0 / config["classes"]}

    def input_features(self, config):
        return None

    def example_features(self, config):
        return None

    def feedback(self, config):
        """Whether the configured labeller feeds its previous output back (then training is teacher-forced)."""
        return bool({**zoo.models.preset(config["model"]), **config["model_options"]}.get("feedback", False))

    def model_head(self, config):
        return {}

    def build_model(self, config):
        return zoo.models.get(config["model"], vocab_size=config["classes"] + 1, num_tags=config["classes"],
                              **config["model_options"])

    def dataset(self, config, split, batch_size, **kwargs):
        data = super().dataset(config, split, batch_size, **kwargs)
        if split == "train" and self.feedback(config):
            start = config["classes"]
            data = data.map(lambda x, y, w: ((x, shift_tags(tf.maximum(y - 1, 0), start)), y, w))
        return data

    def loss(self, config, targets, predictions):
        tags, mask = _tags_and_mask(targets)
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(tags, tf.cast(predictions, tf.float32))
        return tf.reduce_sum(cross_entropy * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)

    def metrics(self, config, targets, predictions):
        tags, mask = _tags_and_mask(targets)
        correct = tf.cast(tf.equal(tf.argmax(predictions, axis=-1, output_type=tf.int32), tags), tf.float32) * mask
        return {
            "correct": tf.reduce_sum(correct, axis=1),
            "tags": tf.reduce_sum(mask, axis=1),
            "sequence_accuracy": tf.cast(tf.equal(tf.reduce_sum(correct, axis=1), tf.reduce_sum(mask, axis=1)),
                                         tf.float32),
        }

    def summarize(self, config, means):
        if "tags" not in means:
            return means
        summary = dict(means)
        summary["tag_accuracy"] = summary.pop("correct") / max(summary.pop("tags"), 1e-12)
        return summary

    def serving_module(self, config, model):
        return LabellerServing(config["classes"], model)

    def warmup_inputs(self, config, count=2):
        inputs = self.split_data(config)["test"][0][:count]
        width = max(len(x) for x in inputs)
        return {"tokens": tf.constant([[str(t) for t in x] + [""] * (width - len(x)) for x in inputs])}


def _tags_and_mask(targets):
    """Targets hold y + 1 with 0 at padding: (tags [batch, T] int32, mask [batch, T] float32)."""
    targets = tf.cast(targets, tf.int32)
    return tf.maximum(targets - 1, 0), tf.cast(targets > 0, tf.float32)


class LabellerServing(tf.Module):
    """serving_default(tokens: string [batch, T], "" for padding) -> tags: string [batch, T] ("" at padding),
    tag_ids: int32 [batch, T] (-1 at padding), lengths: int32 [batch]. An unknown token is INVALID_ARGUMENT."""

    def __init__(self, classes, model):
        super().__init__()
        self.model = model
        self.token_ids = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer([str(i) for i in range(1, classes + 1)] + [""],
                                                list(range(1, classes + 1)) + [0], tf.string, tf.int32),
            default_value=-1,
        )
        self.tag_names = tf.constant([str(i) for i in range(classes)])
        self.functions = {
            "serving_default": tf.function(self._label, input_signature=[tf.TensorSpec([None, None], tf.string,
                                                                                        name="tokens")]),
        }

    def _label(self, tokens):
        ids = self.token_ids.lookup(tokens)
        with tf.control_dependencies([tf.debugging.assert_non_negative(
                ids, message="tokens must be the strings 1..K of the task's alphabet, or \"\" for padding")]):
            ids = tf.identity(ids)
        mask = ids > 0
        tags = tf.argmax(self.model(ids, training=False), axis=-1, output_type=tf.int32)
        return {
            "tags": tf.where(mask, tf.gather(self.tag_names, tags), ""),
            "tag_ids": tf.where(mask, tags, -1),
            "lengths": tf.reduce_sum(tf.cast(mask, tf.int32), axis=1),
        }
