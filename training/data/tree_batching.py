"""tf.data pipelines for trees: the batch format of `training.data.trees`, node counts padded to buckets.

Every example is one tree encoded at its own size (`trees.encode_tree` with `max_nodes` its node count). A batch
gathers its trees and pads them to N = `trees.bucket` of its largest tree (the smallest power of two that holds it,
or the smallest of `buckets`), so batches take a few static shapes: under `jit_compile=True` each shape is one XLA
compilation. Padding follows the format: `words` 0, `children` -1, `heights` -1, `labels` -1.

Training batches group trees of similar size by pre-sorting, as `training.data.batching.sequence_dataset` does with
sequences: each run of `sort_window` batches' worth of shuffled trees is sorted by node count, cut into batches, and
the batches shuffled, so a batch pads little. The order is fixed by the seed, and the pipeline shuffles and skips
example indices, gathering each batch in one vectorized step, so `skip_batches` resumes the stream exactly.

Every element is `(inputs, targets, weights)`: inputs {"words" [B, N], "children" [B, N, K], "heights" [B, N]} (the
model's), targets `(labels [B, N], roots [B])`, weights [B] (1, and 0 for the trees `pad_to_multiple` adds).
"""

import numpy as np
import tensorflow as tf

from training.data import batching
from training.data import trees

INPUT_KEYS = ("words", "children", "heights")


def encode_each(tree_list, token_ids, max_children, *, unknown_id=None):
    """Every tree of `tree_list` in the batch format without padding: a list of dicts as `trees.encode_tree` returns
    them, each tree at its own node count."""
    return [trees.encode_tree(tree, token_ids, len(trees.postorder(tree)), max_children, unknown_id=unknown_id,
                              index=index) for index, tree in enumerate(tree_list)]


def tree_dataset(encoded, batch_size, *, input_context=None, shuffle_seed=None, skip_batches=0, pad_to_multiple=None,
                 sort_window=8, buckets=None):
    """Batches encoded trees.

    Args:
        encoded: a non-empty list of dicts from `encode_each` (every tree with the same K).
        batch_size: trees per batch (per replica, when `input_context` comes from a strategy).
        input_context: a `tf.distribute.InputContext`; the trees are sharded across its input pipelines.
        shuffle_seed: for training: shuffle with this seed, repeat, bucket by size (module docstring) and drop
            incomplete batches; `None` for evaluation: one pass in order, keeping every tree.
        skip_batches: batches to skip first (resuming; the seeded order makes the skip exact).
        pad_to_multiple: for evaluation: repeat the first tree with weight 0 until the count is a multiple of this
            (the global batch), so every replica gets full, equally many batches.
        sort_window: see the module docstring.
        buckets: the padded node counts (`trees.bucket`): None for powers of two.

    Returns:
        A dataset of `(inputs, (labels, roots), weights)` batches.
    """
    if not encoded:
        raise ValueError("encoded must hold at least one tree, got none")
    weights = np.ones(len(encoded), "float32")
    if pad_to_multiple:
        extra = -len(encoded) % pad_to_multiple
        encoded = list(encoded) + [encoded[0]] * extra
        weights = np.concatenate([weights, np.zeros(extra, "float32")])
    counts = np.array([len(item["words"]) for item in encoded], np.int64)
    sizes = tf.constant([trees.bucket(int(count), buckets) for count in counts], tf.int32)
    columns = {key: tf.RaggedTensor.from_row_lengths(np.concatenate([item[key] for item in encoded]), counts)
               for key in (*INPUT_KEYS, "labels")}
    weight_column = tf.constant(weights)
    arity = encoded[0]["children"].shape[-1]
    padding = {"words": 0, "children": -1, "heights": -1, "labels": -1}

    def gather(indices):
        nodes = tf.reduce_max(tf.gather(sizes, indices))
        batch = tf.shape(indices)[0]
        dense = {}
        for key, column in columns.items():
            shape = [batch, nodes, arity] if key == "children" else [batch, nodes]
            dense[key] = tf.gather(column, indices).to_tensor(default_value=padding[key], shape=shape)
        roots = tf.cast(tf.gather(column.row_lengths(), indices) - 1, tf.int32)
        inputs = {key: dense[key] for key in INPUT_KEYS}
        return inputs, (dense["labels"], roots), tf.gather(weight_column, indices)

    data = tf.data.Dataset.range(len(encoded))
    if input_context is not None and input_context.num_input_pipelines > 1:
        data = data.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if shuffle_seed is not None:
        data = data.shuffle(len(encoded), seed=shuffle_seed, reshuffle_each_iteration=True).repeat()
        data = batching.size_sorted_batches(data, counts, batch_size, sort_window, shuffle_seed)
    else:
        data = data.batch(batch_size)
    if skip_batches:
        data = data.skip(skip_batches)
    data = data.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return data.prefetch(tf.data.AUTOTUNE)
