"""TreeCompositionContract: the shared checks of STYLE.md, run on one tree composition function (`zoo.layers`).

A composition's test file subclasses it as `Test<Composition>(TreeCompositionContract)` and supplies:

    layer_class         the composition
    configs             constructor arguments; the first is the main one, the others variants the reference covers
    input_dim           the size of x the checks use
    arity               K, the number of child slots the checks use
    expected_weights    (config) -> {name: shape} for `input_dim` and `arity`
    numpy_compose       the paper's equations in NumPy, written out in the test file: (config, weights by name, x
                        [n, input_dim], children's states [[n, K, units], ...] (zeros at absent children), mask [n, K]
                        bool) -> the list of new states, each [n, units]

The checks whose code depends on the backend also run under Keras's JAX backend (marker `jax`): weights, the NumPy
reference, absent children, XLA and bad shapes. The config and file round trips, bad arguments and the float64
gradient check run under TensorFlow only.
"""

import keras
import numpy as np
import pytest

from tests.helpers import backend
from tests.helpers import reference
from tests.helpers import serialization

NODES = 5


def children_mask(nodes=NODES, arity=2):
    """Node 0 has every child, node 1 only its first, node 2 none (a leaf), node 3 only its last; the rest all."""
    mask = np.ones((nodes, arity), bool)
    mask[1, 1:] = False
    mask[2, :] = False
    mask[3, :-1] = False
    return mask


class TreeCompositionContract:
    layer_class = None
    configs = ()
    input_dim = 3
    arity = 2

    def expected_weights(self, config):
        raise AssertionError("a composition test must list the weights of each config")

    def numpy_compose(self, config, weights, x, children_states, mask):
        raise AssertionError("a composition test must give the composition's equations in NumPy")

    # Helpers.

    @property
    def units(self):
        return self.configs[0]["units"]

    def make(self, config=None, seed=0, dtype=None):
        layer = self.layer_class(**(config or self.configs[0]), **({"dtype": dtype} if dtype else {}))
        states = len(layer.state_size)
        layer.build((None, self.input_dim), [(None, self.arity, layer.units)] * states, (None, self.arity))
        reference.randomize_weights(layer, seed=seed)
        return layer

    def data(self, nodes=NODES, seed=0, dtype="float32", garbage=None):
        """(x, children's states, mask); with `garbage`, absent children's slots hold that value instead of zeros."""
        rng = np.random.default_rng(seed)
        states = len(self.layer_class(**self.configs[0]).state_size)
        x = rng.normal(size=(nodes, self.input_dim)).astype(dtype)
        children = [rng.normal(size=(nodes, self.arity, self.units)).astype(dtype) for _ in range(states)]
        mask = children_mask(nodes, self.arity)
        children = [np.where(mask[..., None], s, 0.0 if garbage is None else garbage).astype(dtype) for s in children]
        return x, children, mask

    def call(self, layer, x, children, mask):
        return [keras.ops.convert_to_numpy(s) for s in layer(x, children, children_mask=mask)]

    def model(self):
        """A functional model (x, children's states..., 0/1 mask) -> the new states side by side."""
        layer = self.layer_class(**self.configs[0])
        x = keras.Input((self.input_dim,), name="x")
        children = [keras.Input((self.arity, self.units), name=f"children_{i}") for i in range(len(layer.state_size))]
        mask = keras.Input((self.arity,), name="children_mask")
        states = layer(x, children, children_mask=mask)
        output = states[0] if len(states) == 1 else keras.layers.Concatenate()(states)
        model = keras.Model([x, *children, mask], output)
        reference.randomize_weights(layer)
        return model

    # The checks.

    @pytest.mark.jax
    def test_weights(self):
        for config in self.configs:
            layer = self.make(config)
            weights = {w.name: tuple(w.shape) for w in layer.weights}
            assert weights == self.expected_weights(config), f"{config}: weights {weights}"
            assert len(layer.weights) == len(weights), "two weights share a name"

    @pytest.mark.jax
    def test_numpy_reference(self):
        x, children, mask = self.data()
        for config in self.configs:
            layer = self.make(config)
            expected = self.numpy_compose(config, reference.weights_by_name(layer), x, children, mask)
            actual = self.call(layer, x, children, mask)
            assert len(actual) == len(expected) == len(layer.state_size)
            for index, (a, e) in enumerate(zip(actual, expected)):
                np.testing.assert_allclose(a, e, atol=1e-5, err_msg=f"state {index} of {config}")

    @pytest.mark.jax
    def test_absent_children_never_change_a_result(self):
        layer = self.make()
        x, children, mask = self.data()
        expected = self.call(layer, x, children, mask)
        _, garbage, _ = self.data(garbage=np.nan)
        for m in (mask, mask.astype("float32"), mask.astype("int32")):  # bool or 0/1 numbers
            for a, e in zip(self.call(layer, x, garbage, m), expected):
                np.testing.assert_allclose(a, e, atol=1e-6)
        # No mask: every slot is a child, as an all-True mask says.
        full = np.ones_like(mask)
        for a, e in zip(self.call(layer, x, garbage, None), self.call(layer, x, garbage, full)):
            np.testing.assert_array_equal(a, e)

    def test_config_round_trip(self):
        for config in self.configs:
            serialization.assert_config_round_trip(self.layer_class(**config, name="composition"))

    def test_gradients_float64(self):
        backend.skip_unless_tensorflow("The float64 gradient check (tf.test.compute_gradient)")
        import tensorflow as tf

        x, children, mask = self.data(nodes=4, dtype="float64")
        rng = np.random.default_rng(1)
        for config in self.configs:
            layer = self.make(config, dtype="float64")
            projections = [tf.constant(rng.normal(size=(4, layer.units))) for _ in layer.state_size]

            def scalar(x, *tensors, layer=layer, projections=projections):
                states = len(layer.state_size)
                outputs, _ = layer.stateless_call(list(tensors[states:]), [], x, list(tensors[:states]),
                                                  children_mask=mask)
                return sum(tf.reduce_sum(y * p) for y, p in zip(outputs, projections))

            weights = [tf.constant(keras.ops.convert_to_numpy(v)) for v in layer.trainable_variables]
            arguments = [tf.constant(x), *[tf.constant(s) for s in children], *weights]
            theoretical, numerical = tf.test.compute_gradient(scalar, arguments)
            names = ["x"] + [f"children_states[{i}]" for i in range(len(children))]
            names += [v.name for v in layer.trainable_variables]
            for name, t, n in zip(names, theoretical, numerical):
                assert np.any(t != 0), f"{config}: gradient with respect to {name} is identically zero"
                np.testing.assert_allclose(t, n, rtol=1e-5, atol=1e-6, err_msg=f"{config}: gradient wrt {name}")

    @pytest.mark.jax
    def test_jit_compile(self):
        x, children, mask = self.data()
        for config in self.configs:
            layer = self.make(config)
            eager = self.call(layer, x, children, mask)
            specs = [((None, self.input_dim), "float32")] + [((None, self.arity, layer.units), "float32")] * len(
                children) + [((None, self.arity), "bool")]
            compiled = backend.xla_compiled(
                lambda x, *rest, layer=layer: layer(x, list(rest[:-1]), children_mask=rest[-1]), layer.variables,
                specs,
            )(x, *children, mask)
            for c, e in zip(compiled, eager):
                np.testing.assert_allclose(c, e, atol=1e-5)

    def test_keras_file_round_trip(self, tmp_path):
        x, children, mask = self.data()
        serialization.assert_keras_file_round_trip(
            self.model(), [x, *children, mask.astype("float32")], str(tmp_path / "composition.keras")
        )

    def test_bad_arguments(self):
        for units in (0, -3, 2.5, True, "8"):
            with pytest.raises(ValueError, match=rf"units must be a positive int, got {units!r}"):
                self.layer_class(**(self.configs[0] | {"units": units}))

    @pytest.mark.jax
    def test_bad_shapes(self):
        name = self.layer_class.__name__
        layer = self.layer_class(**self.configs[0])
        states = len(layer.state_size)
        good = [(None, self.arity, self.units)] * states
        with pytest.raises(ValueError, match=rf"{name} expects inputs of shape \(nodes, input_dim\).*got shape"):
            self.layer_class(**self.configs[0]).build((None, 2, self.input_dim), good)
        with pytest.raises(ValueError, match=rf"{name} expects children_states as a list of {states} tensor"):
            self.layer_class(**self.configs[0]).build((None, self.input_dim), good[:1] * (states + 1))
        with pytest.raises(ValueError, match=rf"{name} expects children_states\[0\] of shape \(nodes, K, "
                                             rf"units={self.units}\).*got shape \(None, {self.arity}, "
                                             rf"{self.units + 1}\)"):
            self.layer_class(**self.configs[0]).build((None, self.input_dim),
                                                       [(None, self.arity, self.units + 1)] * states)
        with pytest.raises(ValueError, match=r"with a known number of child slots K"):
            self.layer_class(**self.configs[0]).build((None, self.input_dim), [(None, None, self.units)] * states)
        with pytest.raises(ValueError, match=rf"{name} expects a children_mask of shape \(nodes, K={self.arity}\)"):
            self.layer_class(**self.configs[0]).build((None, self.input_dim), good, (None, self.arity + 1))
        # Eagerly, through the call.
        x, children, mask = self.data()
        with pytest.raises(ValueError, match=rf"{name} expects children_states\[0\] of shape"):
            layer(x, [c[:, :, :-1] for c in children], children_mask=mask)
