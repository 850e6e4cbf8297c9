"""Gradient checks: a layer's autodiff gradients against central finite differences.

`assert_gradients_match_finite_differences` differentiates the float64 layer itself with `tf.test.compute_gradient`:
TensorFlow only, since Keras computes in float32 at most under JAX (its type promotion turns float64 into float32
there). `assert_gradients_match_reference` runs on every backend: the float32 layer's autodiff gradients against
float64 finite differences of a NumPy reference of the same function (the lecture's equations).
"""

import keras
import numpy as np

from tests.helpers import backend

# The finite-difference step of `tf.test.compute_gradient` for float64.
DELTA = 1.0 / 1024


def _projections(layer, x):
    """Fixed random projections P, one per output of `layer` on `x` (sequences and final states)."""
    rng = np.random.default_rng(1)
    shapes = layer.compute_output_shape(tuple(x.shape))
    shapes = list(shapes) if isinstance(shapes[0], (tuple, list)) else [shapes]
    return [rng.normal(size=shape) for shape in shapes]


def assert_gradients_match_finite_differences(layer, x, rtol=1e-5, atol=1e-6):
    """Checks d(sum(P * layer(x)))/d(x, weights) against finite differences, P fixed random projections of every
    output (sequences and final states).

    `layer` must be float64 and built; the weights should be randomized beforehand so that no gradient is
    trivially zero. TensorFlow only: under another backend the calling test is skipped.
    """
    backend.skip_unless_tensorflow("The float64 gradient check (tf.test.compute_gradient)")
    import tensorflow as tf

    x = tf.constant(x, dtype=tf.float64)
    trainable = [tf.constant(keras.ops.convert_to_numpy(v)) for v in layer.trainable_variables]
    non_trainable = [keras.ops.convert_to_numpy(v) for v in layer.non_trainable_variables]
    projections = [tf.constant(p, dtype=tf.float64) for p in _projections(layer, x)]

    def scalar(x, *weights):
        outputs, _ = layer.stateless_call(list(weights), non_trainable, x)
        return sum(tf.reduce_sum(y * p) for y, p in zip(keras.tree.flatten(outputs), projections))

    theoretical, numerical = tf.test.compute_gradient(scalar, [x, *trainable])
    names = ["inputs"] + [v.name for v in layer.trainable_variables]
    for name, t, n in zip(names, theoretical, numerical):
        assert np.any(t != 0), f"gradient with respect to {name} is identically zero"
        np.testing.assert_allclose(t, n, rtol=rtol, atol=atol, err_msg=f"gradient with respect to {name}")


def assert_gradients_match_reference(layer, x, reference, rtol=1e-4, atol=1e-5):
    """Checks d(sum(P * layer(x)))/d(x, weights), by the backend's autodiff in the layer's float32, against central
    finite differences of the same sum over `reference` in float64.

    Args:
        layer: a built float32 layer with random weights.
        x: float inputs.
        reference: (x, {weight name: value}) -> the list of the layer's outputs, in NumPy float64.
        rtol, atol: float32 autodiff over 3 steps of the zoo's cells was off by at most about 1e-5 relative and
            1e-6 absolute, so the defaults leave a factor of 10; a wrong or missing gradient term is off by far more
            (a gradient stopped on the recurrent path is off by about 0.8).
    """
    trainable = [keras.ops.convert_to_numpy(v) for v in layer.trainable_variables]
    non_trainable = [keras.ops.convert_to_numpy(v) for v in layer.non_trainable_variables]
    projections = _projections(layer, x)
    names = [v.name for v in layer.trainable_variables]
    fixed = {v.name: np.asarray(keras.ops.convert_to_numpy(v), np.float64) for v in layer.non_trainable_variables}

    def scalar(x, *weights):
        outputs, _ = layer.stateless_call(list(weights), non_trainable, x)
        flat = keras.tree.flatten(outputs)
        return sum(keras.ops.sum(y * keras.ops.cast(p, y.dtype)) for y, p in zip(flat, projections))

    def reference_scalar(x, weights):
        outputs = reference(x, {**fixed, **dict(zip(names, weights))})
        return sum(float(np.sum(y * p)) for y, p in zip(outputs, projections))

    theoretical = backend.gradients(scalar, [np.asarray(x, np.float32), *trainable])
    args = [np.asarray(a, np.float64) for a in (x, *trainable)]
    for index, (name, t) in enumerate(zip(["inputs", *names], theoretical)):
        numerical = np.empty(args[index].size)
        for j in range(args[index].size):
            differences = []
            for sign in (1.0, -1.0):
                moved = [a.copy() for a in args]
                moved[index].reshape(-1)[j] += sign * DELTA
                differences.append(reference_scalar(moved[0], moved[1:]))
            numerical[j] = (differences[0] - differences[1]) / (2 * DELTA)
        assert np.any(t != 0), f"gradient with respect to {name} is identically zero"
        np.testing.assert_allclose(
            np.reshape(t, -1), numerical, rtol=rtol, atol=atol, err_msg=f"gradient with respect to {name}"
        )
