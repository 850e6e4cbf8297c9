"""tf.data pipelines for sequence examples: sharding, seeded shuffling, bucketing by length with zero padding.

Padding is all-zero steps; the models mask all-zero steps (`StackedRNN(mask_padding=True)`), so a padded step never
changes a result. Every element is `(inputs, targets, weights)`: `weights` is 1 for a real example and 0 for the
examples that `pad_to_multiple` adds so that every replica of every worker sees the same number of full batches.
"""

import numpy as np
import tensorflow as tf


def _as_ragged_or_dense(values):
    """A list of variable-length arrays becomes a RaggedTensor (one ragged dimension), an array stays dense."""
    if isinstance(values, np.ndarray):
        return tf.constant(values)
    lengths = [len(v) for v in values]
    flat = np.concatenate([np.asarray(v) for v in values], axis=0)
    return tf.RaggedTensor.from_row_lengths(flat, lengths)


def _dense(tensor):
    """A gathered ragged batch, padded with zeros to its longest example; dense tensors pass through."""
    return tensor.to_tensor() if isinstance(tensor, tf.RaggedTensor) else tensor


def pad_examples(inputs, targets, multiple):
    """Appends zero examples (weight 0) so that the count is a multiple of `multiple`; returns (x, y, weights)."""
    count = len(inputs)
    extra = -count % multiple
    weights = np.concatenate([np.ones(count, "float32"), np.zeros(extra, "float32")])
    if extra:
        if isinstance(inputs, np.ndarray):
            inputs = np.concatenate([inputs, np.zeros((extra, *inputs.shape[1:]), inputs.dtype)])
        else:
            inputs = list(inputs) + [np.zeros_like(inputs[0])] * extra
        if isinstance(targets, np.ndarray):
            targets = np.concatenate([targets, np.zeros((extra, *targets.shape[1:]), targets.dtype)])
        else:
            targets = list(targets) + [np.zeros_like(targets[0])] * extra
    return inputs, targets, weights


def sequence_dataset(
    inputs,
    targets,
    batch_size,
    *,
    input_context=None,
    shuffle_seed=None,
    steps=None,
    skip_batches=0,
    pad_to_multiple=None,
    sort_window=8,
):
    """Batches sequence examples.

    The pipeline shuffles, shards, buckets and skips example *indices*, and gathers each batch from the in-memory
    tensors in one vectorized step: shuffling costs no copies, and skipping batches to resume costs no gathers.

    Args:
        inputs: array [count, time, features], or a list of [time_i, features] arrays (variable length).
        targets: array [count, ...], or a list of variable-length arrays.
        batch_size: examples per batch (per replica, when `input_context` comes from a strategy).
        input_context: a `tf.distribute.InputContext`; the examples are sharded across its input pipelines.
        shuffle_seed: for training: shuffle with this seed, repeat, and drop incomplete batches; `None` for
            evaluation: one pass in order, keeping every example.
        steps: with `shuffle_seed`, exactly this many batches (so every worker takes the same number of steps).
        skip_batches: batches to skip first (resuming mid-epoch; the seeded order makes the skip exact).
        pad_to_multiple: for evaluation: pad the examples to a multiple of this (the global batch) with weight-0
            examples, so every replica gets full, equally many batches.
        sort_window: for training, variable-length examples are bucketed by length: each run of `sort_window`
            batches' worth of shuffled examples is sorted by length before it is cut into batches (less padding).
            Evaluation batches them in order, padded to the longest of each batch.

    Returns:
        A dataset of `(inputs, targets, weights)` batches, padded with zero steps where lengths differ.
    """
    if pad_to_multiple:
        inputs, targets, weights = pad_examples(inputs, targets, pad_to_multiple)
    else:
        weights = np.ones(len(inputs), "float32")
    count = len(weights)
    variable = not isinstance(inputs, np.ndarray)
    columns = (_as_ragged_or_dense(inputs), _as_ragged_or_dense(targets), tf.constant(weights))

    def gather(indices):
        return tuple(_dense(tf.gather(column, indices)) for column in columns)

    data = tf.data.Dataset.range(count)
    if input_context is not None and input_context.num_input_pipelines > 1:
        data = data.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    training = shuffle_seed is not None
    if training:
        data = data.shuffle(count, seed=shuffle_seed, reshuffle_each_iteration=True).repeat()
    if variable and training:
        # Bucketing by length, vectorized: take `sort_window` batches' worth of shuffled examples, sort them by
        # length, cut them into batches and shuffle those, so each batch holds similar lengths (little padding).
        length_of = tf.constant([len(x) for x in inputs], tf.int32)

        def sorted_batches(indices):
            ordered = tf.gather(indices, tf.argsort(tf.gather(length_of, indices), stable=True))
            return tf.reshape(ordered, [sort_window, batch_size])

        data = data.batch(batch_size * sort_window, drop_remainder=True).map(sorted_batches).unbatch()
        data = data.shuffle(sort_window, seed=shuffle_seed)
    else:
        data = data.batch(batch_size, drop_remainder=training)
    if training and steps is not None:
        data = data.take(steps)
    if skip_batches:
        data = data.skip(skip_batches)
    data = data.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return data.prefetch(tf.data.AUTOTUNE)
