import keras
import numpy as np
import pytest

from tests.helpers.cell_contract import CellContract
from zoo.cells import LeakyCell


class TestLeakyCell(CellContract):
    cell_class = LeakyCell
    configs = (
        {"units": 5, "alpha": 0.3},
        {"units": 5, "alpha": [0.05, 0.2, 0.5, 0.9, 1.0], "trainable_alpha": True},
    )
    weight_ranges = {"alpha": (0.05, 1.0)}

    def expected_weights(self):
        return {"kernel": (3, 5), "recurrent_kernel": (5, 5), "bias": (5,), "alpha": (5,)}

    def numpy_step(self, config, w, x, states, recurrent_mask=1.0):
        # s_t = (1 - alpha) s_{t-1} + alpha tanh(b + W s_{t-1} + U x_t)
        s_prev = states[0]
        s = (1.0 - w["alpha"]) * s_prev + w["alpha"] * np.tanh(
            w["bias"] + (recurrent_mask * s_prev) @ w["recurrent_kernel"] + x @ w["kernel"]
        )
        return s, [s]

    def keras_twins(self):
        # alpha = 1: no leak, the Elman recurrence.
        return [({"units": 5, "alpha": 1.0}, keras.layers.SimpleRNNCell(5))]


def test_alpha_is_fixed_or_trained():
    fixed = keras.layers.RNN(LeakyCell(3, alpha=0.25))
    fixed.build((None, None, 2))
    assert [w.name for w in fixed.non_trainable_weights] == ["alpha"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fixed.cell.alpha), [0.25] * 3)

    trained = keras.layers.RNN(LeakyCell(3, alpha=0.5, trainable_alpha=True))
    model = keras.Sequential([keras.Input((4, 2)), trained, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(50.0), loss="mse")
    model.fit(np.ones((8, 4, 2), "float32"), np.full((8, 1), 100.0, "float32"), epochs=3, verbose=0)
    alpha = keras.ops.convert_to_numpy(trained.cell.alpha)
    assert not np.allclose(alpha, 0.5), "alpha did not train"
    # A huge learning rate pushes alpha out of range; the constraint keeps it in [1e-3, 1].
    assert np.all((alpha >= 1e-3) & (alpha <= 1.0)), alpha


@pytest.mark.parametrize(
    "alpha, message",
    [
        (0.0, r"alpha must be in \(0, 1\], got 0.0"),
        (1.5, r"alpha must be in \(0, 1\], got 1.5"),
        (-0.2, r"alpha must be in \(0, 1\], got -0.2"),
        ([0.5, 0.5], r"alpha must have one value per unit \(3\), got 2 values"),
        ("fast", r"alpha must be a float or a list of 3 floats in \(0, 1\], got 'fast'"),
    ],
)
def test_bad_alpha(alpha, message):
    with pytest.raises(ValueError, match=message):
        LeakyCell(3, alpha=alpha)


def test_numpy_alpha_serializes():
    config = LeakyCell(2, alpha=np.float32(0.5)).get_config()
    assert config["alpha"] == 0.5 and type(config["alpha"]) is float
    config = LeakyCell(2, alpha=np.array([0.5, 0.25])).get_config()
    assert config["alpha"] == [0.5, 0.25]
    keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(LeakyCell(2, alpha=np.float32(0.5))))
