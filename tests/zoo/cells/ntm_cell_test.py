import keras
import numpy as np
import pytest

from tests.helpers import backend
from tests.helpers import reference
from tests.helpers.cell_contract import BATCH
from tests.helpers.cell_contract import CellContract
from zoo.cells import NTMCell

# Two read and two write heads, so the head layout and the multi-head write are both exercised.
MAIN = {"output_size": 3, "memory_size": 5, "memory_width": 4, "controller_units": 6, "read_heads": 2,
        "write_heads": 2}
TINY = {"output_size": 2, "memory_size": 4, "memory_width": 2, "controller_units": 3, "read_heads": 2,
        "write_heads": 2}
DEFAULTS = {"controller": "lstm", "read_heads": 1, "write_heads": 1, "shift_range": 1, "clip_value": 20.0,
            "memory_init": 1e-6}
EPSILON = 1e-8  # the cosine's and the sharpening's ε (zoo.layers.ntm_addressing)


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _softplus(a):
    return np.log1p(np.exp(a))


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def numpy_ntm_step(config, w, x, states):
    """One NTM step from Graves et al. (2014) §3 and Collier & Beel's activations, head by head, in NumPy."""
    c = DEFAULTS | config
    n, m, heads_r, heads_w = c["memory_size"], c["memory_width"], c["read_heads"], c["write_heads"]
    offsets = 2 * c["shift_range"] + 1
    clip = (lambda v: np.clip(v, -c["clip_value"], c["clip_value"])) if c["clip_value"] else (lambda v: v)
    if c["controller"] == "lstm":
        _, h_prev, c_prev, reads, read_w, write_w, memory = states
        z = np.concatenate([x, reads], -1) @ w["kernel"] + h_prev @ w["recurrent_kernel"] + w["bias"]
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
        cell = _sigmoid(z_f) * c_prev + _sigmoid(z_i) * np.tanh(z_c)
        h = _sigmoid(z_o) * np.tanh(cell)
        controller = [h, cell]
    else:
        _, reads, read_w, write_w, memory = states
        h = np.tanh(np.concatenate([x, reads], -1) @ w["kernel"] + w["bias"])
        controller = []
    xi = clip(h @ w["head_kernel"] + w["head_bias"])
    memory = memory.reshape(-1, n, m)
    q = m + offsets + 3
    slices = [xi[:, j * q:(j + 1) * q] for j in range(heads_r)]
    slices += [xi[:, heads_r * q + j * (q + 2 * m):heads_r * q + (j + 1) * (q + 2 * m)] for j in range(heads_w)]
    previous = list(read_w.reshape(-1, heads_r, n).transpose(1, 0, 2)) + list(
        write_w.reshape(-1, heads_w, n).transpose(1, 0, 2))
    weightings = []
    for p, w_prev in zip(slices, previous):
        k = np.tanh(p[:, :m])
        beta = _softplus(p[:, m:m + 1])
        g = _sigmoid(p[:, m + 1:m + 2])
        s = _softmax(p[:, m + 2:m + 2 + offsets])
        gamma = 1 + _softplus(p[:, m + 2 + offsets:m + 3 + offsets])
        similarity = np.einsum("bm,bnm->bn", k, memory) / np.sqrt(
            np.sum(k * k, -1, keepdims=True) * np.sum(memory * memory, -1) + EPSILON)
        w_g = g * _softmax(beta * similarity) + (1 - g) * w_prev
        w_tilde = sum(s[:, [j]] * np.roll(w_g, j - c["shift_range"], axis=-1) for j in range(offsets))
        powered = (w_tilde + EPSILON) ** gamma
        weightings.append(powered / powered.sum(-1, keepdims=True))
    new_reads = [np.einsum("bn,bnm->bm", w_h, memory) for w_h in weightings[:heads_r]]
    new_memory = memory.copy()
    for p, w_h in zip(slices[heads_r:], weightings[heads_r:]):  # erase with every head, then add with every head
        new_memory = new_memory * (1 - w_h[:, :, None] * _sigmoid(p[:, None, q:q + m]))
    for p, w_h in zip(slices[heads_r:], weightings[heads_r:]):
        new_memory = new_memory + w_h[:, :, None] * np.tanh(p[:, None, q + m:q + 2 * m])
    y = clip(np.concatenate([h] + new_reads, -1) @ w["output_kernel"] + w["output_bias"])
    return y, [y, *controller, np.concatenate(new_reads, -1), np.concatenate(weightings[:heads_r], -1),
               np.concatenate(weightings[heads_r:], -1), new_memory.reshape(-1, n * m)]


def numpy_ntm_initial_state(config, w, batch):
    """The NTM's state before the first step in NumPy: y_0 and the controller's state 0, r_0 = tanh(initial_read),
    w_0 = softmax(initial_weighting) per head (read heads first), the memory filled with memory_init."""
    c = DEFAULTS | config
    heads_r, n = c["read_heads"], c["memory_size"]
    initial_w = _softmax(w["initial_weighting"])
    controller = [np.zeros((batch, c["controller_units"]))] * (2 if c["controller"] == "lstm" else 0)
    return [
        np.zeros((batch, c["output_size"])),
        *controller,
        np.tile(np.tanh(w["initial_read"]), (batch, 1)),
        np.tile(initial_w[:heads_r].reshape(-1), (batch, 1)),
        np.tile(initial_w[heads_r:].reshape(-1), (batch, 1)),
        np.full((batch, n * c["memory_width"]), c["memory_init"]),
    ]


class TestNTMCell(CellContract):
    cell_class = NTMCell
    configs = (
        MAIN,
        MAIN | {"controller": "dense"},
        {"output_size": 2, "memory_size": 6, "memory_width": 3, "controller_units": 4, "shift_range": 2,
         "clip_value": None},
    )
    # r_0 = tanh(initial_read) and w_0 = softmax(initial_weighting) are weights: the contract's equation checks start
    # from `numpy_initial_state`, so the gradients with respect to them are checked too.
    learned_initial_state = True
    # The float64 check's numerical Jacobian costs two runs per weight entry: the smallest configuration that keeps
    # two heads of each kind, with the LSTM controller (about 15 s). The dense controller's gradients are checked
    # against the equations (test_gradients_match_the_equations, every config).
    float64_gradient_configs = (TINY,)
    slow_checks = ("test_gradients_float64",)

    def expected_weights(self):
        # input_dim 3; controller input 3 + 2 read heads x 4; Q = 4 + 3 + 3 = 10 per read head, 18 per write head.
        return {
            "kernel": (11, 24), "recurrent_kernel": (6, 24), "bias": (24,),
            "head_kernel": (6, 2 * 10 + 2 * 18), "head_bias": (56,),
            "output_kernel": (6 + 8, 3), "output_bias": (3,),
            "initial_read": (8,), "initial_weighting": (4, 5),
        }

    def numpy_step(self, config, weights, x, states, recurrent_mask=None):
        return numpy_ntm_step(config, weights, x, states)

    def numpy_initial_state(self, config, weights, batch):
        return numpy_ntm_initial_state(config, weights, batch)

    # The NTM has no Keras counterpart and no dropout arguments: those two checks of the contract do not apply.
    test_keras_parity = None
    test_dropout = None

    @pytest.mark.jax
    def test_initial_state_needs_a_built_cell_and_starts_focused_on_location_0(self):
        # (The contract's test_initial_state checks the built cell's initial state against numpy_initial_state.)
        cell = self.make_cell()
        with pytest.raises(ValueError, match=r"NTMCell.get_initial_state needs a built cell"):
            cell.get_initial_state(BATCH)
        # Before training: y_0, the controller's state and r_0 are 0, the memory holds memory_init, and every head
        # focuses softly on location 0 (logit 5 against 0).
        cell.build((None, self.input_dim))
        y, h, c, reads, read_w, write_w, memory = [keras.ops.convert_to_numpy(s) for s in cell.get_initial_state(1)]
        assert not np.any(y) and not np.any(h) and not np.any(c) and not np.any(reads)
        start = _softmax(np.array([5.0, 0, 0, 0, 0]))
        np.testing.assert_allclose(read_w, np.tile(start, (1, 2)), atol=1e-6)
        np.testing.assert_allclose(write_w, np.tile(start, (1, 2)), atol=1e-6)
        np.testing.assert_array_equal(memory, np.full((1, 20), 1e-6, "float32"))

    @pytest.mark.jax
    def test_unpack_state(self):
        layer = self.sequence_layer()
        y, *states = layer(self.inputs())
        parts = layer.cell.unpack_state(states)
        assert [tuple(s.shape) for s in parts["controller"]] == [(BATCH, 6), (BATCH, 6)]
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(parts["output"]), keras.ops.convert_to_numpy(y[:, -1]))
        shapes = {name: tuple(parts[name].shape) for name in ("reads", "read_weightings", "write_weightings",
                                                              "memory")}
        assert shapes == {"reads": (BATCH, 2, 4), "read_weightings": (BATCH, 2, 5), "write_weightings": (BATCH, 2, 5),
                          "memory": (BATCH, 5, 4)}
        np.testing.assert_allclose(keras.ops.convert_to_numpy(parts["read_weightings"]).sum(-1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(parts["memory"]).reshape(BATCH, 20),
                                      keras.ops.convert_to_numpy(states[-1]))

    @pytest.mark.jax
    def test_clipping(self):
        # Huge head and output weights: ξ_t and y_t stay within ±clip_value, and everything stays finite.
        layer = self.sequence_layer(MAIN | {"clip_value": 2.0})
        for weight in layer.weights:
            if weight.name in ("head_kernel", "output_kernel"):
                weight.assign(weight * 1e3)
        outputs, states = reference.run_sequence_layer(layer, self.inputs())
        assert np.max(np.abs(outputs)) <= 2.0 and np.isclose(np.max(np.abs(outputs)), 2.0)
        assert all(np.all(np.isfinite(s)) for s in states)

    def test_bad_arguments(self):
        for name in ("output_size", "memory_size", "memory_width", "controller_units", "read_heads", "write_heads",
                     "shift_range"):
            for value in (0, -3, 2.5, True):
                with pytest.raises(ValueError, match=rf"{name} must be a positive int, got {value!r}"):
                    self.make_cell(**{name: value})
        with pytest.raises(ValueError, match=r"controller must be one of 'lstm', 'dense', got 'gru'"):
            self.make_cell(controller="gru")
        for value in (0, -1.0, "20", True):
            with pytest.raises(ValueError, match=rf"clip_value must be a positive float or None, got {value!r}"):
                self.make_cell(clip_value=value)
        with pytest.raises(ValueError, match=r"memory_init must be a float .* got None"):
            self.make_cell(memory_init=None)


def test_long_run_stays_finite():
    # The paper's memory (128 x 20) and Collier & Beel's controller (LSTM, 100 units): 200 steps of random input
    # with random weights, small (N(0, 0.5)) and large (N(0, 3), which drives ξ_t into the clip), stay finite.
    x = np.random.default_rng(0).normal(size=(2, 200, 9)).astype("float32")
    for scale in (0.5, 3.0):
        layer = keras.layers.RNN(NTMCell(output_size=8), return_sequences=True, return_state=True)
        layer.build((None, None, 9))
        reference.randomize_weights(layer, seed=1, scale=scale)
        outputs, states = reference.run_sequence_layer(layer, x)
        assert np.all(np.isfinite(outputs)), f"scale {scale}: NaN or inf in the outputs"
        assert all(np.all(np.isfinite(s)) for s in states), f"scale {scale}: NaN or inf in the final states"


def copy_batch(rng, batch, length, bits):
    """The copy task (Graves et al. §4.1) at a fixed length: the bits, a delimiter, then as many blank steps; the
    target is the bits during the blank steps (zeros before)."""
    sequence = rng.integers(0, 2, size=(batch, length, bits)).astype("float32")
    inputs = np.zeros((batch, 2 * length + 1, bits + 1), "float32")
    inputs[:, :length, :bits] = sequence
    inputs[:, length, bits] = 1.0
    targets = np.zeros((batch, 2 * length + 1, bits), "float32")
    targets[:, length + 1:] = sequence
    return inputs, targets


@pytest.mark.slow  # 8 s alone, over 30 s on a busy 2-core machine
def test_trains_on_a_tiny_copy_task():
    # NTMCell in keras.layers.RNN, a Dense read-out, Adam 3e-3 with global-norm clipping 50 (as Collier & Beel), 400
    # steps of batch 16 on 4-bit sequences of length 4: the loss falls, stays finite, and the copied bits are
    # predicted better than chance.
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    bits, length = 4, 4
    model = keras.Sequential([
        keras.Input((2 * length + 1, bits + 1)),
        keras.layers.RNN(NTMCell(output_size=16, memory_size=16, memory_width=8, controller_units=32),
                         return_sequences=True),
        keras.layers.Dense(bits),
    ])
    model.compile(optimizer=keras.optimizers.Adam(3e-3, global_clipnorm=50.0),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True), jit_compile=backend.TENSORFLOW)
    losses = [float(model.train_on_batch(*copy_batch(rng, 16, length, bits))) for _ in range(400)]
    assert np.all(np.isfinite(losses))
    first, last = np.mean(losses[:20]), np.mean(losses[-20:])
    inputs, targets = copy_batch(np.random.default_rng(1), 256, length, bits)
    logits = keras.ops.convert_to_numpy(model(inputs))[:, length + 1:]
    copied = targets[:, length + 1:]
    cross_entropy = np.mean(np.logaddexp(0, logits) - copied * logits)
    # Thresholds: chance on the copied bits is ln 2 = 0.693 per bit. This run (seeds 0 and 1) went from a training
    # loss of 0.60 to 0.17 and reached 0.35 on the copied bits; a cell whose gradients do not flow stays near chance.
    assert last < 0.5 * first, f"training loss {first:.3f} -> {last:.3f}"
    assert cross_entropy < 0.5, f"cross-entropy on the copied bits {cross_entropy:.3f}, chance is 0.693"
