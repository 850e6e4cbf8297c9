"""FusedLoopContract: the checks of the fused loops of `zoo.rnn.LSTM` and `zoo.rnn.GRU` (TensorFlow only) against
Keras's own loop, run by `Test<Layer>FusedLoop(FusedLoopContract)` in the layers' test files, which set:

    layer_class          the zoo layer
    keras_class          Keras's layer computing the same function (given the same weights) with its own loop
    state_count          how many state tensors the layer carries
    other_loop_configs   {id: constructor arguments} for which the layer must run Keras's loop instead

`outputs_and_gradients` runs a layer built with `return_sequences=True, return_state=True` and returns its outputs
and the gradients of a random projection of all of them (sequence and final states) with respect to the inputs, the
initial state and every trainable weight; `assert_same` compares two such runs. `FusedLoopSpy` counts the calls of a
layer class's fused loop, so a test can tell which loop ran.
"""

import keras
import numpy as np
import pytest

from tests.helpers import backend
from tests.helpers import reference

BATCH, FEATURES = 4, 3


def mask_for(time):
    """A mask with every case the fused loops treat: right padding, masked leading steps (the output is zero there
    while the state is the initial one), a hole in the middle, a row where nothing runs."""
    mask = np.ones((BATCH, time), bool)
    mask[0, time - 3 :] = False
    mask[1, :2] = False
    mask[2, 3] = False
    mask[3, :] = False
    return mask


def outputs_and_gradients(layer, x, initial_state, mask=None, training=False, dynamic_time=False):
    """(outputs, gradients) of `layer` as NumPy arrays; with `dynamic_time`, run in a `tf.function` whose inputs have
    an unknown time dimension (as a SavedModel signature or an LM over variable-length windows has)."""
    backend.skip_unless_tensorflow("The fused loops")
    import tensorflow as tf

    dtype = layer.compute_dtype
    rng = np.random.default_rng(7)
    # A random projection: every element of the sequence output and of the final states gets its own weight.
    units = initial_state[0].shape[-1]
    projections = [tf.constant(rng.normal(size=(BATCH, x.shape[1], units)), dtype)]
    projections += [tf.constant(rng.normal(size=s.shape), dtype) for s in initial_state]

    def run(x, initial, mask):
        with tf.GradientTape() as tape:
            tape.watch([x] + list(initial))
            outputs = layer(x, initial_state=list(initial), mask=mask, training=training)
            loss = sum(tf.reduce_sum(o * p) for o, p in zip(outputs, projections))
        return outputs, tape.gradient(loss, [x] + list(initial) + layer.trainable_weights)

    x = tf.constant(x, dtype)
    initial = [tf.constant(s, dtype) for s in initial_state]
    mask = None if mask is None else tf.constant(mask)
    if dynamic_time:
        time_unknown = [tf.TensorSpec((BATCH, None, FEATURES), dtype), [tf.TensorSpec(s.shape, dtype) for s in initial]]
        if mask is None:
            outputs, gradients = tf.function(lambda x, initial: run(x, initial, None), input_signature=time_unknown)(
                x, initial
            )
        else:
            signature = time_unknown + [tf.TensorSpec((BATCH, None), tf.bool)]
            outputs, gradients = tf.function(run, input_signature=signature)(x, initial, mask)
    else:
        outputs, gradients = run(x, initial, mask)
    return [o.numpy() for o in outputs], [g.numpy() for g in gradients]


def assert_same(actual, expected, atol=1e-5, rtol=1e-4):
    (actual_outputs, actual_gradients), (expected_outputs, expected_gradients) = actual, expected
    assert len(actual_outputs) == len(expected_outputs) and len(actual_gradients) == len(expected_gradients)
    for n, (a, e) in enumerate(zip(actual_outputs, expected_outputs)):
        np.testing.assert_allclose(a, e, atol=atol, rtol=rtol, err_msg=f"output {n} differs")
    for n, (a, e) in enumerate(zip(actual_gradients, expected_gradients)):
        message = f"gradient {n} (of the inputs, the initial states, the weights) differs"
        np.testing.assert_allclose(a, e, atol=atol, rtol=rtol, err_msg=message)


class FusedLoopSpy:
    """Counts the calls of `layer_class.fused_loop` while installed with `monkeypatch`."""

    def __init__(self, monkeypatch, layer_class):
        self.calls = 0
        fused_loop = layer_class.fused_loop

        def counted(layer, *args, **kwargs):
            self.calls += 1
            return fused_loop(layer, *args, **kwargs)

        monkeypatch.setattr(layer_class, "fused_loop", counted)


@pytest.fixture
def fused_at_every_size(monkeypatch):
    """Lets the fused loops run for layers of any size (tests use small ones), as `fused_loop_min_units = 1` does."""
    from zoo.rnn import GRU
    from zoo.rnn import LSTM

    for layer_class in (LSTM, GRU):
        monkeypatch.setattr(layer_class, "fused_loop_min_units", 1)


@pytest.mark.usefixtures("fused_at_every_size")
class FusedLoopContract:
    layer_class = None
    keras_class = None
    state_count = 1
    other_loop_configs = {}

    def twins(self, **rnn_args):
        twin = self.keras_class(5, **rnn_args)
        twin.build((None, None, FEATURES))
        reference.randomize_weights(twin)
        ours = self.layer_class(5, **rnn_args)
        ours.build((None, None, FEATURES))
        reference.copy_weights_by_name(twin, ours)
        return ours, twin

    def data(self, time, units=5, seed=0):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(BATCH, time, FEATURES)).astype("float32")
        return x, [rng.normal(size=(BATCH, units)).astype("float32") for _ in range(self.state_count)]

    @pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
    @pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "reversed"])
    @pytest.mark.parametrize(
        "time, dynamic_time",
        [(7, False), (10, False), (10, True)],
        ids=["one-step-per-iteration", "steps-per-iteration", "unknown-length"],
    )
    def test_fused_loop_equals_keras_loop(self, monkeypatch, masked, go_backwards, time, dynamic_time):
        # Outputs, final states and the gradients with respect to inputs, initial state and weights.
        spy = FusedLoopSpy(monkeypatch, self.layer_class)
        ours, twin = self.twins(return_sequences=True, return_state=True, go_backwards=go_backwards)
        x, initial_state = self.data(time)
        mask = mask_for(time) if masked else None
        expected = outputs_and_gradients(twin, x, initial_state, mask, dynamic_time=dynamic_time)
        actual = outputs_and_gradients(ours, x, initial_state, mask, dynamic_time=dynamic_time)
        assert spy.calls > 0, "the fused loop did not run"
        assert_same(actual, expected)

    @pytest.mark.parametrize(
        "rnn_args, training",
        [
            ({"use_bias": False}, False),
            ({"zero_output_for_mask": True}, False),
            ({"dropout": 0.4, "seed": 3}, True),
            ({"recurrent_dropout": 0.4}, False),  # inactive outside training: the fused loop runs
        ],
        ids=["no-bias", "zero-output-for-mask", "dropout", "recurrent-dropout-inference"],
    )
    def test_fused_loop_equals_keras_loop_variants(self, monkeypatch, rnn_args, training):
        spy = FusedLoopSpy(monkeypatch, self.layer_class)
        ours, twin = self.twins(return_sequences=True, return_state=True, **rnn_args)
        x, initial_state = self.data(10)
        mask = mask_for(10)
        expected = outputs_and_gradients(twin, x, initial_state, mask, training=training)
        actual = outputs_and_gradients(ours, x, initial_state, mask, training=training)
        assert spy.calls > 0, "the fused loop did not run"
        assert_same(actual, expected)

    def test_fused_loop_gradients_equal_finite_differences(self):
        # The hand-written backward pass against numerical derivatives (float64), weights included, masked and with
        # the final states used.
        backend.skip_unless_tensorflow("tf.test.compute_gradient")
        import tensorflow as tf

        layer = self.layer_class(3, return_sequences=True, return_state=True, dtype="float64")
        layer.build((None, None, FEATURES))
        reference.randomize_weights(layer)
        rng = np.random.default_rng(1)
        x = rng.normal(size=(BATCH, 6, FEATURES))
        initial_state = list(rng.normal(size=(self.state_count, BATCH, 3)))
        mask = tf.constant(mask_for(6))
        projections = [rng.normal(size=shape) for shape in [(BATCH, 6, 3)] + [(BATCH, 3)] * self.state_count]

        def scalar(x, *arguments):
            initial_state, weights = arguments[: self.state_count], arguments[self.state_count :]
            outputs = layer.stateless_call(
                list(weights), non_trainable, x, initial_state=list(initial_state), mask=mask
            )[0]
            return sum(tf.reduce_sum(o * p) for o, p in zip(outputs, projections))

        weights = [keras.ops.convert_to_numpy(w) for w in layer.trainable_weights]
        non_trainable = [v.value for v in layer.non_trainable_variables]  # the dropout seed generator's state
        theoretical, numerical = tf.test.compute_gradient(scalar, [x] + initial_state + weights, delta=1e-5)
        for n, (t, d) in enumerate(zip(theoretical, numerical)):
            np.testing.assert_allclose(t, d, atol=1e-6, err_msg=f"argument {n}")

    @pytest.mark.parametrize(
        "config, training, fused",
        [
            ({}, True, True),
            ({"dropout": 0.3}, True, True),
            ({"use_cudnn": False}, True, True),
            ({"recurrent_dropout": 0.3}, True, False),
            ({"unroll": True}, True, False),
            ({"activation": "relu"}, True, False),
            ({"recurrent_activation": "hard_sigmoid"}, True, False),
        ],
        ids=["default", "dropout", "no-cudnn", "recurrent-dropout", "unroll", "relu", "hard-sigmoid"],
    )
    def test_fused_loop_runs_where_its_conditions_hold(self, monkeypatch, config, training, fused):
        backend.skip_unless_tensorflow("The fused loop")
        spy = FusedLoopSpy(monkeypatch, self.layer_class)
        self.layer_class(4, **config)(np.zeros((2, 5, 3), "float32"), training=training)
        assert (spy.calls > 0) is fused

    def test_keras_keeps_the_cudnn_dispatch(self, monkeypatch):
        backend.skip_unless_tensorflow("The fused loop")
        spy = FusedLoopSpy(monkeypatch, self.layer_class)
        x = np.zeros((2, 5, 3), "float32")
        # Keras's answer on a machine without a GPU.
        with pytest.raises(ValueError, match=r"use_cudnn=True was specified"):
            self.layer_class(4, use_cudnn=True)(x)
        monkeypatch.setattr(keras.distribution, "list_devices", lambda device_type=None: ["gpu:0"])
        # Where a GPU is visible, use_cudnn="auto" leaves the choice to Keras (here, without a real one: its loop).
        self.layer_class(4)(x)
        assert spy.calls == 0
        self.layer_class(4, use_cudnn=False)(x)
        assert spy.calls == 1

    def test_training_steps_take_the_fused_loop_and_equal_keras(self, monkeypatch):
        backend.skip_unless_tensorflow("The fused loop")
        spy = FusedLoopSpy(monkeypatch, self.layer_class)
        ours, twin = self.twins()
        x, _ = self.data(10)
        y = np.random.default_rng(2).normal(size=(BATCH, 1)).astype("float32")
        models = []
        for layer in (ours, twin):
            model = keras.Sequential([keras.Input((10, FEATURES)), layer, keras.layers.Dense(1)])
            model.layers[-1].set_weights([np.ones((5, 1), "float32"), np.zeros(1, "float32")])
            model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
            models.append(model)
        losses = [model.train_on_batch(x, y) for model in models]
        assert spy.calls > 0, "train_on_batch did not take the fused loop"
        np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
        for a, b in zip(ours.weights, twin.weights):
            np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), atol=1e-5)

    def test_configs_outside_the_fused_loop_take_keras_loop(self, monkeypatch):
        backend.skip_unless_tensorflow("The fused loop")
        spy = FusedLoopSpy(monkeypatch, self.layer_class)
        for config in self.other_loop_configs.values():
            self.layer_class(4, **config)(np.zeros((2, 5, 3), "float32"), training=True)
        assert spy.calls == 0

    def test_layers_below_the_size_threshold_take_keras_loop(self, monkeypatch):
        backend.skip_unless_tensorflow("The fused loop")
        spy = FusedLoopSpy(monkeypatch, self.layer_class)
        monkeypatch.setattr(self.layer_class, "fused_loop_min_units", 6)
        x = np.zeros((2, 5, 3), "float32")
        self.layer_class(5)(x)
        assert spy.calls == 0
        self.layer_class(6)(x)
        assert spy.calls == 1
