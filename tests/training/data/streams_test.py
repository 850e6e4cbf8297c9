import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from training.data import streams

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def reference_windows(ids, num_streams, bptt, partial_window="pad", pad_id=0):
    """Zaremba et al.'s batchify and windowing, transcribed in NumPy: [(inputs, targets, weights)] of one epoch."""
    length = len(ids) // num_streams
    data = np.asarray(ids[: num_streams * length]).reshape(num_streams, length)
    windows = []
    for start in range(0, length - 1, bptt):
        n = min(bptt, length - 1 - start)
        if n < bptt and partial_window == "drop":
            break
        x = np.full((num_streams, bptt), pad_id)
        y = np.full((num_streams, bptt), pad_id)
        x[:, :n] = data[:, start : start + n]
        y[:, :n] = data[:, start + 1 : start + 1 + n]
        w = np.zeros((num_streams, bptt))
        w[:, :n] = 1
        windows.append((x, y, w))
    return windows


def as_numpy(data):
    return [streams.StreamBatch(*(t.numpy() for t in batch)) for batch in data]


def corpus(count=103, seed=0):
    """Ids 1 .. vocabulary (never the pad id 0), random so that a misplaced token shows."""
    return np.random.default_rng(seed).integers(1, 50, size=count).astype("int32")


@pytest.mark.parametrize("partial_window", ["pad", "drop"])
@pytest.mark.parametrize("count,batch,bptt", [(103, 4, 5), (60, 3, 4), (41, 2, 7)])
def test_windows_equal_a_numpy_transcription_of_batchify(count, batch, bptt, partial_window):
    ids = corpus(count)
    got = as_numpy(streams.stream_dataset(ids, batch, bptt, partial_window=partial_window))
    expected = reference_windows(ids, batch, bptt, partial_window)
    assert len(got) == len(expected) == streams.windows_per_epoch(count, batch, bptt, partial_window=partial_window)
    for index, (batch_got, (x, y, w)) in enumerate(zip(got, expected)):
        np.testing.assert_array_equal(batch_got.inputs, x)
        np.testing.assert_array_equal(batch_got.targets, y)
        np.testing.assert_array_equal(batch_got.weights, w)
        np.testing.assert_array_equal(batch_got.first_window, np.full(batch, index == 0))


def test_batchify_cuts_contiguous_streams_and_drops_the_remainder():
    ids = np.arange(23)
    np.testing.assert_array_equal(streams.batchify(ids, 4), np.arange(20).reshape(4, 5))


def test_join_sentences_puts_eos_after_every_sentence():
    joined = streams.join_sentences([[5, 6], [], np.array([7])], eos_id=3)
    np.testing.assert_array_equal(joined, [5, 6, 3, 3, 7, 3])
    assert joined.dtype == np.int32


@pytest.mark.parametrize("random_length", [None, {"stddev": 3.0}])
def test_targets_are_the_inputs_shifted_within_the_stream(random_length):
    ids = corpus(400)
    batches = as_numpy(streams.stream_dataset(ids, 3, 6, random_length=random_length, seed=1))
    previous = None
    for batch in batches:
        real = batch.weights.astype(bool)
        n = int(real[0].sum())
        assert np.all(real[:, :n]) and not np.any(real[:, n:])  # real positions first, padding after
        np.testing.assert_array_equal(batch.inputs[:, 1:n], batch.targets[:, : n - 1])
        if previous is not None:  # the next window starts with the previous one's last target
            np.testing.assert_array_equal(batch.inputs[:, 0], previous)
        previous = batch.targets[:, n - 1]
        assert not np.any(batch.inputs[~real]) and not np.any(batch.targets[~real])  # padded with pad_id 0


@pytest.mark.parametrize("random_length", [None, True])
def test_a_streams_windows_concatenate_to_its_contiguous_slice(random_length):
    ids = corpus(1000)
    batch, length = 4, 1000 // 4
    batches = as_numpy(streams.stream_dataset(ids, batch, 9, random_length=random_length, seed=2))
    for s in range(batch):
        inputs = np.concatenate([b.inputs[s][b.weights[s] > 0] for b in batches])
        targets = np.concatenate([b.targets[s][b.weights[s] > 0] for b in batches])
        np.testing.assert_array_equal(inputs, ids[s * length : (s + 1) * length - 1])
        np.testing.assert_array_equal(targets, ids[s * length + 1 : (s + 1) * length])


@pytest.mark.parametrize("random_length", [None, True])
def test_skipping_windows_resumes_exactly_across_epochs(random_length):
    ids = corpus(300)
    make = lambda **kw: as_numpy(  # noqa: E731
        streams.stream_dataset(ids, 3, 8, epochs=3, random_length=random_length, seed=4, **kw)
    )
    full = make()
    per_epoch = streams.windows_per_epoch(300, 3, 8, random_length=random_length, seed=4)
    for skip in (1, per_epoch - 1, per_epoch, per_epoch + 2):
        resumed = make(skip_windows=skip)
        assert len(resumed) == len(full) - skip
        for a, b in zip(resumed, full[skip:]):
            for got, expected in zip(a, b):
                np.testing.assert_array_equal(got, expected)


def test_an_endless_stream_marks_every_epochs_first_window():
    ids = corpus(200)
    per_epoch = [streams.windows_per_epoch(200, 2, 6, random_length=True, seed=7, epoch=e) for e in range(3)]
    count = sum(per_epoch)
    data = streams.stream_dataset(ids, 2, 6, epochs=None, random_length=True, seed=7).take(count + 1)
    firsts = [bool(b.first_window[0]) for b in as_numpy(data)]
    starts = {0, per_epoch[0], per_epoch[0] + per_epoch[1], count}
    assert firsts == [index in starts for index in range(count + 1)]


def test_random_lengths_are_reproducible_drawn_per_epoch_and_within_bounds():
    options = {"stddev": 4.0, "min_length": 6, "max_length": 30}
    schedule = lambda seed, epoch: streams.window_schedule(  # noqa: E731
        5000, 20, random_length=options, seed=seed, epoch=epoch
    )
    starts, lengths = schedule(1, 0)
    np.testing.assert_array_equal(lengths, schedule(1, 0)[1])
    assert not np.array_equal(lengths[:50], schedule(2, 0)[1][:50])  # another seed
    assert not np.array_equal(lengths[:50], schedule(1, 1)[1][:50])  # another epoch
    assert lengths.sum() == 4999 and np.array_equal(starts, np.cumsum(lengths) - lengths)  # each position once
    assert lengths[:-1].min() >= 6 and lengths.max() <= 30 and lengths[-1] >= 1
    assert 17 < lengths.mean() < 21  # about 0.95 * 20 + 0.05 * 10 = 19.5, less the floor
    batches = streams.stream_dataset(corpus(2000), 2, 20, random_length=options, seed=1)
    assert batches.element_spec.inputs.shape == (2, 30)  # static: padded to max_length


def test_random_lengths_follow_awd_lstms_rule():
    # With stddev 0 a length is bptt (probability 0.95) or bptt / 2, floored; 4000 draws put the share of short
    # windows within 3.5 standard deviations (0.0035 each) of 0.05.
    _, lengths = streams.window_schedule(4000 * 35, 35, random_length={"stddev": 0.0}, seed=0)
    lengths = lengths[:-1]
    assert set(lengths.tolist()) == {35, 17}
    assert 0.038 < np.mean(lengths == 17) < 0.062


@pytest.mark.parametrize("replicas,pipelines", [(2, 1), (2, 2), (4, 2), (6, 3)])
def test_each_replica_gets_its_own_streams_in_every_window(replicas, pipelines):
    ids = corpus(600)
    batch = 2
    single = as_numpy(streams.stream_dataset(ids, batch * replicas, 5))
    local = replicas // pipelines
    for pipeline in range(pipelines):
        context = tf.distribute.InputContext(pipelines, pipeline, replicas)
        batches = as_numpy(streams.stream_dataset(ids, batch, 5, input_context=context))
        assert len(batches) == len(single) * local
        for index, got in enumerate(batches):
            window, replica = index // local, pipeline * local + index % local
            rows = slice(replica * batch, (replica + 1) * batch)  # replica r: streams [r * batch, (r + 1) * batch)
            for got_part, single_part in zip(got, single[window]):
                np.testing.assert_array_equal(got_part, single_part[rows])


# Under a real MirroredStrategy over two logical CPUs (its own process: devices are split before TensorFlow starts),
# replica r's batches are streams [r * batch, (r + 1) * batch) of the one-device batch, window after window, and the
# pipeline's batches reach the replicas in order. Prints "ok" or raises.
MIRRORED_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    from training.data import streams

    ids = np.arange(1, 401, dtype="int32")
    single = list(streams.stream_dataset(ids, 6, 5, epochs=2))
    data = strategy.distribute_datasets_from_function(
        lambda context: streams.stream_dataset(ids, 3, 5, input_context=context, epochs=2, skip_windows=4)
    )
    count = 0
    for window, batch in enumerate(data, start=4):
        for replica, inputs in enumerate(strategy.experimental_local_results(batch.inputs)):
            expected = single[window].inputs.numpy()[replica * 3 : (replica + 1) * 3]
            np.testing.assert_array_equal(inputs.numpy(), expected)
        count += 1
    assert count == len(single) - 4, (count, len(single))
    print("ok")
    """
)


def test_mirrored_replicas_get_their_own_streams_in_every_window():
    env = {**os.environ, "PYTHONPATH": ROOT}
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]


def test_pipelines_get_disjoint_streams_that_cover_the_global_batch():
    ids = np.arange(1, 161)  # every id once: a stream is known by its first id
    seen = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(2, pipeline, 4)
        first = next(iter(streams.stream_dataset(ids, 3, 4, input_context=context).batch(2)))  # both local replicas
        seen.append(set(first.inputs.numpy()[:, :, 0].ravel().tolist()))
    length = 160 // 12
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == {1 + s * length for s in range(12)}


def test_every_batch_has_a_static_shape():
    spec = streams.stream_dataset(corpus(100), 3, 7, epochs=None).element_spec
    assert spec.inputs.shape == spec.targets.shape == spec.weights.shape == (3, 7)
    assert spec.first_window.shape == (3,) and spec.inputs.dtype == tf.int32


@pytest.mark.parametrize(
    "arguments,message",
    [
        (
            {"batch_size": 51},
            r"batch_size \(51\) x 1 replicas = 51 streams is too large for a corpus of 100 ids.*at most 50 streams",
        ),
        ({"batch_size": 0}, "batch_size must be a positive int, got 0"),
        ({"bptt_steps": 0}, "bptt_steps must be a positive int, got 0"),
        ({"bptt_steps": -2}, "bptt_steps must be a positive int, got -2"),
        ({"bptt_steps": 2.5}, "bptt_steps must be a positive int, got 2.5"),
        ({"bptt_steps": 30, "partial_window": "drop"}, r"bptt_steps \(30\) is longer than the streams' 24 positions"),
        (
            {"random_length": {"max_length": 25}, "seed": 0, "partial_window": "drop"},
            r"random_length max_length \(25\) is longer than the streams' 24 positions",
        ),
        ({"partial_window": "keep"}, r"partial_window must be one of \('pad', 'drop'\), got 'keep'"),
        ({"skip_windows": -1}, "skip_windows must be an int >= 0, got -1"),
        ({"epochs": 0}, "epochs must be a positive int, got 0"),
        ({"random_length": True}, "random_length needs a seed"),
        ({"random_length": {"mean": 3}, "seed": 0}, r"random_length has unknown keys \['mean'\]"),
        (
            {"random_length": {"min_length": 9, "max_length": 8}, "seed": 0},
            "min_length must be <= max_length, got 9 > 8",
        ),
        ({"random_length": {"probability": 1.5}, "seed": 0}, r"probability must be a number in \[0, 1\], got 1.5"),
        (
            {"input_context": tf.distribute.InputContext(2, 0, 3)},
            r"num_replicas_in_sync \(3\) must be a multiple of num_input_pipelines \(2\)",
        ),
    ],
)
def test_bad_arguments_are_value_errors_that_name_them(arguments, message):
    arguments = {"ids": corpus(100), "batch_size": 4, "bptt_steps": 5, **arguments}
    with pytest.raises(ValueError, match=message):
        streams.stream_dataset(**arguments)


def test_bad_corpora_are_value_errors():
    with pytest.raises(ValueError, match="ids must be a 1-D array of int token ids, got shape"):
        streams.stream_dataset(np.zeros((4, 5), "int32"), 2, 2)
    with pytest.raises(ValueError, match="ids holds the negative token id -1"):
        streams.stream_dataset(np.array([1, -1, 2, 3]), 1, 2)
    with pytest.raises(ValueError, match=r"sentences\[1\] must be a 1-D sequence of int token ids"):
        streams.join_sentences([[1], [[2]]], eos_id=3)
    with pytest.raises(ValueError, match="sentences is empty"):
        streams.join_sentences([], eos_id=3)
    with pytest.raises(ValueError, match="eos_id must be an int >= 0, got -3"):
        streams.join_sentences([[1]], eos_id=-3)
