import numpy as np
import pytest
import tensorflow as tf

from training.data import batching


def variable_examples(count=40, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 15, size=count)
    inputs = [rng.uniform(0.5, 1.0, size=(n, 2)).astype("float32") for n in lengths]
    targets = np.arange(count, dtype="float32")[:, None]  # the example's index, to trace it through the pipeline
    return inputs, targets


def test_bucketing_pads_with_zero_steps_and_keeps_every_real_step():
    inputs, targets = variable_examples()
    data = batching.sequence_dataset(inputs, targets, 4, shuffle_seed=3, steps=10, sort_window=5)
    spreads = []
    for x, y, w in data:
        assert x.shape[0] == 4 and np.all(w.numpy() == 1.0)
        for row, index in zip(x.numpy(), y.numpy()[:, 0].astype(int)):
            real = inputs[index]
            np.testing.assert_array_equal(row[: len(real)], real)
            assert not np.any(row[len(real) :])
        lengths = [len(inputs[i]) for i in y.numpy()[:, 0].astype(int)]
        spreads.append(max(lengths) - min(lengths))
    # Buckets hold similar lengths: much less spread than the 5..14 range of the data.
    assert np.mean(spreads) < 5


def test_training_order_is_seeded_and_skipping_resumes_exactly():
    inputs, targets = np.random.default_rng(0).normal(size=(64, 5, 2)).astype("float32"), np.arange(64.0)[:, None]
    order = lambda data: [y.numpy()[:, 0].tolist() for _, y, _ in data]  # noqa: E731
    full = order(batching.sequence_dataset(inputs, targets, 8, shuffle_seed=5, steps=6))
    assert full == order(batching.sequence_dataset(inputs, targets, 8, shuffle_seed=5, steps=6))
    assert full != order(batching.sequence_dataset(inputs, targets, 8, shuffle_seed=6, steps=6))
    assert order(batching.sequence_dataset(inputs, targets, 8, shuffle_seed=5, steps=6, skip_batches=4)) == full[4:]


def test_evaluation_pads_to_full_batches_with_zero_weights():
    inputs, targets = variable_examples(count=10)
    batches = list(batching.sequence_dataset(inputs, targets, 4, pad_to_multiple=8))
    assert [b[0].shape[0] for b in batches] == [4, 4, 4, 4]
    weights = np.concatenate([w.numpy() for _, _, w in batches])
    np.testing.assert_array_equal(weights, [1] * 10 + [0] * 6)
    seen = np.concatenate([y.numpy()[:, 0] for _, y, _ in batches])[:10]
    np.testing.assert_array_equal(seen, np.arange(10))  # in order, every example once


def test_shards_are_disjoint_and_cover_the_data():
    inputs, targets = np.zeros((24, 3, 1), "float32") + 1, np.arange(24.0)[:, None]
    seen = []
    for worker in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker, num_replicas_in_sync=2)
        data = batching.sequence_dataset(inputs, targets, 4, input_context=context, pad_to_multiple=8)
        seen.append({int(v) for _, y, w in data for v, keep in zip(y.numpy()[:, 0], w.numpy()) if keep})
    assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(24))


def translation_pairs(count=48, seed=0):
    """Source and target id sequences of unrelated lengths; a source's first id is its example index + 1."""
    rng = np.random.default_rng(seed)
    sources = [np.concatenate([[i + 1], rng.integers(4, 50, size=rng.integers(2, 20))]).astype("int32")
               for i in range(count)]
    targets = [np.concatenate([[2], rng.integers(4, 50, size=rng.integers(1, 20)), [3]]).astype("int32")
               for _ in range(count)]
    return sources, targets


def test_teacher_forcing_shifts_the_target_by_one():
    (sources, decoder_inputs), decoder_targets = batching.teacher_forcing([np.array([7, 8])], [np.array([2, 5, 6, 3])])
    assert sources[0].tolist() == [7, 8]
    assert decoder_inputs[0].tolist() == [2, 5, 6] and decoder_targets[0].tolist() == [5, 6, 3]
    with pytest.raises(ValueError, match=r"targets\[0\] has 1 ids; a target holds at least <bos> and <eos>"):
        batching.teacher_forcing([np.array([7])], [np.array([2])])
    with pytest.raises(ValueError, match=r"got 1 sources and 2 targets"):
        batching.teacher_forcing([np.array([7])], [np.array([2, 3]), np.array([2, 3])])


def test_pairs_are_bucketed_by_their_longer_side_and_each_column_padded_on_its_own():
    sources, targets = translation_pairs()
    inputs, outputs = batching.teacher_forcing(sources, targets)
    data = batching.sequence_dataset(inputs, outputs, 4, shuffle_seed=1, steps=12, sort_window=6)
    spreads = []
    for (source, decoder_input), decoder_target, weights in data:
        assert np.all(weights.numpy() == 1.0)
        # Each column padded with <pad> (0) to its own longest row, not to the other column's.
        indices = source.numpy()[:, 0] - 1
        assert source.shape[1] == max(len(sources[i]) for i in indices)
        assert decoder_input.shape[1] == max(len(targets[i]) - 1 for i in indices)
        for row, target_row, in_row, index in zip(source.numpy(), decoder_target.numpy(), decoder_input.numpy(),
                                                  indices):
            source_ids, target_ids = sources[index], targets[index]
            np.testing.assert_array_equal(row[: len(source_ids)], source_ids)
            assert not np.any(row[len(source_ids):])
            np.testing.assert_array_equal(in_row[: len(target_ids) - 1], target_ids[:-1])
            np.testing.assert_array_equal(target_row[: len(target_ids) - 1], target_ids[1:])
            assert not np.any(target_row[len(target_ids) - 1:]) and not np.any(in_row[len(target_ids) - 1:])
        lengths = [max(len(sources[i]), len(targets[i]) - 1) for i in indices]
        spreads.append(max(lengths) - min(lengths))
    # Buckets hold pairs of similar length: the longer side of the data spans 3..21.
    assert np.mean(spreads) < 4


def test_pairs_for_evaluation_come_in_order_padded_to_full_batches():
    sources, targets = translation_pairs(count=10)
    inputs, outputs = batching.teacher_forcing(sources, targets)
    batches = list(batching.sequence_dataset(inputs, outputs, 4, pad_to_multiple=8))
    assert len(batches) == 4
    weights = np.concatenate([w.numpy() for _, _, w in batches])
    np.testing.assert_array_equal(weights, [1] * 10 + [0] * 6)
    seen = np.concatenate([x[0].numpy()[:, 0] for x, _, _ in batches])
    np.testing.assert_array_equal(seen, list(range(1, 11)) + [0] * 6)
    with pytest.raises(ValueError, match=r"got 10 inputs and 9 targets"):
        batching.sequence_dataset(inputs, outputs[:9], 4)
    with pytest.raises(ValueError, match=r"the columns of a tuple must hold equally many examples, got \[9, 10\]"):
        batching.sequence_dataset((inputs[0][:9], inputs[1]), outputs, 4)
