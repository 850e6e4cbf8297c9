"""Reference parity: a step function unrolled by hand (NumPy equations or the cell itself) against a Keras layer.

`unroll` is the one hand-written time loop of the suite. It follows Keras's semantics: with `go_backwards` the steps
run from last to first and outputs come back in that order; at a masked step the states are kept and the output
repeats the previous one (zeros before the first unmasked step).
"""

import keras
import numpy as np


def unroll(step, x, initial_states, mask=None, go_backwards=False):
    """Runs `step(x_t, states) -> (output_t, new_states)` over `x` [batch, time, features] in a Python loop.

    Returns:
        (outputs [batch, time, output_size], final states), NumPy arrays.
    """
    states = [np.asarray(s) for s in initial_states]
    previous, outputs = None, []
    steps = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    for t in steps:
        output, new_states = step(x[:, t], states)
        output, new_states = np.asarray(output), [np.asarray(s) for s in new_states]
        if mask is not None:
            keep = mask[:, t][:, None]
            previous = np.zeros_like(output) if previous is None else previous
            output = np.where(keep, output, previous)
            new_states = [  # states of any rank (an attention cell carries [batch, S, M] ones)
                np.where(mask[:, t].reshape((-1,) + (1,) * (old.ndim - 1)), new, old)
                for new, old in zip(new_states, states)
            ]
        outputs.append(output)
        previous, states = output, new_states
    return np.stack(outputs, axis=1), states


def cell_step(cell):
    """`cell` as a NumPy step function for `unroll`."""

    def step(x_t, states):
        output, new_states = cell(x_t, list(states))
        return keras.ops.convert_to_numpy(output), [keras.ops.convert_to_numpy(s) for s in new_states]

    return step


def randomize_weights(layer, seed=0, scale=0.5, ranges=None):
    """Sets every weight of `layer` to N(0, scale^2) noise (or U(low, high) for names in `ranges`).

    Constant initialisers hide bugs (a zero bias cannot be mis-sliced); random weights do not.
    """
    rng = np.random.default_rng(seed)
    ranges = ranges or {}
    for w in layer.weights:
        if w.name in ranges:
            low, high = ranges[w.name]
            value = rng.uniform(low, high, size=w.shape)
        else:
            value = rng.normal(scale=scale, size=w.shape)
        w.assign(value.astype(w.dtype))


def weights_by_name(layer):
    """{short weight name: NumPy value}, the form the NumPy references take their weights in."""
    return {w.name: keras.ops.convert_to_numpy(w) for w in layer.weights}


def run_sequence_layer(layer, x, mask=None):
    """(outputs, final states) of a layer built with `return_sequences=True, return_state=True`."""
    outputs, *states = layer(x, mask=mask)
    return keras.ops.convert_to_numpy(outputs), [keras.ops.convert_to_numpy(s) for s in states]


def assert_same_sequences(actual, expected, atol=1e-5):
    (actual_outputs, actual_states), (expected_outputs, expected_states) = actual, expected
    np.testing.assert_allclose(actual_outputs, expected_outputs, atol=atol, err_msg="outputs differ")
    assert len(actual_states) == len(expected_states)
    for a, e in zip(actual_states, expected_states):
        np.testing.assert_allclose(a, e, atol=atol, err_msg="final states differ")


def copy_weights_by_name(source, target):
    """Copies every weight of `source` into the weight of `target` with the same short name and shape.

    `target` may have weights that `source` lacks (they keep their values); every `source` weight must land.
    """
    target_weights = {w.name: w for w in target.weights}
    missing = sorted({w.name for w in source.weights} - set(target_weights))
    assert not missing, f"{target.name} has no weights named {missing}; it has {sorted(target_weights)}"
    for w in source.weights:
        assert tuple(target_weights[w.name].shape) == tuple(w.shape), w.name
        target_weights[w.name].assign(w)
