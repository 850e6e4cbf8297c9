import keras
import numpy as np
import pytest

from tests.helpers import backend
from zoo.rnn import GRU
from zoo.rnn import LSTM
from zoo.rnn import recurrent


def _no_gpu_under_jax(device_type=None):
    # What keras.distribution.list_devices("gpu") does under JAX on a machine without a GPU.
    raise RuntimeError("Unknown backend: 'gpu' requested, but no platforms that are instances of gpu are present")


def _one_gpu(device_type=None):
    return ["gpu:0"]


def _no_gpu_under_tensorflow(device_type=None):
    return []


@pytest.mark.jax
@pytest.mark.parametrize(
    "backend_name, list_devices, opts_out",
    [
        ("tensorflow", _no_gpu_under_tensorflow, False),
        # TensorFlow's cuDNN RNN op has no XLA kernel: the one setting where a model must not be jit-compiled.
        ("tensorflow", _one_gpu, True),
        ("jax", _no_gpu_under_jax, False),
        # JAX's cuDNN path compiles inside jax.jit.
        ("jax", _one_gpu, False),
        ("torch", _one_gpu, False),
    ],
    ids=["tensorflow-cpu", "tensorflow-gpu", "jax-cpu", "jax-gpu", "torch-gpu"],
)
def test_only_tensorflow_with_a_gpu_keeps_cudnn_layers_out_of_xla(monkeypatch, backend_name, list_devices, opts_out):
    # Keras's own LSTM and GRU make the same choice; the backend and its devices are faked, so every case runs here.
    monkeypatch.setattr(keras.backend, "backend", lambda: backend_name)
    monkeypatch.setattr(keras.distribution, "list_devices", list_devices)
    for layer in (LSTM(4), GRU(4), LSTM(4, use_cudnn=True)):
        assert layer.supports_jit is not opts_out, (type(layer).__name__, layer.use_cudnn)
    # Layers that never take the cuDNN path never opt out.
    for layer in (LSTM(4, peepholes=True), GRU(4, reset_after=False), LSTM(4, use_cudnn=False), GRU(4, unroll=True)):
        assert layer.supports_jit, layer.get_config()


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("time", [7, 10, None], ids=["one-step-per-iteration", "steps-per-iteration", "unknown"])
def test_scan_steps_equals_a_scan_of_one_step_per_iteration(time, reverse):
    # The fused loops' scan: a running sum and product, gated by a bool input, over [time, batch, width] inputs.
    backend.skip_unless_tensorflow("The fused loops' scan")
    import tensorflow as tf

    rng = np.random.default_rng(0)
    values = rng.normal(size=(10 if time is None else time, 2, 3)).astype("float32")
    gates = rng.random(size=values.shape[:2] + (1,)) > 0.3

    def step(state, inputs):
        total = state[0] + keras.ops.where(inputs[1], inputs[0], 0.0)
        product = state[1] * inputs[0]
        return (total, product), (total * 2.0, product)

    start = (np.zeros((2, 3), "float32"), np.ones((2, 3), "float32"))
    signature = [tf.TensorSpec((time, 2, 3)), tf.TensorSpec((time, 2, 1), tf.bool)]
    ours = tf.function(lambda v, g: recurrent.scan_steps(step, start, (v, g), reverse=reverse), input_signature=signature)
    (final, outputs) = ours(values, gates)

    state, expected = [s.copy() for s in start], [None] * len(values)
    for t in reversed(range(len(values))) if reverse else range(len(values)):
        state, expected[t] = step(state, (values[t], gates[t]))
    np.testing.assert_allclose(np.stack([o[0] for o in expected]), outputs[0], rtol=1e-6)
    np.testing.assert_allclose(np.stack([o[1] for o in expected]), outputs[1], rtol=1e-6)
    for a, b in zip(final, state):
        np.testing.assert_allclose(a, b, rtol=1e-6)
