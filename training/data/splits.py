"""Deterministic train / validation / test splits that never share an example."""

import hashlib

import numpy as np

SPLITS = ("train", "validation", "test")


def example_key(example_inputs):
    """A hash of one example's inputs (its bytes and shape): two examples with the same key are the same input."""
    array = np.ascontiguousarray(example_inputs)
    return hashlib.blake2b(array.tobytes() + str(array.shape).encode(), digest_size=16).digest()


def disjoint_splits(generate, sizes, seed):
    """Draws every split from its own random stream and drops any example already drawn for another split.

    Args:
        generate: `generate(count, rng) -> (inputs, targets)`, where `inputs` is an array [count, time, features]
            or a list of `count` arrays [time_i, features], and `targets` an array [count, ...] (or a list).
        sizes: {split name: number of examples}.
        seed: int; the same seed gives the same splits. The test split is drawn first, so it depends only on the
            seed and its own size, not on how large the training set is.

    Returns:
        {split name: (inputs, targets)}, in the container types `generate` returns.
    """
    taken = set()
    splits = {}
    order = sorted(sizes, key=lambda name: -SPLITS.index(name) if name in SPLITS else 0)
    for name in order:
        stream = np.random.default_rng([seed, SPLITS.index(name) if name in SPLITS else len(SPLITS)])
        inputs, targets, own = [], [], set()
        attempts = 0
        while len(inputs) < sizes[name]:
            attempts += 1
            if attempts > 100:
                raise ValueError(
                    f"could not draw {sizes[name]} {name} examples that no other split contains: the task has too "
                    "few distinct inputs for these split sizes; make the sequences longer or the splits smaller"
                )
            batch_inputs, batch_targets = generate(sizes[name] - len(inputs), stream)
            for x, y in zip(batch_inputs, batch_targets):
                key = example_key(x)
                if key in taken:
                    continue
                own.add(key)
                inputs.append(x)
                targets.append(y)
        taken |= own
        splits[name] = (_like(batch_inputs, inputs), _like(batch_targets, targets))
    return {name: splits[name] for name in sizes}


def _like(template, items):
    return np.stack(items) if isinstance(template, np.ndarray) else list(items)
