"""The NTM's algorithmic tasks: every target recomputed from its input alone, the layouts, seeding and errors."""

import numpy as np
import pytest

from training.data import algorithmic


def draw(name, count=200, seed=0, **arguments):
    rng = np.random.default_rng(seed)
    return [getattr(algorithmic, name)(rng, **arguments) for _ in range(count)]


def answer_steps(mask):
    """The answer is one block of steps at the end."""
    (steps,) = np.nonzero(mask)
    assert len(steps) and steps[-1] == len(mask) - 1 and np.all(np.diff(steps) == 1)
    np.testing.assert_array_equal(np.unique(mask), [0.0, 1.0])
    return steps[0]


def check_quiet(inputs, targets, start):
    """No input while the network answers, no target while it reads."""
    assert not inputs[start:].any()
    assert not targets[:start].any()


def test_copy_target_is_the_input_sequence_after_the_delimiter():
    lengths = set()
    for inputs, targets, mask in draw("copy", bits=8, min_length=1, max_length=20):
        assert inputs.shape[1] == 9 and targets.shape[1] == 8
        start = answer_steps(mask)
        check_quiet(inputs, targets, start)
        (delimiter,) = np.nonzero(inputs[:, 8])
        assert list(delimiter) == [start - 1]  # one delimiter, right before the answer
        sequence = inputs[: start - 1, :8]
        assert set(np.unique(sequence)) <= {0.0, 1.0}
        np.testing.assert_array_equal(targets[start:], sequence)
        lengths.add(len(sequence))
    assert lengths == set(range(1, 21))


def test_repeat_copy_target_is_the_sequence_repeated_count_times_then_the_end_marker():
    counts = set()
    for inputs, targets, mask in draw("repeat_copy", bits=4, min_length=1, max_length=5, min_repeats=1,
                                      max_repeats=7, repeat_scale=10.0):
        assert inputs.shape[1] == 6 and targets.shape[1] == 5
        start = answer_steps(mask)
        check_quiet(inputs, targets, start)
        (delimiter,) = np.nonzero(inputs[:, 4])
        length = int(delimiter[0])
        assert list(delimiter) == [length] and start == length + 2
        (count_step,) = np.nonzero(inputs[:, 5])
        assert list(count_step) == [length + 1]
        repeats = int(round(inputs[length + 1, 5] * 10.0))
        sequence = inputs[:length, :4]
        expected = np.zeros((length * repeats + 1, 5), "float32")
        expected[:-1, :4] = np.tile(sequence, (repeats, 1))
        expected[-1, 4] = 1.0
        np.testing.assert_array_equal(targets[start:], expected)
        counts.add(repeats)
    assert counts == set(range(1, 8))


def test_associative_recall_target_is_the_item_after_the_query():
    item_counts = set()
    for inputs, targets, mask in draw("associative_recall", bits=6, min_length=2, max_length=6, item_length=3):
        assert inputs.shape[1] == 8 and targets.shape[1] == 6
        start = answer_steps(mask)
        check_quiet(inputs, targets, start)
        assert start == len(mask) - 3
        # Read the items back from the item delimiters, and the query from the two query delimiters.
        (item_marks,) = np.nonzero(inputs[:, 6])
        (query_marks,) = np.nonzero(inputs[:, 7])
        assert len(query_marks) == 2 and query_marks[1] == start - 1
        items = [inputs[mark + 1: mark + 4, :6] for mark in item_marks]
        query = inputs[query_marks[0] + 1: query_marks[1], :6]
        assert query.shape == (3, 6) and item_marks[-1] + 4 == query_marks[0]
        matches = [i for i, item in enumerate(items) if np.array_equal(item, query)]
        assert len(matches) == 1 and matches[0] < len(items) - 1  # distinct items; never the last one
        np.testing.assert_array_equal(targets[start:], items[matches[0] + 1])
        item_counts.add(len(items))
    assert item_counts == set(range(2, 7))


def test_priority_sort_target_is_the_highest_priority_vectors_highest_first():
    for inputs, targets, mask in draw("priority_sort", bits=8, min_length=20, max_length=20, num_outputs=16):
        assert inputs.shape == (37, 10) and targets.shape == (37, 8)
        start = answer_steps(mask)
        check_quiet(inputs, targets, start)
        assert start == 21 and inputs[20, 9] == 1.0 and not inputs[:20, 9].any()
        priorities = inputs[:20, 8]
        assert priorities.min() >= -1.0 and priorities.max() <= 1.0
        ranked = sorted(range(20), key=lambda i: -priorities[i])[:16]
        np.testing.assert_array_equal(targets[start:], inputs[ranked, :8])
    # Fewer vectors than outputs: all of them, sorted.
    for inputs, targets, mask in draw("priority_sort", count=20, bits=3, min_length=2, max_length=5):
        count = int(np.nonzero(inputs[:, 4])[0][0])
        assert mask.sum() == count


def test_the_same_seed_draws_the_same_examples_and_another_seed_others():
    for name in algorithmic.GENERATORS:
        first, again, other = (algorithmic.batch(name, np.random.default_rng(s), 8) for s in (3, 3, 4))
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a, b)
        assert first[0].shape != other[0].shape or not np.array_equal(first[0], other[0])


def test_batch_pads_with_zero_steps_that_the_mask_leaves_out():
    rng = np.random.default_rng(0)
    raw = algorithmic.examples("copy", rng, 16, bits=8, min_length=1, max_length=9)
    inputs, targets, mask = algorithmic.pad(*raw)
    longest = max(len(x) for x in raw[0])
    assert inputs.shape == (16, longest, 9) and targets.shape == (16, longest, 8) and mask.shape == (16, longest)
    for row, (x, y, m) in enumerate(zip(*raw)):
        np.testing.assert_array_equal(inputs[row, : len(x)], x)
        np.testing.assert_array_equal(targets[row, : len(x)], y)
        np.testing.assert_array_equal(mask[row, : len(x)], m)
        assert not inputs[row, len(x):].any() and not mask[row, len(x):].any()


@pytest.mark.parametrize("name", sorted(algorithmic.GENERATORS))
def test_widths_match_the_generated_layouts(name):
    bits = 5
    inputs, targets, _ = algorithmic.batch(name, np.random.default_rng(0), 2, bits=bits)
    assert algorithmic.widths(name, bits) == (inputs.shape[-1], targets.shape[-1])


def test_bad_arguments_are_errors_that_name_them():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="min_length=5, max_length=3"):
        algorithmic.copy(rng, min_length=5, max_length=3)
    with pytest.raises(ValueError, match="2 <= min_length"):
        algorithmic.associative_recall(rng, min_length=1)
    with pytest.raises(ValueError, match="min_repeats <= max_repeats, got 4 and 2"):
        algorithmic.repeat_copy(rng, min_repeats=4, max_repeats=2)
    with pytest.raises(ValueError, match="unknown algorithmic task 'sort'; valid tasks"):
        algorithmic.batch("sort", rng, 2)
