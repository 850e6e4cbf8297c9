import numpy as np
import pytest

from training.data import splits


def coin_sequences(count, rng):
    """Binary sequences of length 6: only 64 distinct inputs, so independent draws collide often."""
    inputs = rng.integers(0, 2, size=(count, 6, 1)).astype("float32")
    return inputs, inputs.sum(axis=(1, 2))


def keys(inputs):
    return {splits.example_key(x) for x in inputs}


def test_splits_never_share_an_example():
    data = splits.disjoint_splits(coin_sequences, {"train": 40, "validation": 8, "test": 8}, seed=1)
    assert [len(data[s][0]) for s in ("train", "validation", "test")] == [40, 8, 8]
    train, validation, test = (keys(data[s][0]) for s in ("train", "validation", "test"))
    assert not train & validation and not train & test and not validation & test
    # Targets stay with their inputs.
    for inputs, targets in data.values():
        np.testing.assert_array_equal(inputs.sum(axis=(1, 2)), targets)


def test_splits_are_deterministic_and_the_test_split_does_not_depend_on_the_train_size():
    a = splits.disjoint_splits(coin_sequences, {"train": 30, "validation": 5, "test": 5}, seed=7)
    b = splits.disjoint_splits(coin_sequences, {"train": 30, "validation": 5, "test": 5}, seed=7)
    c = splits.disjoint_splits(coin_sequences, {"train": 10, "validation": 5, "test": 5}, seed=7)
    d = splits.disjoint_splits(coin_sequences, {"train": 30, "validation": 5, "test": 5}, seed=8)
    for name in a:
        np.testing.assert_array_equal(a[name][0], b[name][0])
    np.testing.assert_array_equal(a["test"][0], c["test"][0])
    assert not np.array_equal(a["test"][0], d["test"][0])


def test_variable_length_examples_are_kept_as_lists():
    def ragged(count, rng):
        lengths = rng.integers(2, 5, size=count)
        return [rng.normal(size=(n, 2)) for n in lengths], np.zeros((count, 1))

    data = splits.disjoint_splits(ragged, {"train": 5, "test": 3}, seed=0)
    assert isinstance(data["train"][0], list) and len(data["test"][0]) == 3


def test_impossible_sizes_are_a_clear_error():
    with pytest.raises(ValueError, match=r"could not draw 20 train examples that no other split contains"):
        # 400 draws cover all 64 inputs, so nothing is left for training.
        splits.disjoint_splits(coin_sequences, {"train": 20, "validation": 200, "test": 200}, seed=0)
