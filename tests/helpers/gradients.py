"""Float64 gradient check: autodiff gradients of a layer against central finite differences."""

import keras
import numpy as np
import tensorflow as tf


def assert_gradients_match_finite_differences(layer, x, rtol=1e-5, atol=1e-6):
    """Checks d(sum(P * layer(x)))/d(x, weights) against finite differences, P fixed random projections of every
    output (sequences and final states).

    `layer` must be float64 and built; the weights should be randomized beforehand so that no gradient is
    trivially zero.
    """
    x = tf.constant(x, dtype=tf.float64)
    trainable = [tf.constant(keras.ops.convert_to_numpy(v)) for v in layer.trainable_variables]
    non_trainable = [keras.ops.convert_to_numpy(v) for v in layer.non_trainable_variables]
    rng = np.random.default_rng(1)
    shapes = layer.compute_output_shape(tuple(x.shape))
    shapes = list(shapes) if isinstance(shapes[0], (tuple, list)) else [shapes]
    projections = [tf.constant(rng.normal(size=shape), dtype=tf.float64) for shape in shapes]

    def scalar(x, *weights):
        outputs, _ = layer.stateless_call(list(weights), non_trainable, x)
        return sum(tf.reduce_sum(y * p) for y, p in zip(keras.tree.flatten(outputs), projections))

    theoretical, numerical = tf.test.compute_gradient(scalar, [x, *trainable])
    names = ["inputs"] + [v.name for v in layer.trainable_variables]
    for name, t, n in zip(names, theoretical, numerical):
        assert np.any(t != 0), f"gradient with respect to {name} is identically zero"
        np.testing.assert_allclose(t, n, rtol=rtol, atol=atol, err_msg=f"gradient with respect to {name}")
