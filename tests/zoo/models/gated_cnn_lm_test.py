import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import reference
from tests.helpers import saved_model
from tests.helpers import serialization
from zoo.models.gated_cnn_lm.gated_cnn_lm import GatedCNNLM
from zoo.models.gated_cnn_lm.gated_cnn_lm_presets import GATED_CNN_LM_PRESETS

VOCAB = 11
CONFIGS = [
    dict(embedding_dim=4, channels=4, kernel_size=2, num_blocks=3),
    dict(embedding_dim=3, channels=5, kernel_size=3, num_blocks=2),
    dict(embedding_dim=4, channels=4, kernel_size=1, num_blocks=1),
]
IDS = ["k2_three_blocks", "k3_projected_input", "k1"]


def tokens(batch=3, time=9, seed=0):
    return np.random.default_rng(seed).integers(0, VOCAB, size=(batch, time)).astype("int32")


def make(config, seed=0, **overrides):
    model = GatedCNNLM(vocab_size=VOCAB, **{**config, **overrides})
    model.build((None, None))
    reference.randomize_weights(model, seed=seed)
    return model


def numpy(w):
    return keras.ops.convert_to_numpy(w)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def numpy_logits(model, x):
    """The blocks by hand: X_{l+1} = X_l + (X_l * W + b) ⊗ σ(X_l * V + c), `*` a convolution over k - 1 zeros
    followed by X_l."""
    c, k = model.channels, model.kernel_size
    h = numpy(model.embedding.embeddings)[x]
    if model.input_projection is not None:
        h = h @ numpy(model.input_projection.kernel) + numpy(model.input_projection.bias)
    batch, time, _ = h.shape
    for block in model.blocks:
        kernel, bias = numpy(block.kernel), numpy(block.bias)
        W, V, b, c_bias = kernel[:, :, :c], kernel[:, :, c:], bias[:c], bias[c:]
        padded = np.concatenate([np.zeros((batch, k - 1, c), "float32"), h], axis=1)
        linear = np.zeros((batch, time, c), "float32") + b
        gate = np.zeros((batch, time, c), "float32") + c_bias
        for t in range(time):
            for j in range(k):  # padded[t + j] is X at time t - (k - 1) + j
                linear[:, t] += padded[:, t + j] @ W[j]
                gate[:, t] += padded[:, t + j] @ V[j]
        h = h + linear * sigmoid(gate)
    return h @ numpy(model.output_projection.kernel) + numpy(model.output_projection.bias)


def run_steps(model, x):
    state = model.initial_state(x.shape[0])
    logits = []
    for t in range(x.shape[1]):
        step_logits, state = model.step(x[:, t], state)
        logits.append(numpy(step_logits))
    return np.stack(logits, axis=1)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_numpy_reference(config):
    model = make(config)
    x = tokens()
    np.testing.assert_allclose(numpy(model(x)), numpy_logits(model, x), atol=1e-5)


def test_weights():
    shapes = {w.path.split("/", 1)[1]: tuple(w.shape) for w in make(CONFIGS[1]).weights}
    assert shapes == {
        "embedding/embeddings": (VOCAB, 3),
        "input_projection/kernel": (3, 5),
        "input_projection/bias": (5,),
        "block_0/kernel": (3, 5, 10),
        "block_0/bias": (10,),
        "block_1/kernel": (3, 5, 10),
        "block_1/bias": (10,),
        "output/kernel": (5, VOCAB),
        "output/bias": (VOCAB,),
    }
    assert not any("input_projection" in w.path for w in make(CONFIGS[0]).weights)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_causal_with_the_receptive_field(config):
    model = make(config)
    x = tokens(time=12)
    changed = x.copy()
    changed[:, 5:] = (changed[:, 5:] + 1) % VOCAB
    y, y_changed = numpy(model(x)), numpy(model(changed))
    np.testing.assert_allclose(y_changed[:, :5], y[:, :5], atol=1e-6)
    assert not np.allclose(y_changed[:, 5], y[:, 5], atol=1e-3), "the current token must reach its own logits"
    # And logits[:, t] reach back exactly R tokens: token 0 changes logits[:, R - 1] but not logits[:, R].
    R = model.receptive_field
    assert R == 1 + config["num_blocks"] * (config["kernel_size"] - 1)
    first = x.copy()
    first[:, 0] = (first[:, 0] + 1) % VOCAB
    y_first = numpy(model(first))
    np.testing.assert_allclose(y_first[:, R:], y[:, R:], atol=1e-6)
    assert not np.allclose(y_first[:, R - 1], y[:, R - 1], atol=1e-4)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_step_equals_call(config):
    model = make(config)
    x = tokens(time=12)  # longer than every receptive field: the window slides
    assert x.shape[1] > model.receptive_field
    np.testing.assert_allclose(run_steps(model, x), numpy(model(x)), atol=1e-5)
    (window,) = model.initial_state(3)
    assert window.shape == (3, model.receptive_field)


def test_jit_compiled_call_and_steps_equal_eager():
    model = make(CONFIGS[1])
    x = tokens(time=7)
    eager = numpy(model(x))
    compiled_call = tf.function(lambda v: model(v), jit_compile=True)
    np.testing.assert_allclose(compiled_call(tf.constant(x)).numpy(), eager, atol=1e-5)

    @tf.function(jit_compile=True, input_signature=[tf.TensorSpec((None, 7), tf.int32)])
    def decode(v):
        state = model.initial_state(tf.shape(v)[0])  # a symbolic batch size
        logits = []
        for t in range(7):
            step_logits, state = model.step(v[:, t], state)
            logits.append(step_logits)
        return tf.stack(logits, axis=1)

    np.testing.assert_allclose(decode(tf.constant(x)).numpy(), eager, atol=1e-5)


def test_dropout_only_while_training():
    model = make(CONFIGS[0], dropout=0.5)
    plain = make(CONFIGS[0])
    plain.set_weights(model.get_weights())
    x = tokens()
    np.testing.assert_allclose(numpy(model(x)), numpy(plain(x)), atol=1e-6)
    assert not np.allclose(numpy(model(x, training=True)), numpy(plain(x)))


def test_config_and_keras_file_round_trip(tmp_path):
    model = make(CONFIGS[1], dropout=0.25, pad_id=3)
    serialization.assert_config_round_trip(model)
    assert model.get_config()["pad_id"] == 3 and model.get_config()["kernel_size"] == 3
    serialization.assert_keras_file_round_trip(model, tokens(), str(tmp_path / "m.keras"))


def test_saved_model_round_trip(tmp_path):
    model = make(CONFIGS[1])
    saved_model.assert_saved_model_round_trip(
        model,
        [tokens(2, 3, seed=1), tokens(5, 9, seed=2)],
        str(tmp_path / "export"),
        input_signature=[keras.InputSpec(shape=(None, None), dtype="int32")],
    )


def cyclic_batch(vocab, time, seed=0):
    """Every window of a fixed cycle through the non-pad tokens: inputs and next-token targets."""
    cycle = np.random.default_rng(seed).permutation(np.arange(1, vocab))
    stream = np.tile(cycle, (time // len(cycle) + 3))
    x = np.stack([stream[o : o + time] for o in range(len(cycle))]).astype("int32")
    y = np.stack([stream[o + 1 : o + time + 1] for o in range(len(cycle))]).astype("int32")
    return x, y


def test_learns_a_deterministic_cycle():
    # Each token of the cycle has one successor: the sequence has zero entropy, so a model that learnt it has a loss
    # near 0, while an untrained one starts near log(vocab). 10% of log(vocab) leaves room for an unfinished run and
    # fails for a model that cannot use its context (that one stays at log(vocab - 1)).
    keras.utils.set_random_seed(0)
    model = GatedCNNLM(vocab_size=8, embedding_dim=8, channels=8, kernel_size=2, num_blocks=2)
    x, y = cyclic_batch(8, 12)
    model.compile(
        optimizer=keras.optimizers.Adam(0.02), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    steps = 100  # one epoch of identical full batches: far less overhead than one epoch per step
    model.fit(np.tile(x, (steps, 1)), np.tile(y, (steps, 1)), batch_size=len(x), shuffle=False, verbose=0)
    assert float(model.evaluate(x, y, verbose=0)) < 0.1 * np.log(8)


def test_preset_values_build_a_model():
    (name,) = GATED_CNN_LM_PRESETS
    model = GatedCNNLM(vocab_size=VOCAB, **GATED_CNN_LM_PRESETS[name])
    assert model(tokens()).shape == (3, 9, VOCAB)
    assert "vocab_size" not in GATED_CNN_LM_PRESETS[name]


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"vocab_size must be a positive int, got -1"):
        GatedCNNLM(vocab_size=-1)
    with pytest.raises(ValueError, match=r"channels must be a positive int, got 0"):
        GatedCNNLM(vocab_size=VOCAB, channels=0)
    with pytest.raises(ValueError, match=r"kernel_size must be a positive int, got 0"):
        GatedCNNLM(vocab_size=VOCAB, kernel_size=0)
    with pytest.raises(ValueError, match=r"num_blocks must be a positive int, got 'two'"):
        GatedCNNLM(vocab_size=VOCAB, num_blocks="two")
    with pytest.raises(ValueError, match=r"embedding_dim must be a positive int, got True"):
        GatedCNNLM(vocab_size=VOCAB, embedding_dim=True)
    with pytest.raises(ValueError, match=r"dropout must be a float in \[0, 1\), got -0.1"):
        GatedCNNLM(vocab_size=VOCAB, dropout=-0.1)
    with pytest.raises(ValueError, match=r"pad_id must be an int in \[0, vocab_size=11\), got -1"):
        GatedCNNLM(vocab_size=VOCAB, pad_id=-1)
