"""AttentionWrapperCell: the NumPy reference of a decoder step, the state layout, bridges, masks on both sides,
gradients, XLA and the file round trips (a decoder harness turns the cell into a layer of (targets, memory, mask))."""

import keras
import numpy as np
import pytest

import tests.zoo.cells.elman_cell_test as elman_test
import tests.zoo.cells.gru_cell_test as gru_test
import tests.zoo.cells.lstm_cell_test as lstm_test
import tests.zoo.layers.bahdanau_attention_test as bahdanau_test
import tests.zoo.layers.luong_attention_test as luong_test
import zoo
from tests.helpers import backend
from tests.helpers import reference
from tests.helpers import saved_model
from tests.helpers import serialization
from tests.helpers.attention_contract import numpy_attention
from tests.helpers.attention_contract import source_mask
from tests.helpers.cell_contract import padding_mask
from zoo.layers import AttentionWrapperCell

# The checks whose code depends on the backend also run under Keras's JAX backend (marker `jax`); the config, file
# and SavedModel round trips, bad arguments and the float64 gradient check run under TensorFlow only.

BATCH, TIME, SOURCE_TIME, INPUT_DIM, MEMORY_DIM, UNITS = 4, 6, 5, 2, 6, 5

# (name, wrapped cell, its NumPy step, mechanism, mechanism config for its NumPy scores, wrapper arguments)
CONFIGS = {
    "elman_luong_general_feeding_dense": (
        lambda **kw: zoo.cells.ElmanCell(UNITS, **kw), elman_test.TestElmanCell, {"units": UNITS},
        lambda **kw: zoo.layers.LuongAttention("general", scale=True, **kw), luong_test.TestLuongAttention,
        {"score": "general", "scale": True},
        {"attention_layer_size": 4, "bridge": "dense", "encoder_state_size": MEMORY_DIM},
    ),
    "lstm_bahdanau_normalized_context_fed_back": (
        lambda **kw: zoo.cells.LSTMCell(UNITS, **kw), lstm_test.TestLSTMCell, {"units": UNITS},
        lambda **kw: zoo.layers.BahdanauAttention(3, normalize=True, **kw), bahdanau_test.TestBahdanauAttention,
        {"units": 3, "normalize": True},
        {"bridge": "dense", "encoder_state_size": MEMORY_DIM},
    ),
    "gru_luong_concat_no_feeding": (
        lambda **kw: zoo.cells.GRUCell(UNITS, **kw), gru_test.TestGRUCell, {"units": UNITS},
        lambda **kw: zoo.layers.LuongAttention("concat", units=3, **kw), luong_test.TestLuongAttention,
        {"score": "concat", "units": 3},
        {"attention_layer_size": 4, "input_feeding": False},
    ),
    "elman_without_attention": (
        lambda **kw: zoo.cells.ElmanCell(UNITS, **kw), elman_test.TestElmanCell, {"units": UNITS},
        lambda **kw: None, None, None,
        {"input_feeding": False, "bridge": "dense", "encoder_state_size": MEMORY_DIM},
    ),
}


def make_cell(name, dtype=None, **overrides):
    make_inner, _, _, make_mechanism, _, _, arguments = CONFIGS[name]
    dtype = {"dtype": dtype} if dtype else {}
    return AttentionWrapperCell(
        make_inner(**dtype), make_mechanism(**dtype), memory_size=MEMORY_DIM, **{**arguments, **overrides, **dtype}
    )


def encoder_state(memory):
    """The harness's stand-in for an encoder's final state: the first memory vector."""
    return memory[:, 0]


@keras.saving.register_keras_serializable(package="zoo_tests")
class AttentionDecoder(keras.layers.Layer):
    """Test harness: `keras.layers.RNN(cell)` over (targets [B, T, E], memory [B, S, M], memory mask [B, S] 0/1),
    from the bridged initial state; an optional fourth input is the target mask [B, T]."""

    def __init__(self, cell, return_state=False, unroll=False, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.return_state = return_state
        self.unroll = unroll
        self.rnn = keras.layers.RNN(
            cell, return_sequences=True, return_state=return_state, unroll=unroll, dtype=self.dtype_policy
        )

    def build(self, input_shape):
        self.rnn.build(input_shape[0])

    def call(self, inputs):
        targets, memory, memory_mask, *target_mask = inputs
        state = self.cell.get_initial_state(memory=memory, memory_mask=memory_mask,
                                            encoder_state=encoder_state(memory))
        return self.rnn(targets, initial_state=state, mask=target_mask[0] if target_mask else None)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], input_shape[0][1], self.cell.output_size)

    def get_config(self):
        return {**super().get_config(), "cell": keras.saving.serialize_keras_object(self.cell),
                "return_state": self.return_state, "unroll": self.unroll}

    @classmethod
    def from_config(cls, config):
        return cls(**{**config, "cell": keras.saving.deserialize_keras_object(config["cell"])})


def data(batch=BATCH, time=TIME, source_time=SOURCE_TIME, seed=0, dtype="float32"):
    rng = np.random.default_rng(seed)
    targets = rng.normal(size=(batch, time, INPUT_DIM)).astype(dtype)
    memory = rng.normal(size=(batch, source_time, MEMORY_DIM)).astype(dtype)
    return targets, memory, source_mask(batch, source_time).astype(dtype)


def decoder(name, seed=0, dtype=None, **overrides):
    layer = AttentionDecoder(make_cell(name, dtype=dtype, **overrides), return_state=True, dtype=dtype)
    layer.build([(None, None, INPUT_DIM), (None, None, MEMORY_DIM), (None, None)])
    reference.randomize_weights(layer, seed=seed, scale=0.5)
    return layer


def numpy_initial_state(name, w, memory, memory_mask):
    """The state list of the class docstring, in NumPy: zero output, the bridge, zero attention, alignment and
    coverage, the memory and keys flattened."""
    _, inner_test, _, _, mechanism_test, _, arguments = CONFIGS[name]
    sizes = [UNITS, UNITS] if inner_test is lstm_test.TestLSTMCell else [UNITS]
    if arguments.get("bridge") == "dense":  # s_0 = e W_b + b_b, split into the cell's states
        cell_states = np.split(encoder_state(memory) @ w["bridge_kernel"] + w["bridge_bias"], len(sizes), axis=-1)
    else:
        cell_states = [np.zeros((len(memory), size)) for size in sizes]
    size = 0 if mechanism_test is None else arguments.get("attention_layer_size", MEMORY_DIM)
    output_size = arguments.get("attention_layer_size", UNITS)
    zeros = np.zeros(memory.shape[:2])
    keys = memory
    if mechanism_test is not None and "memory_kernel" in w:
        keys = memory @ w["memory_kernel"]
    batch = len(memory)
    return [np.zeros((batch, output_size)), *cell_states, np.zeros((batch, size)), zeros, zeros,
            memory.reshape(batch, -1), keys.reshape(batch, -1), memory_mask]


def numpy_step(name, w, x, states):
    """One decoder step of the class docstring's equations, in NumPy."""
    _, inner_test, inner_config, _, mechanism_test, mechanism_config, arguments = CONFIGS[name]
    n = len(states) - 7
    attention, _, coverage, memory_flat, keys, memory_mask = states[1 + n:]
    memory = memory_flat.reshape(len(x), -1, MEMORY_DIM)
    cell_input = np.concatenate([x, attention], axis=-1) if arguments.get("input_feeding", True) else x
    h, cell_states = inner_test().numpy_step(inner_config, w, cell_input, states[1:1 + n])
    if mechanism_test is None:
        return h, [h, *cell_states, *states[1 + n:]]
    scores = mechanism_test().numpy_scores(mechanism_config, w, h, memory)
    context, alignment = numpy_attention(scores, memory, memory_mask > 0.5)
    if "attention_layer_size" in arguments:  # a_t = tanh([c_t; h_t] W_c)
        attention = np.tanh(np.concatenate([context, h], axis=-1) @ w["attention_kernel"])
        output = attention
    else:
        attention, output = context, h
    return output, [output, *cell_states, attention, alignment, coverage + alignment, memory_flat, keys, memory_mask]


def run(layer, inputs):
    outputs, *states = layer(inputs)
    return keras.ops.convert_to_numpy(outputs), [keras.ops.convert_to_numpy(s) for s in states]


@pytest.mark.jax
@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("target_masked", [False, True], ids=["all_targets", "padded_targets"])
def test_numpy_reference(name, target_masked):
    targets, memory, memory_mask = data()
    target_mask = padding_mask(BATCH, TIME) if target_masked else None
    layer = decoder(name)
    w = reference.weights_by_name(layer)
    expected = reference.unroll(
        lambda x_t, states: numpy_step(name, w, x_t, states), targets,
        numpy_initial_state(name, w, memory, memory_mask), target_mask,
    )
    inputs = [targets, memory, memory_mask] + ([target_mask] if target_masked else [])
    reference.assert_same_sequences(run(layer, inputs), expected)


@pytest.mark.jax
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_stepping_equals_the_rnn(name):
    targets, memory, memory_mask = data()
    target_mask = padding_mask(BATCH, TIME)
    layer = decoder(name)
    unrolled = AttentionDecoder(make_cell(name), return_state=True, unroll=True)
    unrolled.build([(None, None, INPUT_DIM), (None, None, MEMORY_DIM), (None, None)])
    reference.copy_weights_by_name(layer, unrolled)
    initial = layer.cell.get_initial_state(memory=memory, memory_mask=memory_mask, encoder_state=encoder_state(memory))
    for mask in (None, target_mask):
        by_hand = reference.unroll(reference.cell_step(layer.cell), targets, initial, mask)
        inputs = [targets, memory, memory_mask] + ([mask] if mask is not None else [])
        reference.assert_same_sequences(run(layer, inputs), by_hand)
        reference.assert_same_sequences(run(unrolled, inputs), by_hand)


@pytest.mark.jax
def test_state_layout():
    targets, memory, memory_mask = data()
    layer = decoder("elman_luong_general_feeding_dense")
    cell, mechanism = layer.cell, layer.cell.attention_mechanism
    states = cell.get_initial_state(memory=memory, memory_mask=memory_mask, encoder_state=encoder_state(memory))
    assert len(states) == 1 + 1 + 6
    np.testing.assert_allclose(cell.memory(states), memory)
    np.testing.assert_allclose(cell.keys(states), mechanism.project_memory(memory), atol=1e-6)
    np.testing.assert_array_equal(states[zoo.layers.MEMORY_MASK_INDEX], memory_mask)
    np.testing.assert_array_equal(zoo.layers.latest_alignment(states), 0.0)
    np.testing.assert_array_equal(zoo.layers.coverage(states), 0.0)
    total = np.zeros((BATCH, SOURCE_TIME), "float32")
    for t in range(3):
        output, new_states = cell(targets[:, t], states)
        query = cell.cell(np.concatenate([targets[:, t], states[zoo.layers.ATTENTION_INDEX]], axis=-1), states[1:2])[0]
        _, alignment = mechanism(query, memory, memory_mask=memory_mask)
        np.testing.assert_allclose(zoo.layers.latest_alignment(new_states), alignment, atol=1e-6)
        total = total + keras.ops.convert_to_numpy(alignment)
        np.testing.assert_allclose(zoo.layers.coverage(new_states), total, atol=1e-6)
        np.testing.assert_allclose(new_states[zoo.layers.ATTENTION_INDEX], output, atol=1e-6)
        np.testing.assert_allclose(new_states[zoo.layers.OUTPUT_INDEX], output, atol=1e-6)
        for index in (zoo.layers.MEMORY_INDEX, zoo.layers.KEYS_INDEX, zoo.layers.MEMORY_MASK_INDEX):
            np.testing.assert_array_equal(new_states[index], states[index])
        states = new_states
    # No weight ever lands on a masked source position; the row without any valid position reads nothing.
    assert np.all(keras.ops.convert_to_numpy(zoo.layers.coverage(states))[memory_mask == 0] == 0.0)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(output)))


@pytest.mark.jax
def test_padded_target_steps_change_nothing():
    targets, memory, memory_mask = data()
    layer = decoder("lstm_bahdanau_normalized_context_fed_back")
    garbage = np.concatenate([targets, np.full((BATCH, 3, INPUT_DIM), 7.0, "float32")], axis=1)
    target_mask = np.concatenate([np.ones((BATCH, TIME), bool), np.zeros((BATCH, 3), bool)], axis=1)
    plain_outputs, plain_states = run(layer, [targets, memory, memory_mask])
    padded_outputs, padded_states = run(layer, [garbage, memory, memory_mask, target_mask])
    np.testing.assert_allclose(padded_outputs[:, :TIME], plain_outputs, atol=1e-5)
    for padded, plain in zip(padded_states, plain_states):  # coverage included
        np.testing.assert_allclose(padded, plain, atol=1e-5)


@pytest.mark.jax
def test_bridges():
    rng = np.random.default_rng(0)
    memory = rng.normal(size=(BATCH, SOURCE_TIME, MEMORY_DIM)).astype("float32")
    h, c = rng.normal(size=(2, BATCH, UNITS)).astype("float32")
    copy = AttentionWrapperCell(zoo.cells.LSTMCell(UNITS), zoo.layers.LuongAttention(), MEMORY_DIM, bridge="copy")
    states = copy.get_initial_state(memory=memory, encoder_state=[h, c])
    np.testing.assert_array_equal(states[1], h)
    np.testing.assert_array_equal(states[2], c)
    np.testing.assert_array_equal(states[zoo.layers.MEMORY_MASK_INDEX], 1.0)  # no mask: every position is valid
    zeros = AttentionWrapperCell(zoo.cells.LSTMCell(UNITS), zoo.layers.LuongAttention(), MEMORY_DIM)
    for state in zeros.get_initial_state(memory=memory, encoder_state=[h, c])[:3]:
        np.testing.assert_array_equal(state, 0.0)
    dense = AttentionWrapperCell(zoo.cells.LSTMCell(UNITS), zoo.layers.LuongAttention(), MEMORY_DIM, bridge="dense",
                                 encoder_state_size=2 * UNITS)
    dense.get_initial_state(memory=memory, encoder_state=[h, c])  # builds W_b and b_b
    reference.randomize_weights(dense)
    states = dense.get_initial_state(memory=memory, encoder_state=[h, c])
    w = {v.name: keras.ops.convert_to_numpy(v) for v in dense.weights}
    expected = np.concatenate([h, c], axis=-1) @ w["bridge_kernel"] + w["bridge_bias"]
    np.testing.assert_allclose(np.concatenate([states[1], states[2]], axis=-1), expected, atol=1e-5)
    with pytest.raises(ValueError, match=r"bridge='copy' needs encoder states of sizes \[5, 5\].*got sizes \[5\]"):
        copy.get_initial_state(memory=memory, encoder_state=h)
    with pytest.raises(ValueError, match=r"encoder_state_size=10, got sizes \[5\]"):
        dense.get_initial_state(memory=memory, encoder_state=h)
    with pytest.raises(ValueError, match=r"bridge='dense' makes the initial state from the encoder's final state"):
        dense.get_initial_state(memory=memory)
    with pytest.raises(ValueError, match=r"state holds the encoder outputs: pass initial_state="):
        keras.layers.RNN(zeros)(np.zeros((BATCH, TIME, INPUT_DIM), "float32"))
    with pytest.raises(ValueError, match=r"memory must have shape \(batch, source_time, memory_size=6\)"):
        zeros.get_initial_state(memory=memory[..., :4])


@pytest.mark.jax
def test_inner_dropout_uses_one_mask_per_sequence():
    # Without an attention layer the output is h_t; with U = I (on x_t and the fed-back c_{t-1}), W = 0, b = 0 and a
    # linear Elman cell, h_t = mask * [x_t; c_{t-1}], so with x_t = 1 its first columns show the input dropout mask:
    # the same at every step of a sequence, and dropped after the call.
    inner = zoo.cells.ElmanCell(INPUT_DIM + MEMORY_DIM, activation="linear", dropout=0.5,
                                kernel_initializer="identity", recurrent_initializer="zeros", seed=3)
    cell = AttentionWrapperCell(inner, zoo.layers.LuongAttention("general"), MEMORY_DIM)
    rnn = keras.layers.RNN(cell, return_sequences=True)
    _, memory, memory_mask = data(batch=16)
    state = cell.get_initial_state(memory=memory, memory_mask=memory_mask)
    outputs = keras.ops.convert_to_numpy(rnn(np.ones((16, TIME, INPUT_DIM), "float32"), initial_state=state,
                                             training=True))
    kept = outputs[..., :INPUT_DIM] != 0
    assert 0 < np.mean(kept) < 1, "dropout dropped nothing or everything"
    for t in range(1, TIME):
        np.testing.assert_array_equal(kept[:, t], kept[:, 0])
    assert getattr(inner, "_dropout_mask", None) is None, "the RNN did not reset the wrapped cell's mask"
    # Not training: nothing dropped.
    outputs = keras.ops.convert_to_numpy(rnn(np.ones((16, TIME, INPUT_DIM), "float32"), initial_state=state))
    np.testing.assert_array_equal(outputs[..., :INPUT_DIM], 1.0)


def test_gradients_float64():
    backend.skip_unless_tensorflow("The float64 gradient check (tf.test.compute_gradient)")
    import tensorflow as tf

    targets, memory, memory_mask = data(batch=4, time=3, source_time=3, dtype="float64")
    target_mask = np.array([[1, 1, 1], [1, 1, 0], [1, 1, 1], [0, 1, 1]], bool)
    rng = np.random.default_rng(1)
    for name in sorted(CONFIGS):
        layer = decoder(name, dtype="float64")
        shapes = [(4, 3, layer.cell.output_size)] + [tuple(s.shape) for s in layer.cell.get_initial_state(
            memory=memory, memory_mask=memory_mask, encoder_state=encoder_state(memory))]
        projections = [tf.constant(rng.normal(size=shape)) for shape in shapes]

        fixed = [keras.ops.convert_to_numpy(v) for v in layer.non_trainable_variables]  # dropout seeds

        def scalar(targets, memory, *weights, layer=layer, projections=projections, fixed=fixed):
            outputs, _ = layer.stateless_call(list(weights), fixed, [targets, memory, memory_mask, target_mask])
            return sum(tf.reduce_sum(y * p) for y, p in zip(keras.tree.flatten(outputs), projections))

        weights = [tf.constant(keras.ops.convert_to_numpy(v)) for v in layer.trainable_variables]
        # Traced once: finite differences call it twice per input element.
        theoretical, numerical = tf.test.compute_gradient(
            tf.function(scalar), [tf.constant(targets), tf.constant(memory), *weights]
        )
        names = ["targets", "memory"] + [v.name for v in layer.trainable_variables]
        for weight, t, n in zip(names, theoretical, numerical):
            assert np.any(t != 0), f"{name}: gradient with respect to {weight} is identically zero"
            # Central differences with tf.test's step 1/1024 are off by about δ²/6 times the third derivative:
            # up to 5e-6 through a decoder step and an attention read (a wrong or missing term is off by far more).
            np.testing.assert_allclose(t, n, rtol=1e-4, atol=1e-5, err_msg=f"{name}: gradient wrt {weight}")


@pytest.mark.jax
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_jit_compile(name):
    targets, memory, memory_mask = data()
    target_mask = padding_mask(BATCH, TIME)
    layer = decoder(name)
    eager = run(layer, [targets, memory, memory_mask, target_mask])
    # Batch, target and source lengths stay dynamic in TensorFlow's compiled graph.
    specs = [((None, None, INPUT_DIM), "float32"), ((None, None, MEMORY_DIM), "float32"), ((None, None), "float32"),
             ((None, None), "bool")]
    outputs, *states = backend.xla_compiled(lambda *inputs: layer(list(inputs)), layer.variables, specs)(
        targets, memory, memory_mask, target_mask
    )
    reference.assert_same_sequences((outputs, states), eager)


def functional_decoder(name):
    targets = keras.Input((None, INPUT_DIM), name="targets")
    memory = keras.Input((None, MEMORY_DIM), name="memory")
    memory_mask = keras.Input((None,), name="memory_mask")
    harness = AttentionDecoder(make_cell(name))
    model = keras.Model([targets, memory, memory_mask], harness([targets, memory, memory_mask]))
    reference.randomize_weights(model)
    return model


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_round_trip(name):
    cell = make_cell(name)
    serialization.assert_config_round_trip(cell)
    clone = keras.layers.RNN.from_config(keras.layers.RNN(cell).get_config())
    assert type(clone.cell) is AttentionWrapperCell and clone.cell.get_config() == cell.get_config()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_keras_file_round_trip(name, tmp_path):
    model = functional_decoder(name)
    loaded = serialization.assert_keras_file_round_trip(model, list(data()), str(tmp_path / "decoder.keras"))
    assert type(loaded.layers[-1].cell) is AttentionWrapperCell


@pytest.mark.parametrize("name", ["elman_luong_general_feeding_dense", "lstm_bahdanau_normalized_context_fed_back"])
def test_saved_model_round_trip(name, tmp_path):
    batches = [list(data(batch=4, time=3, source_time=4, seed=1)), list(data(batch=5, time=8, source_time=7, seed=2))]
    saved_model.assert_saved_model_round_trip(functional_decoder(name), batches, str(tmp_path / "export"))


@pytest.mark.jax
@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_trains_with_fit(jit_compile):
    model = functional_decoder("lstm_bahdanau_normalized_context_fed_back")
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=jit_compile)
    assert model.jit_compile == jit_compile
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    # Two source lengths: the compiled step is not tied to one.
    for source_time in (SOURCE_TIME, SOURCE_TIME + 2):
        history = model.fit(list(data(source_time=source_time)), np.zeros((BATCH, TIME, UNITS), "float32"),
                            epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
    for w, old in zip(model.trainable_weights, before):
        assert not np.allclose(keras.ops.convert_to_numpy(w), old), f"fit did not update {w.path}"


def test_bad_arguments():
    inner, luong = zoo.cells.ElmanCell(3), zoo.layers.LuongAttention()
    with pytest.raises(ValueError, match=r"memory_size must be a positive int, got 0"):
        AttentionWrapperCell(inner, luong, 0)
    with pytest.raises(ValueError, match=r"bridge must be one of 'zeros', 'copy', 'dense', got 'mean'"):
        AttentionWrapperCell(inner, luong, 4, bridge="mean")
    with pytest.raises(ValueError, match=r"encoder_state_size \(of the 'dense' bridge\) must be a positive int"):
        AttentionWrapperCell(inner, luong, 4, bridge="dense")
    with pytest.raises(ValueError, match=r"encoder_state_size is for bridge='dense' only"):
        AttentionWrapperCell(inner, luong, 4, encoder_state_size=3)
    with pytest.raises(ValueError, match=r"without an attention_mechanism there is nothing to feed"):
        AttentionWrapperCell(inner, None, 4)
    with pytest.raises(ValueError, match=r"attention_mechanism must be a zoo.layers attention mechanism"):
        AttentionWrapperCell(inner, keras.layers.Dense(3), 4)
    with pytest.raises(ValueError, match=r"cell must be a recurrent cell with state_size"):
        AttentionWrapperCell(keras.layers.Dense(3), luong, 4)


@pytest.mark.jax
@pytest.mark.parametrize("name", ["elman_luong_general_feeding_dense", "lstm_bahdanau_normalized_context_fed_back"])
def test_mixed_float16(name):
    inputs = list(data())
    full = decoder(name)
    mixed = decoder(name, dtype="mixed_float16")
    reference.copy_weights_by_name(full, mixed)
    outputs, *states = mixed(inputs)
    dtype = keras.backend.standardize_dtype
    assert dtype(outputs.dtype) == "float16" and all(dtype(s.dtype) == "float16" for s in states)
    assert all(w.dtype == "float32" for w in mixed.weights)
    # float16 keeps ~3 significant digits; errors compound over 6 steps (as in the cell contract).
    np.testing.assert_allclose(keras.ops.convert_to_numpy(outputs).astype("float32"), run(full, inputs)[0], atol=2e-2)
    alignment = keras.ops.convert_to_numpy(zoo.layers.latest_alignment(states)).astype("float32")
    assert np.all(np.isfinite(alignment)) and np.all(alignment[inputs[2] == 0] == 0.0)


@pytest.mark.jax
@pytest.mark.parametrize("name", ["elman_luong_general_feeding_dense", "lstm_bahdanau_normalized_context_fed_back"])
def test_states_reorder_and_tile_by_batch(name):
    # What a beam search does to every state tensor: gather rows (reorder, tile). A step from the gathered state
    # equals the gathered step, so the memory, keys and mask follow their rows (and rows do not interact).
    targets, memory, memory_mask = data()
    cell = decoder(name).cell
    states = cell.get_initial_state(memory=memory, memory_mask=memory_mask, encoder_state=encoder_state(memory))
    for t in range(2):
        _, states = cell(targets[:, t], states)
    rows = np.array([2, 2, 0, 3, 1, 2])
    output, new_states = cell(targets[rows, 2], [keras.ops.take(s, rows, axis=0) for s in states])
    expected_output, expected_states = cell(targets[:, 2], states)
    np.testing.assert_allclose(output, keras.ops.convert_to_numpy(expected_output)[rows], atol=1e-6)
    for actual, expected in zip(new_states, expected_states):
        np.testing.assert_allclose(actual, keras.ops.convert_to_numpy(expected)[rows], atol=1e-6)


@pytest.mark.jax
def test_weights():
    cell = decoder("elman_luong_general_feeding_dense").cell
    inner, mechanism = cell.cell.weights, cell.attention_mechanism.weights
    own = [w for w in cell.weights if all(w is not v for v in inner + mechanism)]

    def shapes(weights):
        return {w.name: tuple(w.shape) for w in weights if w.trainable}

    # a_t = tanh([c_t; h_t] W_c); s_0 = e W_b + b_b
    assert shapes(own) == {"attention_kernel": (MEMORY_DIM + UNITS, 4), "bridge_kernel": (MEMORY_DIM, UNITS),
                           "bridge_bias": (UNITS,)}
    # The Elman cell reads [x_t; a_{t-1}].
    assert shapes(inner) == {"kernel": (INPUT_DIM + 4, UNITS), "recurrent_kernel": (UNITS, UNITS), "bias": (UNITS,)}
    # The "general" score's W_a and the scale g.
    assert shapes(mechanism) == {"memory_kernel": (MEMORY_DIM, UNITS), "attention_g": ()}
    assert len(cell.trainable_weights) == 3 + 3 + 2
