"""SequenceLayerContract: the shared checks run on every zoo sequence layer (`zoo.rnn.*`).

A layer's test file subclasses it as `Test<Layer>(SequenceLayerContract)` and sets:

    layer_class        the sequence layer
    config             small constructor arguments
    expected_weights   {name: shape} for `config` and 3 input features
    keras_twins        [(our config, Keras layer factory taking the RNN keyword arguments)]: configurations in which
                       the layer computes what a Keras layer computes, given the Keras layer's weights

The checks whose code depends on the backend also run under Keras's JAX backend (marker `jax`): the layer check,
the parities, the stateful layer, XLA training and bad inputs. The config, file and SavedModel round trips and bad
arguments run under TensorFlow only.
"""

import keras
import numpy as np
import pytest

from tests.helpers import backend
from tests.helpers import layer_check
from tests.helpers import reference
from tests.helpers import saved_model
from tests.helpers import serialization
from tests.helpers.cell_contract import BATCH
from tests.helpers.cell_contract import INPUT_DIM
from tests.helpers.cell_contract import TIME
from tests.helpers.cell_contract import padding_mask


def _inputs(batch=BATCH, time=TIME, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, time, INPUT_DIM)).astype("float32")


class SequenceLayerContract:
    layer_class = None
    config = {}
    weight_ranges = None

    def expected_weights(self):
        raise AssertionError("a sequence layer test must list its weights")

    def keras_twins(self):
        raise AssertionError("a sequence layer test must list the Keras layers it reduces to")

    def make(self, **overrides):
        return self.layer_class(**{**self.config, **overrides})

    @pytest.mark.jax
    def test_layer_check(self):
        size = self.make().cell.output_size
        layer_check.run_layer_check(
            lambda: self.make(return_sequences=True), (BATCH, TIME, INPUT_DIM), (BATCH, TIME, size),
            self.expected_weights(),
        )
        layer_check.run_layer_check(
            lambda: self.make(), (BATCH, TIME, INPUT_DIM), (BATCH, size), self.expected_weights()
        )

    @pytest.mark.jax
    def test_equals_keras_rnn_around_the_cell(self):
        ours = self.make(return_sequences=True, return_state=True)
        ours.build((None, None, INPUT_DIM))
        reference.randomize_weights(ours, ranges=self.weight_ranges)
        generic = keras.layers.RNN(ours.cell_class(**ours.cell.get_config()), return_sequences=True,
                                   return_state=True)
        generic.build((None, None, INPUT_DIM))
        reference.copy_weights_by_name(ours, generic)
        x = _inputs()
        reference.assert_same_sequences(reference.run_sequence_layer(ours, x), reference.run_sequence_layer(generic, x))

    @pytest.mark.jax
    @pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "reversed"])
    def test_keras_parity(self, go_backwards):
        twins = self.keras_twins()
        assert twins
        x, mask = _inputs(), padding_mask()
        rnn_args = dict(return_sequences=True, return_state=True, go_backwards=go_backwards)
        for config, make_twin in twins:
            twin = make_twin(**rnn_args)
            twin.build((None, None, INPUT_DIM))
            reference.randomize_weights(twin)
            ours = self.layer_class(**config, **rnn_args)
            ours.build((None, None, INPUT_DIM))
            reference.copy_weights_by_name(twin, ours)
            for m in (None, mask):
                reference.assert_same_sequences(
                    reference.run_sequence_layer(ours, x, m), reference.run_sequence_layer(twin, x, m)
                )

    def test_config_round_trip(self):
        layer = self.make(return_sequences=True, go_backwards=True, dropout=0.25, name="my_layer")
        serialization.assert_config_round_trip(layer)
        config = layer.get_config()
        assert "cell" not in config, "the config is flat, as keras.layers.LSTM's"
        assert config["units"] == self.config["units"] and config["dropout"] == 0.25 and config["go_backwards"]

    def test_bidirectional_keras_file_round_trip(self, tmp_path):
        model = keras.Sequential(
            [keras.Input((None, INPUT_DIM)), keras.layers.Bidirectional(self.make(return_sequences=True))]
        )
        reference.randomize_weights(model, ranges=self.weight_ranges)
        loaded = serialization.assert_keras_file_round_trip(model, _inputs(), str(tmp_path / "m.keras"))
        assert type(loaded.layers[0].forward_layer) is self.layer_class

    def test_saved_model_round_trip(self, tmp_path):
        model = keras.Sequential([keras.Input((None, INPUT_DIM)), self.make(return_sequences=True)])
        reference.randomize_weights(model, ranges=self.weight_ranges)
        saved_model.assert_saved_model_round_trip(
            model, [_inputs(2, 3, seed=1), _inputs(5, 8, seed=2)], str(tmp_path / "export")
        )

    @pytest.mark.jax
    def test_stateful_carries_state_across_calls(self):
        x = _inputs()
        whole = self.make(return_sequences=True)
        whole.build((BATCH, None, INPUT_DIM))
        reference.randomize_weights(whole, ranges=self.weight_ranges)
        stateful = self.make(return_sequences=True, stateful=True)
        stateful.build((BATCH, None, INPUT_DIM))
        reference.copy_weights_by_name(whole, stateful)
        halves = [keras.ops.convert_to_numpy(stateful(x[:, :3])), keras.ops.convert_to_numpy(stateful(x[:, 3:]))]
        np.testing.assert_allclose(np.concatenate(halves, axis=1), keras.ops.convert_to_numpy(whole(x)), atol=1e-5)

    @pytest.mark.jax
    def test_jit_compiled_training(self):
        model = keras.Sequential([keras.Input((TIME, INPUT_DIM)), self.make(), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse", jit_compile=True)
        # Only TensorFlow's cuDNN op has no XLA kernel: there, with a GPU, cuDNN-eligible layers opt out of XLA.
        if not backend.tensorflow_sees_a_gpu():
            assert model.jit_compile, f"only TensorFlow with a GPU keeps the layer out of XLA, not {backend.NAME}"
        assert np.isfinite(model.train_on_batch(_inputs(), np.zeros((BATCH, 1), "float32")))

    def test_bad_arguments(self):
        name = self.layer_class.__name__
        with pytest.raises(ValueError, match=rf"{name} got unknown argument\(s\) \['unitz'\]; valid arguments: "):
            self.make(unitz=3)
        with pytest.raises(ValueError, match=r"units must be a positive int, got -3"):
            self.make(units=-3)

    @pytest.mark.jax
    def test_bad_inputs(self):
        name = self.layer_class.__name__
        with pytest.raises(ValueError, match=rf"{name} expects inputs of shape \(batch, time, features\)"):
            self.make().build((BATCH, TIME))
        layer = self.make()
        layer(_inputs())
        with pytest.raises(ValueError, match=rf"expected axis -1 of input shape to have value {INPUT_DIM}"):
            layer(np.zeros((BATCH, TIME, INPUT_DIM + 1), "float32"))
        with pytest.raises(ValueError, match=r"expected ndim=3, found ndim=2"):
            layer(np.zeros((BATCH, TIME), "float32"))
