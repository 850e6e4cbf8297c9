import keras
import pytest

from zoo.rnn import GRU
from zoo.rnn import LSTM


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
