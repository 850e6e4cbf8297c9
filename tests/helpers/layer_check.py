"""The generic layer check: symbolic and eager calls, output shape, weights, one `fit` step, masking."""

import keras
import numpy as np


def run_layer_check(make_layer, input_shape, expected_output_shape, expected_weights, check_masking=True):
    """Runs the generic checks on a fresh layer from `make_layer()`.

    Args:
        make_layer: returns a new, unbuilt layer that maps [batch, time, features] to `expected_output_shape`.
        input_shape: (batch, time, features) of the eager check.
        expected_output_shape: the eager output shape.
        expected_weights: {weight name: shape} of every weight the layer must create, no more.
        check_masking: also check that padding a sequence behind a mask leaves the output unchanged.
    """
    batch, time, features = input_shape
    rng = np.random.default_rng(0)
    x = rng.normal(size=input_shape).astype("float32")

    # Symbolic call: static shape with unknown batch and time.
    symbolic = make_layer()
    y_sym = symbolic(keras.Input((None, features)))
    expected_symbolic = (None, None, *expected_output_shape[2:]) if len(expected_output_shape) == 3 else (
        None,
        *expected_output_shape[1:],
    )
    assert tuple(y_sym.shape) == expected_symbolic, f"symbolic output shape {y_sym.shape}, expected {expected_symbolic}"

    # Eager call and weights.
    layer = make_layer()
    y = keras.ops.convert_to_numpy(layer(x))
    assert y.shape == tuple(expected_output_shape), f"eager output shape {y.shape}, expected {expected_output_shape}"
    assert np.all(np.isfinite(y))
    weights = {w.name: tuple(w.shape) for w in layer.weights}
    assert weights == {k: tuple(v) for k, v in expected_weights.items()}, f"weights {weights}"
    assert len(layer.weights) == len(expected_weights), "two weights share a name"

    # One fit step changes every trainable weight and gives a finite loss.
    model = keras.Sequential([keras.Input((time, features)), layer, keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = [keras.ops.convert_to_numpy(w) for w in layer.trainable_weights]
    history = model.fit(x, rng.normal(size=(batch, 1)).astype("float32"), epochs=1, batch_size=batch, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    for w, old in zip(layer.trainable_weights, before):
        assert not np.allclose(keras.ops.convert_to_numpy(w), old), f"fit did not update {w.name}"

    if check_masking:
        assert_padding_is_masked(layer, x)


def assert_padding_is_masked(layer, x, atol=1e-5):
    """Appending masked garbage steps to a sequence must not change the output of `layer`."""
    batch, time, features = x.shape
    garbage = np.full((batch, 3, features), 7.0, dtype="float32")
    padded = np.concatenate([x, garbage], axis=1)
    mask = np.concatenate([np.ones((batch, time), bool), np.zeros((batch, 3), bool)], axis=1)
    y_plain = keras.ops.convert_to_numpy(layer(x))
    y_masked = keras.ops.convert_to_numpy(layer(padded, mask=mask))
    if y_plain.ndim == 3:  # return_sequences: compare the unpadded steps
        y_masked = y_masked[:, :time]
    np.testing.assert_allclose(y_masked, y_plain, atol=atol, err_msg="masked padding changed the output")
