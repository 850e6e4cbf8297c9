"""Token streams for truncated back-propagation through time (Williams & Peng 1990), as recurrent language models
are trained on the Penn Treebank (Zaremba et al. 2014; Merity et al. 2018, AWD-LSTM).

A split is one sequence of token ids: its sentences, each followed by `<eos>` (`join_sentences`). That sequence is
cut into `S` contiguous parallel streams (Zaremba et al.'s batchify, `batchify`): with `L = len(ids) // S`, stream
`s` is tokens `[s * L, (s + 1) * L)` and the last `len(ids) % S` tokens are dropped. An epoch walks every stream
from its start in windows: window `w` starting at position `p` with length `n` has inputs `stream[p : p + n]` and
targets `stream[p + 1 : p + n + 1]` (the inputs shifted by one *within* the stream), so that the state a model
carries out of window `w` of stream `s` is the right initial state for window `w + 1` of the same stream. Each
stream has `L - 1` target positions; the windows of an epoch cover them in order, each once.

Window lengths (`window_schedule`):
- fixed: every window is `bptt_steps` long, but the epoch's last, which holds what remains (`(L - 1) % bptt_steps`
  positions, when that is not 0). Every epoch has the same windows.
- random (`random_length`, AWD-LSTM's rule): each window's length is drawn: the base is `bptt_steps` with
  probability `probability` (0.95), else `bptt_steps / 2`; the length is `floor(N(base, stddev**2))` (stddev 5),
  clipped to `[min_length, max_length]` (defaults `min(5, bptt_steps)` and `bptt_steps + ceil(3 * stddev)`). The
  draws of epoch `e` are stateless functions of `(seed, e)`, so every epoch has its own windows, and a run that
  resumes at any window draws exactly the windows an uninterrupted run would.

Static shapes for XLA: every batch has the same shape `[batch_size, window_size]`, where `window_size` is
`bptt_steps` for fixed lengths and `max_length` for random ones. A window shorter than that (the epoch's last one,
and every random window below `max_length`) is right-padded with `pad_id` in its inputs and targets and weight 0 in
`weights`, so that a compiled step is traced once and a padded position adds nothing to a loss or a metric.
Padding only ever follows a window's real positions, in every stream alike; a model that carries its state out of
a padded window must let the padded steps leave the state unchanged (a masked recurrent layer does), so that the
next window starts from the state after the last real token. The alternative, one shape per window length, would
trace a compiled step once per length (about 30 of them with AWD-LSTM's draws); padding costs the compute of the
padded steps instead (random lengths: `max_length / mean length - 1`, about 50% at bptt 35 and stddev 5, whose
mean length is about 33.6 and default max_length 50; a lower `max_length` clips more draws and wastes less).
`partial_window="drop"` instead leaves out the epoch's last window when it is shorter than it should be
(Zaremba et al.'s reader does; the last `(L - 1) % bptt_steps` positions of every stream are then never trained
on); evaluation keeps it ("pad", the default), so that every token of the split is scored.

Every batch is a `StreamBatch(inputs, targets, weights, first_window)`:
    inputs:  int32 [batch_size, window_size]   the window's tokens of each stream, padded with `pad_id`
    targets: int32 [batch_size, window_size]   the next token of each input position, padded with `pad_id`
    weights: float32 [batch_size, window_size] 1 for a real position, 0 for padding
    first_window: bool [batch_size]            True in the first window of an epoch: the carried state must be
                                               reset (to the model's initial state) before this window

Distribution strategies: `batch_size` is then the number of streams per replica, and the corpus is cut into
`batch_size * num_replicas_in_sync` streams, exactly as a single device with that global batch would cut it.
Replica `r` (its `replica_id_in_sync_group`) always gets streams `[r * batch_size, (r + 1) * batch_size)`, in
every window and every epoch, so a state carried per replica stays aligned with its streams, and one step of all
replicas together is the one-device batch with the global number of streams. Input pipeline `p` (of
`num_input_pipelines`, e.g. one per worker) serves its `k = num_replicas_in_sync / num_input_pipelines` local
replicas, replicas `p * k ... p * k + k - 1`: its dataset yields, window after window, one batch per local replica
in that order (a `tf.distribute` strategy hands a pipeline's batches to its local replicas round-robin, in order).
All pipelines compute the same window schedule, so every replica takes the same number of steps.
"""

import collections
import math
import numbers

import numpy as np
import tensorflow as tf

StreamBatch = collections.namedtuple("StreamBatch", ["inputs", "targets", "weights", "first_window"])
StreamBatch.__doc__ = "One window of every stream of a replica: see the module docstring."

PARTIAL_WINDOWS = ("pad", "drop")

# The options of `random_length` and their defaults (None: derived from bptt_steps, see `random_length_options`).
RANDOM_LENGTH_DEFAULTS = {"probability": 0.95, "stddev": 5.0, "min_length": None, "max_length": None}


def join_sentences(sentences, eos_id):
    """One stream of token ids: every sentence followed by `eos_id`, in order (as the Penn Treebank setups read a
    file: each line's words, then `<eos>`).

    Args:
        sentences: a list of 1-D sequences of non-negative int token ids (a sentence may be empty: it adds `<eos>`
            alone). No `<bos>`: in a stream, the `<eos>` before a sentence is its context.
        eos_id: non-negative int, the id appended after each sentence.

    Returns:
        int32 array [sum of lengths + number of sentences].
    """
    eos_id = _non_negative_int("eos_id", eos_id)
    if isinstance(sentences, (str, bytes, np.ndarray)) or not hasattr(sentences, "__len__"):
        raise ValueError(f"sentences must be a list of 1-D token id sequences, got {type(sentences).__name__}")
    if not len(sentences):
        raise ValueError("sentences is empty; expected at least one sentence")
    pieces = []
    for index, sentence in enumerate(sentences):
        ids = np.asarray(sentence)
        if ids.size == 0:
            ids = ids.astype("int64").reshape(0)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(
                f"sentences[{index}] must be a 1-D sequence of int token ids, got shape {ids.shape} of {ids.dtype}"
            )
        if ids.size and ids.min() < 0:
            raise ValueError(f"sentences[{index}] holds the negative token id {int(ids.min())}; ids are >= 0")
        pieces.append(ids)
        pieces.append(np.asarray([eos_id]))
    return np.concatenate(pieces).astype("int32")


def batchify(ids, num_streams):
    """Zaremba et al.'s batchify: `ids` cut into `num_streams` contiguous streams, one per row.

    Args:
        ids: 1-D int array, the whole split.
        num_streams: positive int; the streams of all replicas together.

    Returns:
        int32 array [num_streams, L] with L = len(ids) // num_streams: row s is ids[s * L : (s + 1) * L]; the last
        len(ids) % num_streams ids are dropped.
    """
    ids = _ids(ids)
    num_streams = _positive_int("num_streams", num_streams)
    _stream_length(len(ids), num_streams)
    length = len(ids) // num_streams
    return ids[: num_streams * length].reshape(num_streams, length)


def random_length_options(random_length, bptt_steps):
    """The resolved options of a random window length: {"probability", "stddev", "min_length", "max_length"}, or
    None for fixed lengths.

    Args:
        random_length: None or False (fixed lengths), True (AWD-LSTM's defaults), or a dict of some of the keys of
            `RANDOM_LENGTH_DEFAULTS`: `probability` in [0, 1] of the full base `bptt_steps` (else `bptt_steps / 2`),
            `stddev` >= 0 of the normal draw around the base, and `min_length` <= `max_length`, positive ints, the
            range a length is clipped to (defaults `min(5, bptt_steps)` and `bptt_steps + ceil(3 * stddev)`).
        bptt_steps: positive int.
    """
    bptt_steps = _positive_int("bptt_steps", bptt_steps)
    if random_length is None or random_length is False:
        return None
    if random_length is True:
        random_length = {}
    if not isinstance(random_length, dict):
        raise ValueError(
            f"random_length must be None, True or a dict with keys among {sorted(RANDOM_LENGTH_DEFAULTS)}, got "
            f"{random_length!r}"
        )
    unknown = sorted(set(random_length) - set(RANDOM_LENGTH_DEFAULTS))
    if unknown:
        raise ValueError(
            f"random_length has unknown keys {unknown}; expected keys among {sorted(RANDOM_LENGTH_DEFAULTS)}"
        )
    options = {**RANDOM_LENGTH_DEFAULTS, **random_length}
    probability, stddev = options["probability"], options["stddev"]
    if isinstance(probability, bool) or not isinstance(probability, numbers.Real) or not 0 <= probability <= 1:
        raise ValueError(f"random_length probability must be a number in [0, 1], got {probability!r}")
    if isinstance(stddev, bool) or not isinstance(stddev, numbers.Real) or not 0 <= stddev < math.inf:
        raise ValueError(f"random_length stddev must be a finite number >= 0, got {stddev!r}")
    min_length = min(5, bptt_steps) if options["min_length"] is None else options["min_length"]
    max_length = bptt_steps + math.ceil(3 * stddev) if options["max_length"] is None else options["max_length"]
    min_length = _positive_int("random_length min_length", min_length)
    max_length = _positive_int("random_length max_length", max_length)
    if min_length > max_length:
        raise ValueError(f"random_length min_length must be <= max_length, got {min_length} > {max_length}")
    return {"probability": float(probability), "stddev": float(stddev), "min_length": min_length,
            "max_length": max_length}


def window_size(bptt_steps, random_length=None):
    """The time dimension of every batch: `bptt_steps`, or the largest random length (`max_length`)."""
    options = random_length_options(random_length, bptt_steps)
    return int(bptt_steps) if options is None else options["max_length"]


def window_schedule(stream_length, bptt_steps, *, random_length=None, seed=None, epoch=0, partial_window="pad"):
    """The windows of one epoch: where each starts in a stream, and how many positions it holds.

    Args:
        stream_length: L, the tokens of one stream (`len(ids) // streams`), at least 2.
        bptt_steps, random_length, seed, partial_window: as in `stream_dataset`.
        epoch: non-negative int; random lengths are drawn anew for every epoch (fixed ones are the same in all).

    Returns:
        (starts, lengths): int64 arrays [windows]. The windows cover positions 0 .. L - 2 (the inputs whose next
        token is in the stream) in order, each once; with `partial_window="drop"` a last window shorter than its
        intended length is left out.
    """
    stream_length = _positive_int("stream_length", stream_length)
    if stream_length < 2:
        raise ValueError(f"stream_length must be >= 2 (an input and its target), got {stream_length}")
    options, seed, partial_window = _check_windows(bptt_steps, random_length, seed, partial_window)
    epoch = _non_negative_int("epoch", epoch)
    starts, lengths = _schedule(tf.constant(stream_length - 1, tf.int64), int(bptt_steps), options, seed,
                                tf.constant(epoch, tf.int64), partial_window)
    return starts.numpy(), lengths.numpy()


def windows_per_epoch(num_tokens, num_streams, bptt_steps, *, random_length=None, seed=None, epoch=0,
                      partial_window="pad"):
    """The number of windows (training steps) in `epoch` of a split of `num_tokens` ids cut into `num_streams`
    streams (all replicas' together). Fixed lengths give the same count every epoch: ceil((L - 1) / bptt_steps)
    with "pad", floor((L - 1) / bptt_steps) with "drop"; random lengths give each epoch its own."""
    num_tokens = _non_negative_int("num_tokens", num_tokens)
    num_streams = _positive_int("num_streams", num_streams)
    length = _stream_length(num_tokens, num_streams)
    starts, _ = window_schedule(length, bptt_steps, random_length=random_length, seed=seed, epoch=epoch,
                                partial_window=partial_window)
    return len(starts)


def stream_dataset(ids, batch_size, bptt_steps, *, input_context=None, skip_windows=0, epochs=1, random_length=None,
                   seed=None, partial_window="pad", pad_id=0):
    """Windows of parallel token streams, for truncated BPTT with a carried state.

    Args:
        ids: 1-D int array: the split as one sequence (`join_sentences`).
        batch_size: positive int, streams per replica (per batch). Without `input_context` the whole batch.
        bptt_steps: positive int, the window length (the base length, with `random_length`).
        input_context: a `tf.distribute.InputContext`: the corpus is cut into `batch_size * num_replicas_in_sync`
            streams and this pipeline serves its local replicas' streams (see the module docstring).
        skip_windows: non-negative int, windows (steps of all replicas) to skip first, across epochs: resuming after
            that many steps gives exactly the batches an uninterrupted run gets next.
        epochs: positive int, passes over the streams, or None to repeat without end (training).
        random_length: None for fixed lengths; True or a dict for AWD-LSTM's random lengths
            (`random_length_options`).
        seed: int, needed with `random_length`: the draws of epoch e are a function of (seed, e).
        partial_window: "pad" (default) keeps an epoch's last, shorter window, padded; "drop" leaves it out.
        pad_id: int, the id of padded inputs and targets (default 0, `<pad>`).

    Returns:
        A `tf.data.Dataset` of `StreamBatch(inputs, targets, weights, first_window)`, every batch of shape
        [batch_size, window_size(bptt_steps, random_length)]; with `input_context`, one batch per local replica per
        window, local replicas in order.

    Raises:
        ValueError: an argument out of range, e.g. more streams than the corpus has pairs of tokens for, or
            `partial_window="drop"` with streams shorter than one window.
    """
    ids = _ids(ids)
    batch_size = _positive_int("batch_size", batch_size)
    options, seed, partial_window = _check_windows(bptt_steps, random_length, seed, partial_window)
    bptt_steps = int(bptt_steps)
    skip_windows = _non_negative_int("skip_windows", skip_windows)
    if epochs is not None:
        epochs = _positive_int("epochs", epochs)
    if isinstance(pad_id, bool) or not isinstance(pad_id, numbers.Integral):
        raise ValueError(f"pad_id must be an int, got {pad_id!r}")
    replicas, pipelines, pipeline = 1, 1, 0
    if input_context is not None:
        replicas = input_context.num_replicas_in_sync
        pipelines = input_context.num_input_pipelines
        pipeline = input_context.input_pipeline_id
        if replicas % pipelines:
            raise ValueError(
                f"num_replicas_in_sync ({replicas}) must be a multiple of num_input_pipelines ({pipelines}): every "
                "input pipeline serves the same number of replicas"
            )
    local = replicas // pipelines
    num_streams = batch_size * replicas
    length = _stream_length(len(ids), num_streams, batch_size, replicas)
    size = window_size(bptt_steps, random_length)
    if partial_window == "drop" and length - 1 < size:
        # Shorter streams could leave an epoch without a window (and an endless dataset without an element).
        what = f"bptt_steps ({bptt_steps})" if options is None else f"random_length max_length ({size})"
        raise ValueError(
            f"{what} is longer than the streams' {length - 1} positions (a corpus of {len(ids)} ids in "
            f"{num_streams} streams), and partial_window='drop' could leave no window; lower it or batch_size, or "
            "pad the last window (partial_window='pad')"
        )
    # This pipeline's streams, one block of batch_size rows per local replica: [local, batch_size, L].
    streams = batchify(ids, num_streams).reshape(pipelines, local, batch_size, length)[pipeline]
    streams = tf.constant(streams)
    positions = tf.constant(length - 1, tf.int64)
    offsets = tf.range(size, dtype=tf.int64)

    def epoch_windows(epoch):
        starts, lengths = _schedule(positions, bptt_steps, options, seed, epoch, partial_window)
        first = tf.equal(tf.range(tf.size(starts, tf.int64), dtype=tf.int64), 0)
        return tf.data.Dataset.from_tensor_slices((starts, lengths, first))

    def window(start, window_length, first):
        valid = offsets < window_length
        at = tf.minimum(start + offsets, length - 2)  # in range also where padded
        inputs = tf.where(valid, tf.gather(streams, at, axis=2), pad_id)
        targets = tf.where(valid, tf.gather(streams, at + 1, axis=2), pad_id)
        weights = tf.broadcast_to(tf.cast(valid, tf.float32), tf.shape(inputs))
        first_window = tf.fill([local, batch_size], first)
        return tf.data.Dataset.from_tensor_slices(StreamBatch(inputs, targets, weights, first_window))

    epoch_numbers = tf.data.Dataset.counter() if epochs is None else tf.data.Dataset.range(epochs)
    data = epoch_numbers.flat_map(epoch_windows)
    if skip_windows:
        data = data.skip(skip_windows)
    data = data.flat_map(window)  # one batch per local replica, in order
    return data.prefetch(tf.data.AUTOTUNE)


def _schedule(positions, bptt_steps, options, seed, epoch, partial_window):
    """(starts, lengths) int64 [windows] of the windows covering `positions` positions (a tensor) in one epoch, in
    TensorFlow ops so that the dataset and `window_schedule` compute them the same way."""
    if options is None:
        lengths = tf.fill([_ceil_div(positions, bptt_steps)], tf.constant(bptt_steps, tf.int64))
    else:
        # Enough draws to cover the stream even if every one is the shortest.
        draws = _ceil_div(positions, options["min_length"])
        uniform_seed = tf.stack([tf.constant(seed, tf.int64), 2 * epoch])
        normal_seed = tf.stack([tf.constant(seed, tf.int64), 2 * epoch + 1])
        full = tf.random.stateless_uniform([draws], seed=uniform_seed, dtype=tf.float64) < options["probability"]
        base = tf.where(full, tf.constant(bptt_steps, tf.float64), tf.constant(bptt_steps / 2.0, tf.float64))
        drawn = base + options["stddev"] * tf.random.stateless_normal([draws], seed=normal_seed, dtype=tf.float64)
        lengths = tf.clip_by_value(tf.cast(tf.floor(drawn), tf.int64), options["min_length"], options["max_length"])
    ends = tf.cumsum(lengths)
    starts = ends - lengths
    keep = starts < positions
    if partial_window == "drop":
        keep = tf.logical_and(keep, ends <= positions)
    starts, ends = tf.boolean_mask(starts, keep), tf.boolean_mask(ends, keep)
    return starts, tf.minimum(ends, positions) - starts


def _ceil_div(value, divisor):
    return (value + divisor - 1) // divisor


def _check_windows(bptt_steps, random_length, seed, partial_window):
    """The checked window arguments: (random length options or None, seed, partial_window)."""
    options = random_length_options(random_length, bptt_steps)
    if partial_window not in PARTIAL_WINDOWS:
        raise ValueError(f"partial_window must be one of {PARTIAL_WINDOWS}, got {partial_window!r}")
    if options is not None:
        if seed is None:
            raise ValueError("random_length needs a seed (an int), so that a resumed run draws the same windows")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ValueError(f"seed must be an int, got {seed!r}")
        seed = int(seed)
    return options, seed, partial_window


def _ids(ids):
    """`ids` as a 1-D int32 array of non-negative ids."""
    array = np.asarray(ids)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"ids must be a 1-D array of int token ids, got shape {array.shape} of {array.dtype}")
    if array.size and array.min() < 0:
        raise ValueError(f"ids holds the negative token id {int(array.min())}; ids are >= 0")
    if array.size and array.max() > np.iinfo(np.int32).max:
        raise ValueError(f"ids holds the id {int(array.max())}, beyond int32")
    return array.astype("int32")


def _stream_length(num_tokens, num_streams, batch_size=None, replicas=1):
    """L = num_tokens // num_streams, which must leave every stream an input and a target (L >= 2)."""
    length = num_tokens // num_streams
    if length < 2:
        which = f"batch_size ({batch_size}) x {replicas} replicas = {num_streams} streams" if batch_size else (
            f"num_streams ({num_streams})")
        raise ValueError(
            f"{which} is too large for a corpus of {num_tokens} ids: every stream needs at least 2 (an input and its "
            f"target); expected at most {num_tokens // 2} streams"
        )
    return length


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _non_negative_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return int(value)
