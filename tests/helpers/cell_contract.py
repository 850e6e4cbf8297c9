"""CellContract: every shared check of STYLE.md, run on one zoo cell.

A cell's test file subclasses it as `Test<Cell>(CellContract)` and supplies what is particular to the cell:

    cell_class          the cell
    configs             constructor arguments; the first is the main one, the others are variants (peepholes,
                        reset_after, ...) that the reference-parity checks also cover
    expected_weights    {name: shape} for the main config and `input_dim`
    numpy_step          the lecture's equations in NumPy: (config, weights by name, x_t, states) -> (o_t, states)
    keras_twins         [(config, Keras cell)]: configurations in which the cell computes what a Keras cell
                        computes, given the Keras cell's weights (weights Keras lacks keep their initial values)
    weight_ranges       (optional) {weight name: (low, high)} for weights that must stay in a range
    learned_initial_state  (optional) True for a cell whose initial state is computed from its weights (the NTM's
                        learned r_0 and w_0); default False, an initial state of zeros
    numpy_initial_state (with learned_initial_state) the initial state in NumPy: (config, weights by name, batch)
                        -> [state]; zeros by default. The equation checks start from it, so that the gradient check
                        covers the path through a learned initial state too (d loss / d its weights)
    float64_gradient_configs  (optional) the configs of the float64 gradient check, which costs two runs per weight
                        entry: smaller ones for a cell with many weights (default: `configs`)
    slow_checks         (optional) names of contract checks that take over ~20 s for this cell: marked slow

The checks whose code depends on the backend also run under Keras's JAX backend (marker `jax`): the layer check,
the initial state, the NumPy and Keras parities, the equation gradients, stepping with a mask, XLA, mixed precision,
dropout and bad inputs; the XLA and equation-gradient checks use the backend's own tools (see
`tests/helpers/backend.py`). The config, file and SavedModel round trips, the wrappers (bidirectional, stacked),
bad arguments and the float64 gradient check run under TensorFlow only (a `.keras` file saved there is loaded under
JAX by tests/zoo/jax_backend_test.py).
"""

import functools

import keras
import numpy as np
import pytest

from tests.helpers import backend
from tests.helpers import gradients
from tests.helpers import layer_check
from tests.helpers import reference
from tests.helpers import saved_model
from tests.helpers import serialization

BATCH, TIME, INPUT_DIM = 4, 6, 3


def padding_mask(batch=BATCH, time=TIME):
    """Right padding for some rows and a hole in the middle of another: both must keep the state."""
    mask = np.ones((batch, time), bool)
    mask[1, 4:] = False
    mask[2, 2] = False
    mask[3, 0] = False
    return mask


class CellContract:
    cell_class = None
    configs = ()
    input_dim = INPUT_DIM
    weight_ranges = None
    learned_initial_state = False
    float64_gradient_configs = None
    slow_checks = ()

    def __init_subclass__(cls, **kwargs):
        # Each check named in `slow_checks` becomes, on this subclass only, the contract's check marked slow (marking
        # the contract's own function would mark it for every cell).
        super().__init_subclass__(**kwargs)
        for name in cls.slow_checks:
            check = getattr(CellContract, name, None)
            if not callable(check) or not name.startswith("test_"):
                raise ValueError(f"{cls.__name__}.slow_checks names {name!r}, which is not a check of CellContract")

            @functools.wraps(check)
            def slow(self, *args, _check=check, **kwargs):
                return _check(self, *args, **kwargs)

            setattr(cls, name, pytest.mark.slow(slow))

    # What a subclass supplies.

    def expected_weights(self):
        raise AssertionError("a cell test must list the weights of its main config")

    def numpy_step(self, config, weights, x, states):
        raise AssertionError("a cell test must give the cell's equations in NumPy")

    def keras_twins(self):
        raise AssertionError("a cell test must list (config, Keras cell) pairs that compute the same function")

    def numpy_initial_state(self, config, weights, batch):
        """The cell's initial states in NumPy float64 for `config`, given its weights by name: zeros, unless the
        cell's initial state is learned (`learned_initial_state`), when the cell's test gives its equations."""
        if self.learned_initial_state:
            raise AssertionError("a cell test with learned_initial_state must give the initial state in NumPy "
                                 "(numpy_initial_state)")
        cell = self.make_cell(config)
        sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
        return [np.zeros((batch, size)) for size in sizes]

    # Helpers.

    @property
    def config(self):
        return self.configs[0]

    def make_cell(self, config=None, **overrides):
        return self.cell_class(**{**(config or self.config), **overrides})

    def output_size(self, config=None):
        return self.make_cell(config).output_size

    def inputs(self, batch=BATCH, time=TIME, seed=0, dtype="float32"):
        return np.random.default_rng(seed).normal(size=(batch, time, self.input_dim)).astype(dtype)

    def sequence_layer(self, config=None, seed=0, **rnn_kwargs):
        """A built `keras.layers.RNN(return_sequences, return_state)` around a fresh cell with random weights."""
        dtype = rnn_kwargs.pop("dtype", None)
        cell = self.make_cell(config, **({"dtype": dtype} if dtype else {}))
        layer = keras.layers.RNN(cell, return_sequences=True, return_state=True, dtype=dtype, **rnn_kwargs)
        layer.build((None, None, self.input_dim))
        reference.randomize_weights(layer, seed=seed, ranges=self.weight_ranges)
        return layer

    def sequence_model(self, time=None):
        """Input -> RNN(cell, return_sequences) with random weights."""
        layer = keras.layers.RNN(self.make_cell(), return_sequences=True)
        model = keras.Sequential([keras.Input((time, self.input_dim)), layer])
        reference.randomize_weights(layer, ranges=self.weight_ranges)
        return model

    # The checks.

    @pytest.mark.jax
    def test_layer_check(self):
        layer_check.run_layer_check(
            lambda: keras.layers.RNN(self.make_cell(), return_sequences=True),
            (BATCH, TIME, self.input_dim),
            (BATCH, TIME, self.output_size()),
            self.expected_weights(),
        )

    @pytest.mark.jax
    def test_initial_state(self):
        # The built cell's initial state, with random weights, is the NumPy one: zeros, or, learned, what the weights
        # give; a learned one moves with the weights (else `learned_initial_state` is set for nothing, and the
        # gradient check of the path through it has nothing to check).
        for config in self.configs:
            layer = self.sequence_layer(config)
            states = [keras.ops.convert_to_numpy(s) for s in layer.cell.get_initial_state(batch_size=BATCH)]
            sizes = layer.cell.state_size if isinstance(layer.cell.state_size, list) else [layer.cell.state_size]
            assert [s.shape for s in states] == [(BATCH, size) for size in sizes]
            expected = self.numpy_initial_state(config, reference.weights_by_name(layer), BATCH)
            for index, (state, want) in enumerate(zip(states, expected, strict=True)):
                np.testing.assert_allclose(
                    state, want, atol=1e-6, err_msg=f"initial state {index} of {config}: a cell whose initial state "
                    "depends on its weights sets learned_initial_state and gives numpy_initial_state"
                )
            if self.learned_initial_state:
                reference.randomize_weights(layer, seed=1, ranges=self.weight_ranges)
                moved = [keras.ops.convert_to_numpy(s) for s in layer.cell.get_initial_state(batch_size=BATCH)]
                assert any(not np.allclose(a, b) for a, b in zip(states, moved)), (
                    f"learned_initial_state is set, but the initial state of {config} does not change with the weights"
                )
        if not self.learned_initial_state:
            # Zeros need no weights: an unbuilt cell gives them too.
            cell = self.make_cell()
            assert all(not np.any(keras.ops.convert_to_numpy(s)) for s in cell.get_initial_state(batch_size=BATCH))

    def test_config_round_trip(self):
        for config in self.configs:
            serialization.assert_config_round_trip(self.make_cell(config))
        rnn = keras.layers.RNN(self.make_cell(), return_sequences=True)
        clone = keras.layers.RNN.from_config(rnn.get_config())
        assert type(clone.cell) is self.cell_class
        assert clone.cell.get_config() == rnn.cell.get_config()

    def test_keras_file_round_trip(self, tmp_path):
        serialization.assert_keras_file_round_trip(
            self.sequence_model(), self.inputs(), str(tmp_path / "model.keras")
        )

    def test_saved_model_round_trip(self, tmp_path):
        batches = [self.inputs(batch=2, time=3, seed=1), self.inputs(batch=5, time=8, seed=2)]
        saved_model.assert_saved_model_round_trip(self.sequence_model(), batches, str(tmp_path / "export"))

    @pytest.mark.jax
    def test_numpy_reference(self):
        x = self.inputs()
        for config in self.configs:
            layer = self.sequence_layer(config)
            weights = reference.weights_by_name(layer)
            initial = self.numpy_initial_state(config, weights, BATCH)

            def step(x_t, states, config=config, weights=weights):
                return self.numpy_step(config, weights, x_t, states)

            expected = reference.unroll(step, x, initial)
            reference.assert_same_sequences(reference.run_sequence_layer(layer, x), expected)

    @pytest.mark.jax
    def test_keras_parity(self):
        twins = self.keras_twins()
        assert twins, "every zoo cell reduces to a Keras cell for some configuration; list it in keras_twins()"
        x, mask = self.inputs(), padding_mask()
        for config, twin_cell in twins:
            twin = keras.layers.RNN(twin_cell, return_sequences=True, return_state=True)
            twin.build((None, None, self.input_dim))
            reference.randomize_weights(twin)
            ours = keras.layers.RNN(self.make_cell(config), return_sequences=True, return_state=True)
            ours.build((None, None, self.input_dim))
            reference.copy_weights_by_name(twin, ours)
            for m in (None, mask):
                reference.assert_same_sequences(
                    reference.run_sequence_layer(ours, x, m), reference.run_sequence_layer(twin, x, m)
                )

    def test_gradients_float64(self):
        backend.skip_unless_tensorflow("The float64 gradient check (tf.test.compute_gradient)")
        for config in self.float64_gradient_configs or self.configs:
            layer = self.sequence_layer(config, dtype="float64")
            x = self.inputs(batch=2, time=3, dtype="float64")
            gradients.assert_gradients_match_finite_differences(layer, x)

    @pytest.mark.jax
    def test_gradients_match_the_equations(self):
        # On every backend (float64 Keras layers are TensorFlow only): float32 autodiff against float64 finite
        # differences of the NumPy equations, from the NumPy initial state of the same (moved) weights, so that a
        # learned initial state's weights are checked through it.
        x = self.inputs(batch=2, time=3)
        for config in self.configs:
            layer = self.sequence_layer(config)

            def equations(x, weights, config=config):
                outputs, states = reference.unroll(
                    lambda x_t, s: self.numpy_step(config, weights, x_t, s),
                    x,
                    self.numpy_initial_state(config, weights, len(x)),
                )
                return [outputs, *states]

            gradients.assert_gradients_match_reference(layer, x, equations)

    # Under JAX the masked runs, forward and reversed, suffice: a mask's all-true rows take the plain path too.
    @pytest.mark.parametrize("masked", [False, pytest.param(True, marks=pytest.mark.jax)], ids=["plain", "masked"])
    @pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "reversed"])
    def test_stepping_equals_sequence_layer(self, masked, go_backwards):
        x, mask = self.inputs(), (padding_mask() if masked else None)
        looped = self.sequence_layer(go_backwards=go_backwards)
        unrolled = self.sequence_layer(go_backwards=go_backwards, unroll=True)
        reference.copy_weights_by_name(looped, unrolled)
        by_hand = reference.unroll(
            reference.cell_step(looped.cell), x, looped.get_initial_state(BATCH), mask, go_backwards
        )
        reference.assert_same_sequences(reference.run_sequence_layer(looped, x, mask), by_hand)
        reference.assert_same_sequences(reference.run_sequence_layer(unrolled, x, mask), by_hand)
        # And the lecture's equations agree on the masked / reversed run too.
        weights = reference.weights_by_name(looped)
        expected = reference.unroll(
            lambda x_t, s: self.numpy_step(self.config, weights, x_t, s),
            x,
            looped.get_initial_state(BATCH),
            mask,
            go_backwards,
        )
        reference.assert_same_sequences(by_hand, expected)

    def test_bidirectional(self):
        x = self.inputs()
        bidirectional = keras.layers.Bidirectional(keras.layers.RNN(self.make_cell(), return_sequences=True))
        y = keras.ops.convert_to_numpy(bidirectional(x))
        size = self.output_size()
        assert y.shape == (BATCH, TIME, 2 * size)
        forward = self.sequence_layer()
        backward = self.sequence_layer(go_backwards=True)
        reference.copy_weights_by_name(bidirectional.forward_layer, forward)
        reference.copy_weights_by_name(bidirectional.backward_layer, backward)
        np.testing.assert_allclose(y[..., :size], reference.run_sequence_layer(forward, x)[0], atol=1e-5)
        backward_outputs = reference.run_sequence_layer(backward, x)[0][:, ::-1]
        np.testing.assert_allclose(y[..., size:], backward_outputs, atol=1e-5)

    def test_stacked(self):
        x = self.inputs()
        stacked = keras.layers.RNN([self.make_cell(), self.make_cell()], return_sequences=True)
        stacked.build((None, None, self.input_dim))
        reference.randomize_weights(stacked, ranges=self.weight_ranges)
        first = keras.layers.RNN(self.make_cell(), return_sequences=True)
        first.build((None, None, self.input_dim))
        second = keras.layers.RNN(self.make_cell(), return_sequences=True)
        second.build((None, None, self.output_size()))
        reference.copy_weights_by_name(stacked.cell.cells[0], first.cell)
        reference.copy_weights_by_name(stacked.cell.cells[1], second.cell)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(stacked(x)), keras.ops.convert_to_numpy(second(first(x))), atol=1e-5
        )

    @pytest.mark.jax
    def test_jit_compile(self):
        x = self.inputs()
        layer = self.sequence_layer()
        eager = reference.run_sequence_layer(layer, x)
        outputs, *states = backend.xla_compiled(lambda x: layer(x), layer.variables)(x)
        reference.assert_same_sequences((outputs, states), eager)
        # A training step compiled by XLA gives the loss of the same step uncompiled (a graph under TensorFlow,
        # op by op under JAX).
        losses = []
        for jit in (False, True):
            model = self.sequence_model(time=TIME)
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=jit)
            losses.append(model.train_on_batch(x, np.zeros((BATCH, TIME, self.output_size()), "float32")))
        np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)

    @pytest.mark.jax
    def test_mixed_float16(self):
        x = self.inputs()
        full = self.sequence_layer()
        mixed = self.sequence_layer(dtype="mixed_float16")
        reference.copy_weights_by_name(full, mixed)
        outputs, *states = mixed(x)
        dtype = keras.backend.standardize_dtype  # a backend's own dtype (e.g. torch.float16) as Keras's name
        assert dtype(outputs.dtype) == "float16" and all(dtype(s.dtype) == "float16" for s in states)
        assert all(w.dtype == "float32" for w in mixed.weights)
        # float16 keeps ~3 significant digits; errors compound over 6 steps.
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(outputs).astype("float32"), reference.run_sequence_layer(full, x)[0], atol=2e-2
        )
        model = keras.Sequential(
            [
                keras.Input((TIME, self.input_dim)),
                keras.layers.RNN(self.make_cell(dtype="mixed_float16"), dtype="mixed_float16"),
                keras.layers.Dense(1, dtype="float32"),
            ]
        )
        model.compile(optimizer="sgd", loss="mse")
        assert np.isfinite(model.train_on_batch(x, np.ones((BATCH, 1), "float32")))

    @pytest.mark.jax
    def test_dropout(self):
        x = self.inputs()
        plain = self.sequence_layer()
        dropped = self.sequence_layer(self.config | {"dropout": 0.5, "recurrent_dropout": 0.5, "seed": 1})
        reference.copy_weights_by_name(plain, dropped)
        # Inference ignores dropout.
        reference.assert_same_sequences(
            reference.run_sequence_layer(dropped, x), reference.run_sequence_layer(plain, x)
        )
        # Training draws one mask per sequence; it has an effect and is dropped after the call.
        outputs = keras.ops.convert_to_numpy(dropped(x, training=True)[0])
        assert np.all(np.isfinite(outputs))
        assert not np.allclose(outputs, reference.run_sequence_layer(plain, x)[0]), "dropout had no effect"
        assert dropped.cell._dropout_mask is None and dropped.cell._recurrent_dropout_mask is None
        # Where the masks act, checked against the equations: given masks (as keras.layers.RNN pre-draws them),
        # x_t is masked and the fed-back state is masked where it enters the matrix products.
        rng = np.random.default_rng(5)
        input_mask = (rng.uniform(size=(BATCH, self.input_dim)) > 0.5) * 2.0
        state_size = dropped.get_initial_state(BATCH)[0].shape[-1]
        recurrent_mask = (rng.uniform(size=(BATCH, state_size)) > 0.5) * 2.0
        dropped.cell._dropout_mask = keras.ops.convert_to_tensor(input_mask, "float32")
        dropped.cell._recurrent_dropout_mask = keras.ops.convert_to_tensor(recurrent_mask, "float32")
        outputs, *states = dropped(x, training=True)
        weights = reference.weights_by_name(dropped)
        expected = reference.unroll(
            lambda x_t, s: self.numpy_step(self.config, weights, x_t * input_mask, s, recurrent_mask=recurrent_mask),
            x,
            dropped.get_initial_state(BATCH),
        )
        reference.assert_same_sequences(
            (keras.ops.convert_to_numpy(outputs), [keras.ops.convert_to_numpy(s) for s in states]), expected
        )

    def test_bad_arguments(self):
        for units in (0, -3, 2.5, True, "8"):
            with pytest.raises(ValueError, match=rf"units must be a positive int, got {units!r}"):
                self.make_cell(units=units)
        with pytest.raises(ValueError, match=r"activation must be a Keras activation .* got 'tanhh'"):
            self.make_cell(activation="tanhh")
        for rate in (-0.1, 1.0, 1.5):
            with pytest.raises(ValueError, match=rf"dropout must be a float in \[0, 1\), got {rate!r}"):
                self.make_cell(dropout=rate)
        with pytest.raises(ValueError, match=r"recurrent_dropout must be a float in \[0, 1\)"):
            self.make_cell(recurrent_dropout=2)

    @pytest.mark.jax
    def test_bad_inputs(self):
        name = self.cell_class.__name__
        with pytest.raises(ValueError, match=rf"{name} expects a step input of shape \(batch, features\).*got shape"):
            keras.layers.RNN(self.make_cell())(np.zeros((BATCH, TIME), "float32"))
        with pytest.raises(ValueError, match=r"known feature size"):
            keras.layers.RNN(self.make_cell())(keras.Input((TIME, None)))
        layer = keras.layers.RNN(self.make_cell())
        layer(self.inputs())
        with pytest.raises(ValueError, match=rf"expected shape=\(None, {self.input_dim}\), found shape=\({BATCH}, {self.input_dim + 2}\)"):
            layer(np.zeros((BATCH, TIME, self.input_dim + 2), "float32"))
