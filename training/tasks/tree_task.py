"""What the tree tasks share (`listops`, `sentiment_trees`): trees in, a class for every node out.

A subclass gives its trees per split, ready for the model (binarised where the composition needs it, labels as the
task defines them), its vocabulary and its number of classes (`tree_splits`); this class encodes them
(`training.data.tree_batching`), batches them with node counts padded to buckets, builds the zoo's `TreeModel`, and
computes the metrics.

Heights: the model composes `max_height + 1` levels on every batch, so `max_height` must hold the tallest tree. The
config's `max_height` is None (the default: the tallest tree of the three splits, found when the data is loaded) or
an int, the limit: a tree taller than it is an error at data time naming the split, the tree's index and its height
(trees are never dropped silently; raise the limit or leave the tree out of the data).

Serving (`training.tasks.tree_serving`): the export parses a tree string in the graph into N = `serving_max_nodes`
nodes (None, the default: `trees.bucket` of the data's largest tree); a request with more nodes fails, naming the
limit.

Metrics: `root_accuracy` (the roots with a label whose argmax is right, over those roots: a root without a label,
e.g. a neutral sentence in the binary sentiment task, counts in neither) and `node_accuracy` (the same over every
labelled node of the split, a micro average: each node counts once, whatever its tree's size). The trainer averages
per-example sums, so `metrics` returns the counts (`root_correct`, `root_labelled`, `node_correct`, `node_labelled`)
and `summarize` divides them.
"""

import abc
import json

import numpy as np
import tensorflow as tf

import zoo
from training.data import tree_batching
from training.data import trees
from training.tasks.task import Task

SPLITS = ("train", "validation", "test")
_COUNTS = ("root_correct", "root_labelled", "node_correct", "node_labelled")


class TreeData:
    """The encoded data of one config: `encoded` {split: list of encoded trees}, `trees` {split: list of Tree},
    `vocabulary` (word -> id), `num_classes`, `max_children` (K) and `max_height`."""

    def __init__(self, split_trees, vocabulary, num_classes, max_children, max_height, unknown_id=None):
        self.trees = split_trees
        self.vocabulary = vocabulary
        self.num_classes = num_classes
        self.max_children = max_children
        tallest = {split: [trees.heights(tree)[-1] for tree in items] for split, items in split_trees.items()}
        if max_height is None:
            max_height = max(max(heights) for heights in tallest.values() if heights)
        for split, heights in tallest.items():
            for index, height in enumerate(heights):
                if height > max_height:
                    raise ValueError(
                        f"{split} tree {index} has height {height}, more than max_height={max_height}: the model "
                        f"composes {max_height + 1} levels and would never reach its root; expected max_height >= "
                        f"{height} (or max_height=None: the tallest tree), or leave the tree out "
                        f"({trees.format_tree(split_trees[split][index])[:80]!r})")
        self.max_height = int(max_height)
        self.encoded = {split: tree_batching.encode_each(items, vocabulary, max_children, unknown_id=unknown_id)
                        for split, items in split_trees.items()}


class TreeTask(Task):
    """Base of the tree tasks (module docstring). Config keys it reads: `model` (a TreeModel preset), `model_options`
    (arguments replacing the preset's), `max_height`, `sort_window`, `buckets`, and the trainer's."""

    monitor = ("root_accuracy", "max")

    @abc.abstractmethod
    def tree_splits(self, config):
        """The task's data: a `TreeData`."""

    def data(self, config):
        """The `TreeData` of this config (cached per config: generating or reading trees is slow)."""
        cache = self.__dict__.setdefault("_data_cache", {})
        key = json.dumps(config, sort_keys=True)
        if key not in cache:
            if len(cache) >= 4:
                cache.pop(next(iter(cache)))
            cache[key] = self.tree_splits(config)
        return cache[key]

    def composition(self, config):
        """The composition the config's model uses ("binary_tree_lstm", "tree_rnn" or "child_sum_tree_lstm")."""
        return config["model_options"].get("composition", zoo.models.preset(config["model"]).get("composition"))

    def check_config(self, config):
        super().check_config(config)
        if config["model"] not in zoo.models.names() or "composition" not in zoo.models.preset(config["model"]):
            raise ValueError(f"model must be a tree model preset such as 'tree_lstm', 'tree_rnn' or "
                             f"'child_sum_tree_lstm', got {config['model']!r}")
        if not isinstance(config["model_options"], dict):
            raise ValueError(f"model_options must be a dict of model arguments, got {config['model_options']!r}")
        fixed = sorted({"vocab_size", "num_classes", "max_height"} & set(config["model_options"]))
        if fixed:
            raise ValueError(f"model_options must not set {fixed}: the data fixes them (max_height is a config key)")
        height = config["max_height"]
        if height is not None and (isinstance(height, bool) or not isinstance(height, int) or height < 0):
            raise ValueError(f"max_height must be None (the tallest tree of the data) or an int >= 0, got {height!r}")
        window = config["sort_window"]
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"sort_window must be a positive int, got {window!r}")
        buckets = config["buckets"]
        if buckets is not None and (not isinstance(buckets, list) or not buckets or any(
                isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in buckets)):
            raise ValueError(f"buckets must be None (powers of two) or a list of positive node counts, got {buckets!r}")

    # Data.

    def split_data(self, config):
        """{split: (inputs, (labels, roots))}: inputs {"words", "children", "heights"}, each a list of one array per
        tree at its own node count; labels a list of [nodes] arrays; roots [count]."""
        result = {}
        for split, encoded in self.data(config).encoded.items():
            inputs = {key: [item[key] for item in encoded] for key in tree_batching.INPUT_KEYS}
            result[split] = (inputs, ([item["labels"] for item in encoded],
                                      np.array([item["roots"] for item in encoded], np.int32)))
        return result

    def steps_per_epoch(self, config, global_batch_size):
        if config.get("steps_per_epoch"):
            return int(config["steps_per_epoch"])
        size = len(self.data(config).encoded["train"])
        if size < global_batch_size:
            raise ValueError(f"the training split ({size} trees) is smaller than one global batch ({global_batch_size})"
                             "; add trees or lower batch_size")
        return size // global_batch_size

    def dataset(self, config, split, batch_size, *, input_context=None, skip_batches=0, pad_to_multiple=None):
        """The split's batches (`training.data.tree_batching.tree_dataset`): "train" one endless seeded stream
        (bucketed by size; `skip_batches` resumes it exactly), the others one pass in order."""
        training = split == "train"
        encoded = self.data(config).encoded[split]
        if training and len(encoded) < batch_size * config["sort_window"]:
            raise ValueError(f"the training split ({len(encoded)} trees) is smaller than sort_window * batch_size "
                             f"({config['sort_window']} * {batch_size}); lower sort_window or batch_size")
        return tree_batching.tree_dataset(
            encoded, batch_size, input_context=input_context, shuffle_seed=config["seed"] if training else None,
            skip_batches=skip_batches, pad_to_multiple=None if training else pad_to_multiple,
            sort_window=config["sort_window"], buckets=config["buckets"])

    def input_features(self, config):
        return None

    def serving_max_nodes(self, config):
        """N of the export's parsed trees: the config's `serving_max_nodes`, or (None, the default) `trees.bucket`
        of the data's largest tree, as the task encodes it (binarised where the model's trees are)."""
        if config.get("serving_max_nodes") is not None:
            return int(config["serving_max_nodes"])
        return trees.bucket(max(len(item["words"]) for items in self.data(config).encoded.values() for item in items))

    def example_features(self, config):
        return None

    # Model.

    def model_head(self, config):
        data = self.data(config)
        return {"vocab_size": len(data.vocabulary), "num_classes": data.num_classes, "max_height": data.max_height}

    def build_model(self, config):
        return zoo.models.get(config["model"], **{**config["model_options"], **self.model_head(config)})

    # Loss and metrics.

    @staticmethod
    def node_losses(labels, predictions):
        """(cross-entropy [B, N], 0 where a node has no label; the labelled mask [B, N] float32)."""
        labels = tf.cast(labels, tf.int32)
        labelled = labels >= 0
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.maximum(labels, 0),
                                                                logits=tf.cast(predictions, tf.float32))
        mask = tf.cast(labelled, tf.float32)
        return losses * mask, mask

    def metrics(self, config, targets, predictions):
        labels, roots = targets
        labels = tf.cast(labels, tf.int32)
        labelled = tf.cast(labels >= 0, tf.float32)
        correct = tf.cast(tf.equal(tf.argmax(predictions, axis=-1, output_type=tf.int32), labels), tf.float32)
        correct *= labelled
        at_root = lambda values: tf.gather(values, tf.cast(roots, tf.int32), batch_dims=1)  # noqa: E731
        return {"root_correct": at_root(correct), "root_labelled": at_root(labelled),
                "node_correct": tf.reduce_sum(correct, axis=1), "node_labelled": tf.reduce_sum(labelled, axis=1)}

    def summarize(self, config, means):
        """`root_accuracy` and `node_accuracy` from the per-tree counts (module docstring)."""
        if not means:
            return means
        result = {key: value for key, value in means.items() if key not in _COUNTS}
        for name in ("root", "node"):
            if means.get(f"{name}_labelled", 0) > 0:
                result[f"{name}_accuracy"] = means[f"{name}_correct"] / means[f"{name}_labelled"]
        return result

    def chance_levels(self, config):
        """The accuracy of always answering the training split's most frequent root label."""
        train, test = self.data(config).trees["train"], self.data(config).trees["test"]
        labels = [tree.label for tree in train if tree.label is not None]
        majority = max(set(labels), key=labels.count)
        test_labels = [tree.label for tree in test if tree.label is not None]
        return {"root_accuracy": float(np.mean([label == majority for label in test_labels]))}
