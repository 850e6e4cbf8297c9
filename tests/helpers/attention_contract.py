"""AttentionContract: the shared checks of STYLE.md, run on one zoo attention mechanism (`zoo.layers`).

A mechanism's test file subclasses it as `Test<Mechanism>(AttentionContract)` and supplies:

    layer_class         the mechanism
    configs             constructor arguments; the first is the main one, the others variants the reference covers
    query_dim           the query size the checks use (memory_dim is MEMORY_DIM unless a subclass changes it)
    expected_weights    (config) -> {name: shape} for `query_dim` and `memory_dim`
    numpy_scores        the scores e_t of the lecture's equations in NumPy: (config, weights by name, query, memory)
                        -> [batch, S]

The checks whose code depends on the backend also run under Keras's JAX backend (marker `jax`): weights, the NumPy
reference, masking, XLA and bad shapes. The config, file and SavedModel round trips and the float64 gradient check run
under TensorFlow only.
"""

import keras
import numpy as np
import pytest

from tests.helpers import backend
from tests.helpers import reference
from tests.helpers import saved_model
from tests.helpers import serialization

BATCH, SOURCE_TIME, MEMORY_DIM = 4, 5, 6


def source_mask(batch=BATCH, time=SOURCE_TIME):
    """Full rows, a short row, a row with a hole, and a row with no valid position at all."""
    mask = np.ones((batch, time), bool)
    mask[1, 3:] = False
    mask[2, 1] = False
    mask[3, :] = False
    return mask


def numpy_masked_softmax(scores, mask):
    """α_t = softmax over the valid positions; 0 at masked positions and in rows with no valid position."""
    scores = np.where(mask, scores, -np.inf)
    top = np.max(scores, axis=-1, keepdims=True)
    exp = np.where(mask, np.exp(scores - np.where(np.isfinite(top), top, 0.0)), 0.0)
    total = np.sum(exp, axis=-1, keepdims=True)
    return exp / np.where(total > 0, total, 1.0)


def numpy_attention(scores, memory, mask):
    """(context [batch, memory_dim], alignment [batch, S]) from the scores, in NumPy."""
    alignment = numpy_masked_softmax(scores, mask)
    return np.einsum("bs,bsm->bm", alignment, memory), alignment


class AttentionContract:
    layer_class = None
    configs = ()
    query_dim = 3
    memory_dim = MEMORY_DIM

    def expected_weights(self, config):
        raise AssertionError("a mechanism test must list the weights of each config")

    def numpy_scores(self, config, weights, query, memory):
        raise AssertionError("a mechanism test must give the mechanism's scores in NumPy")

    # Helpers.

    def make(self, config=None, seed=0, dtype=None):
        layer = self.layer_class(**(config or self.configs[0]), **({"dtype": dtype} if dtype else {}))
        layer.build((None, self.query_dim), (None, None, self.memory_dim))
        reference.randomize_weights(layer, seed=seed)
        return layer

    def data(self, batch=BATCH, time=SOURCE_TIME, seed=0, dtype="float32"):
        rng = np.random.default_rng(seed)
        query = rng.normal(size=(batch, self.query_dim)).astype(dtype)
        memory = rng.normal(size=(batch, time, self.memory_dim)).astype(dtype)
        return query, memory

    def model(self):
        """A functional model (query, memory, 0/1 mask) -> [context; alignment], for the file round trips."""
        query = keras.Input((self.query_dim,), name="query")
        memory = keras.Input((None, self.memory_dim), name="memory")
        mask = keras.Input((None,), name="memory_mask")
        layer = self.layer_class(**self.configs[0])
        context, alignment = layer(query, memory, memory_mask=mask)
        model = keras.Model([query, memory, mask], keras.layers.Concatenate()([context, alignment]))
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
        query, memory = self.data()
        mask = source_mask()
        for config in self.configs:
            layer = self.make(config)
            scores = self.numpy_scores(config, reference.weights_by_name(layer), query, memory)
            np.testing.assert_allclose(
                keras.ops.convert_to_numpy(layer.score(query, layer.project_memory(memory))), scores, rtol=1e-5,
                atol=1e-5, err_msg=f"scores of {config}",
            )
            expected_context, expected_alignment = numpy_attention(scores, memory, mask)
            for keys in (None, layer.project_memory(memory)):  # keys computed in the call or once beforehand
                context, alignment = layer(query, memory, memory_mask=mask, keys=keys)
                np.testing.assert_allclose(keras.ops.convert_to_numpy(alignment), expected_alignment, atol=1e-5)
                np.testing.assert_allclose(keras.ops.convert_to_numpy(context), expected_context, atol=1e-5)
            # No mask: every position counts.
            context, alignment = layer(query, memory)
            np.testing.assert_allclose(
                keras.ops.convert_to_numpy(alignment), numpy_attention(scores, memory, np.ones_like(mask))[1],
                atol=1e-5,
            )

    @pytest.mark.jax
    def test_masked_positions_get_no_weight(self):
        query, memory = self.data()
        mask = source_mask()
        layer = self.make()
        context, alignment = [keras.ops.convert_to_numpy(t) for t in layer(query, memory, memory_mask=mask)]
        assert np.all(alignment[~mask] == 0.0), "a masked source position got weight"
        np.testing.assert_allclose(alignment[mask.any(axis=1)].sum(axis=1), 1.0, rtol=1e-5)
        assert np.all(np.isfinite(context)) and np.all(np.isfinite(alignment)), "a row with no valid position"
        np.testing.assert_array_equal(alignment[3], 0.0)
        np.testing.assert_array_equal(context[3], 0.0)
        # Whatever sits at the masked positions (here huge values) changes nothing, also with 0/1 float masks.
        garbage = np.where(mask[..., None], memory, np.float32(1e4))
        again = layer(query, garbage, memory_mask=mask.astype("float32"))
        np.testing.assert_allclose(keras.ops.convert_to_numpy(again[0])[:3], context[:3], atol=1e-5)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(again[1]), alignment, atol=1e-6)

    def test_config_round_trip(self):
        for config in self.configs:
            serialization.assert_config_round_trip(self.layer_class(**config, name="attention"))

    def test_gradients_float64(self):
        backend.skip_unless_tensorflow("The float64 gradient check (tf.test.compute_gradient)")
        import tensorflow as tf

        query, memory = self.data(batch=2, time=3, dtype="float64")
        mask = np.array([[True, True, True], [True, False, True]])
        rng = np.random.default_rng(1)
        projections = [tf.constant(rng.normal(size=(2, self.memory_dim))), tf.constant(rng.normal(size=(2, 3)))]
        for config in self.configs:
            layer = self.make(config, dtype="float64")

            def scalar(query, memory, *weights, layer=layer):
                outputs, _ = layer.stateless_call(list(weights), [], query, memory, memory_mask=mask)
                return sum(tf.reduce_sum(y * p) for y, p in zip(outputs, projections))

            weights = [tf.constant(keras.ops.convert_to_numpy(v)) for v in layer.trainable_variables]
            arguments = [tf.constant(query), tf.constant(memory), *weights]
            theoretical, numerical = tf.test.compute_gradient(scalar, arguments)
            names = ["query", "memory"] + [v.name for v in layer.trainable_variables]
            for name, t, n in zip(names, theoretical, numerical):
                assert np.any(t != 0), f"{config}: gradient with respect to {name} is identically zero"
                np.testing.assert_allclose(t, n, rtol=1e-5, atol=1e-6, err_msg=f"{config}: gradient wrt {name}")

    @pytest.mark.jax
    def test_jit_compile(self):
        query, memory = self.data()
        mask = source_mask()
        for config in self.configs:
            layer = self.make(config)
            eager = [keras.ops.convert_to_numpy(t) for t in layer(query, memory, memory_mask=mask)]
            compiled = backend.xla_compiled(
                lambda q, m, k, layer=layer: layer(q, m, memory_mask=k), layer.variables,
                [((None, self.query_dim), "float32"), ((None, None, self.memory_dim), "float32"),
                 ((None, None), "bool")],
            )(query, memory, mask)
            for c, e in zip(compiled, eager):
                np.testing.assert_allclose(c, e, atol=1e-5)

    def test_keras_file_round_trip(self, tmp_path):
        query, memory = self.data()
        serialization.assert_keras_file_round_trip(
            self.model(), [query, memory, source_mask().astype("float32")], str(tmp_path / "attention.keras")
        )

    def test_saved_model_round_trip(self, tmp_path):
        batches = []
        for batch, time, seed in ((4, 3, 1), (5, 8, 2)):
            query, memory = self.data(batch, time, seed)
            batches.append([query, memory, source_mask(batch, time).astype("float32")])
        saved_model.assert_saved_model_round_trip(self.model(), batches, str(tmp_path / "export"))

    @pytest.mark.jax
    def test_bad_shapes(self):
        name = self.layer_class.__name__
        with pytest.raises(ValueError, match=rf"{name} expects a query of shape \(batch, query_dim\)"):
            self.layer_class(**self.configs[0]).build((None, 2, self.query_dim), (None, None, self.memory_dim))
        with pytest.raises(ValueError, match=rf"{name} expects a memory of shape \(batch, source_time, memory_dim\)"):
            self.layer_class(**self.configs[0]).build((None, self.query_dim), (None, self.memory_dim))
