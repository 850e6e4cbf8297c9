import numpy as np
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
