import numpy as np
import pytest

from tests.helpers import language_model_contract as contract
from tests.helpers import reference
from tests.helpers.language_model_contract import numpy
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
    return contract.tokens(VOCAB, batch, time, seed)


def make(config, seed=0, **overrides):
    model = GatedCNNLM(vocab_size=VOCAB, **{**config, **overrides})
    model.build((None, None))
    reference.randomize_weights(model, seed=seed)
    return model


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
    y = contract.assert_causal(model, x, start=5)
    # And logits[:, t] reach back exactly R tokens: token 0 changes logits[:, R - 1] but not logits[:, R].
    R = model.receptive_field
    assert R == 1 + config["num_blocks"] * (config["kernel_size"] - 1)
    first = x.copy()
    first[:, 0] = (first[:, 0] + 1) % VOCAB
    y_first = numpy(model(first))
    np.testing.assert_allclose(y_first[:, R:], y[:, R:], atol=1e-6)
    assert not np.allclose(y_first[:, R - 1], y[:, R - 1], atol=1e-4)


@pytest.mark.jax
@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_step_equals_call(config):
    model = make(config)
    x = tokens(time=12)  # longer than every receptive field: the window slides
    assert x.shape[1] > model.receptive_field
    contract.assert_step_equals_call(model, x)
    (window,) = model.initial_state(3)
    assert window.shape == (3, model.receptive_field)


# Under JAX the three-block model only: the windows reach back through the state into more than one earlier window.
@pytest.mark.parametrize("config", [pytest.param(CONFIGS[0], marks=pytest.mark.jax), *CONFIGS[1:]], ids=IDS)
def test_carried_state_equals_one_call(config):
    # Windows of 2, 1, 5 and 4 tokens: most shorter than the receptive field (4 and 5; 1 for k1), so the first
    # positions of a window reach back through the state into more than one earlier window.
    contract.assert_carried_state_equals_one_call(make(config), tokens(time=12), cuts=[2, 3, 8])


# Under JAX (where it compiles each eager op) for the first configuration only: the rest adds minutes, not cases.
@pytest.mark.parametrize(
    "config", [pytest.param(CONFIGS[0], marks=pytest.mark.jax), *CONFIGS[1:]], ids=IDS
)
def test_state_ends_at_each_row_s_last_real_token(config):
    contract.assert_state_ends_at_each_row_s_last_real_token(make(config), tokens(batch=4, time=10), [6, 1, 0, 8])


def test_a_start_state_gives_the_logits_of_a_call_without_one():
    model = make(CONFIGS[0])  # receptive field 4
    x = tokens()
    logits, (window,) = model(x, initial_state=model.initial_state(3), return_state=True)
    np.testing.assert_allclose(numpy(logits), numpy(model(x)), atol=1e-6)
    np.testing.assert_array_equal(numpy(window), x[:, -4:])
    short = x[:, :2]  # shorter than the window: -1 marks the positions before the start
    (window,) = model(short, return_state=True)[1]
    np.testing.assert_array_equal(numpy(window), np.concatenate([np.full((3, 2), -1), short], axis=1))


def test_a_wrong_initial_state_is_an_error_naming_the_layout():
    model = make(CONFIGS[0])
    (window,) = model.initial_state(3)
    layout = r"\(window,\): one int32 tensor \[batch, 4\], the last 4 tokens read, oldest first, -1 before the start"
    with pytest.raises(ValueError, match=r"initial_state must hold 1 tensor, " + layout + r".*got 0"):
        model(tokens(), initial_state=())
    with pytest.raises(ValueError, match=r"initial_state must be a tuple " + layout + r".*got a .* of shape \(3, 4\)"):
        model(tokens(), initial_state=window)
    with pytest.raises(ValueError, match=r"initial_state\[0\] must be \[batch, 4\] .*got shape \(3, 4, 1\)"):
        model(tokens(), initial_state=(np.zeros((3, 4, 1), "int32"),))


@pytest.mark.jax
def test_jit_compiled_call_and_steps_equal_eager():
    contract.assert_jit_compiled_call_and_steps_equal_eager(make(CONFIGS[1]), tokens(time=7))


def test_dropout_only_while_training():
    contract.assert_dropout_only_while_training(make(CONFIGS[0], dropout=0.5), make(CONFIGS[0]), tokens())


def test_config_and_keras_file_round_trip(tmp_path):
    model = make(CONFIGS[1], dropout=0.25, pad_id=3)
    contract.assert_config_and_keras_file_round_trip(
        model, tokens(), str(tmp_path / "m.keras"), expected_config={"pad_id": 3, "kernel_size": 3}
    )


def test_saved_model_round_trip(tmp_path):
    contract.assert_saved_model_round_trip(make(CONFIGS[1]), str(tmp_path / "export"))


def test_learns_a_deterministic_cycle():
    contract.assert_learns_a_deterministic_cycle(
        lambda vocab_size: GatedCNNLM(vocab_size=vocab_size, embedding_dim=8, channels=8, kernel_size=2, num_blocks=2)
    )


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
