"""tf.data pipelines for sequence examples: sharding, seeded shuffling, bucketing by length with zero padding.

Padding is all-zero steps; the models mask all-zero steps (`StackedRNN(mask_padding=True)`), so a padded step never
changes a result. Every element is `(inputs, targets, weights)`: `weights` is 1 for a real example and 0 for the
examples that `pad_to_multiple` adds so that every replica of every worker sees the same number of full batches.

`inputs` and `targets` may each be a tuple of columns, e.g. for translation `inputs = (sources, target_inputs)` and
`targets = target_outputs` (`teacher_forcing`): each column is padded to its own longest example in the batch (id 0,
`<pad>`), and buckets hold examples of similar length, an example's length being that of its longest
variable-length column.
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


def _columns(values):
    """The columns of `values`: a tuple of columns as a list, one column as a list of one."""
    return list(values) if isinstance(values, tuple) else [values]


def _like(values, columns):
    """`columns` in the structure of `values` (a tuple, or one column)."""
    return tuple(columns) if isinstance(values, tuple) else columns[0]


def _count(values):
    """The number of examples of one column or of a tuple of columns (which must agree)."""
    counts = {len(column) for column in _columns(values)}
    if len(counts) != 1:
        raise ValueError(f"the columns of a tuple must hold equally many examples, got {sorted(counts)}")
    return counts.pop()


def teacher_forcing(sources, targets):
    """The examples of an encoder-decoder trained with teacher forcing: `((sources, targets[:-1]), targets[1:])`
    for each pair, where every target holds `<bos>` first and `<eos>` last (`TextEncoder.encode_lines(lines,
    bos=True, eos=True)`): the decoder reads `<bos> y_1 .. y_n` and learns to write `y_1 .. y_n <eos>`.

    Args:
        sources, targets: line-aligned lists of 1-D id arrays; every target at least 2 ids long.

    Returns:
        `(inputs, targets)` for `sequence_dataset`: `((sources, decoder_inputs), decoder_targets)`.
    """
    if len(sources) != len(targets):
        raise ValueError(f"got {len(sources)} sources and {len(targets)} targets; expected one target per source")
    for index, target in enumerate(targets):
        if len(target) < 2:
            raise ValueError(
                f"targets[{index}] has {len(target)} ids; a target holds at least <bos> and <eos> (encode it with "
                "bos=True, eos=True)"
            )
    return (list(sources), [np.asarray(t)[:-1] for t in targets]), [np.asarray(t)[1:] for t in targets]


def pad_examples(inputs, targets, multiple):
    """Appends zero examples (weight 0) so that the count is a multiple of `multiple`; returns (x, y, weights).
    `inputs` and `targets` may be tuples of columns."""
    count = _count(inputs)
    extra = -count % multiple
    weights = np.concatenate([np.ones(count, "float32"), np.zeros(extra, "float32")])
    if extra:
        inputs = _like(inputs, [_pad_column(column, extra) for column in _columns(inputs)])
        targets = _like(targets, [_pad_column(column, extra) for column in _columns(targets)])
    return inputs, targets, weights


def _pad_column(column, extra):
    if isinstance(column, np.ndarray):
        return np.concatenate([column, np.zeros((extra, *column.shape[1:]), column.dtype)])
    return list(column) + [np.zeros_like(column[0])] * extra


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
        inputs: array [count, time, features], or a list of [time_i, features] arrays (variable length); or a tuple
            of such columns (e.g. source ids and decoder input ids, each a list of [time_i] arrays).
        targets: array [count, ...], or a list of variable-length arrays; or a tuple of such columns.
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
            An example's length is that of its longest variable-length column (inputs and targets).
            Evaluation batches them in order, padded to the longest of each batch.

    Returns:
        A dataset of `(inputs, targets, weights)` batches, padded with zero steps where lengths differ; inputs and
        targets in the structure given (tuples stay tuples).
    """
    if _count(inputs) != _count(targets):
        raise ValueError(f"got {_count(inputs)} inputs and {_count(targets)} targets; expected one target per input")
    if pad_to_multiple:
        inputs, targets, weights = pad_examples(inputs, targets, pad_to_multiple)
    else:
        weights = np.ones(_count(inputs), "float32")
    count = len(weights)
    variable_columns = [c for c in _columns(inputs) + _columns(targets) if not isinstance(c, np.ndarray)]
    variable = any(not isinstance(c, np.ndarray) for c in _columns(inputs))
    input_columns = [_as_ragged_or_dense(column) for column in _columns(inputs)]
    target_columns = [_as_ragged_or_dense(column) for column in _columns(targets)]
    weight_column = tf.constant(weights)

    def gather(indices):
        take = lambda columns: [_dense(tf.gather(column, indices)) for column in columns]  # noqa: E731
        weights = tf.gather(weight_column, indices)
        return _like(inputs, take(input_columns)), _like(targets, take(target_columns)), weights

    data = tf.data.Dataset.range(count)
    if input_context is not None and input_context.num_input_pipelines > 1:
        data = data.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    training = shuffle_seed is not None
    if training:
        data = data.shuffle(count, seed=shuffle_seed, reshuffle_each_iteration=True).repeat()
    if variable and training:
        # Bucketing by length, vectorized: take `sort_window` batches' worth of shuffled examples, sort them by
        # length, cut them into batches and shuffle those, so each batch holds similar lengths (little padding).
        lengths = np.max([[len(x) for x in column] for column in variable_columns], axis=0)
        data = size_sorted_batches(data, lengths, batch_size, sort_window, shuffle_seed)
    else:
        data = data.batch(batch_size, drop_remainder=training)
    if training and steps is not None:
        data = data.take(steps)
    if skip_batches:
        data = data.skip(skip_batches)
    data = data.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return data.prefetch(tf.data.AUTOTUNE)


def size_sorted_batches(indices, sizes, batch_size, sort_window, seed):
    """Batches of example indices grouped by size: each run of `sort_window` batches' worth of the (shuffled)
    `indices` dataset is sorted by `sizes[index]` (stable), cut into `sort_window` batches, and those batches are
    shuffled with `seed`, so each batch holds examples of similar size (little padding). An incomplete last run is
    dropped (the training stream repeats)."""
    size_of = tf.constant(sizes, tf.int32)

    def sorted_batches(window):
        ordered = tf.gather(window, tf.argsort(tf.gather(size_of, window), stable=True))
        return tf.reshape(ordered, [sort_window, batch_size])

    data = indices.batch(batch_size * sort_window, drop_remainder=True).map(sorted_batches).unbatch()
    return data.shuffle(sort_window, seed=seed)
