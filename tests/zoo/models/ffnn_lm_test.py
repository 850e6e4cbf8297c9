import keras
import numpy as np
import pytest

from tests.helpers import language_model_contract as contract
from tests.helpers import reference
from zoo.models.ffnn_lm.ffnn_lm import FeedForwardLM
from zoo.models.ffnn_lm.ffnn_lm_presets import FFNN_LM_PRESETS

VOCAB = 11
CONFIGS = [
    dict(order=4, embedding_dim=3, hidden_units=5, direct_connections=True),
    dict(order=4, embedding_dim=3, hidden_units=5, direct_connections=False, pad_id=2),
    dict(order=2, embedding_dim=4, hidden_units=3, direct_connections=True),
]
IDS = ["order4_direct", "order4_no_direct_pad2", "bigram"]


def tokens(batch=3, time=7, seed=0):
    return contract.tokens(VOCAB, batch, time, seed)


def make(config, seed=0, **overrides):
    model = FeedForwardLM(vocab_size=VOCAB, **{**config, **overrides})
    model.build((None, None))
    reference.randomize_weights(model, seed=seed)
    return model


def numpy_logits(model, x):
    """y = b + W x + U tanh(d + H x), x the n-1 most recent embeddings (pad_id's before the start), oldest first."""
    C = keras.ops.convert_to_numpy(model.embedding.embeddings)
    H, d = (keras.ops.convert_to_numpy(w) for w in (model.hidden.kernel, model.hidden.bias))
    U, b = (keras.ops.convert_to_numpy(w) for w in (model.output_projection.kernel, model.output_projection.bias))
    n = model.order
    batch, time = x.shape
    padded = np.concatenate([np.full((batch, n - 2), model.pad_id), x], axis=1)
    y = np.zeros((batch, time, VOCAB), "float32")
    for t in range(time):
        context = padded[:, t : t + n - 1]  # w_{t-n+2} .. w_t
        features = C[context].reshape(batch, -1)
        y[:, t] = b + np.tanh(d + features @ H) @ U
        if model.direct_connections:
            y[:, t] += features @ keras.ops.convert_to_numpy(model.direct.kernel)
    return y


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_numpy_reference(config):
    model = make(config)
    x = tokens()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), numpy_logits(model, x), atol=1e-5)


def test_weights():
    model = make(CONFIGS[0])
    shapes = {w.path.split("/", 1)[1]: tuple(w.shape) for w in model.weights}
    assert shapes == {
        "embedding/embeddings": (VOCAB, 3),
        "hidden/kernel": (9, 5),
        "hidden/bias": (5,),
        "output/kernel": (5, VOCAB),
        "output/bias": (VOCAB,),
        "direct/kernel": (9, VOCAB),
    }
    assert "direct/kernel" not in {w.path.split("/", 1)[1] for w in make(CONFIGS[1]).weights}


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_causal(config):
    contract.assert_causal(make(config), tokens(time=8), start=4)


def test_context_is_only_the_last_n_minus_1_tokens():
    model = make(CONFIGS[0])  # order 4: logits[:, t] depend on tokens t-2, t-1, t only
    x = tokens(time=8)
    changed = x.copy()
    changed[:, 2] = (changed[:, 2] + 1) % VOCAB
    y, y_changed = (keras.ops.convert_to_numpy(model(v)) for v in (x, changed))
    np.testing.assert_allclose(y_changed[:, 5:], y[:, 5:], atol=1e-6)
    assert not np.allclose(y_changed[:, 4], y[:, 4], atol=1e-3)


@pytest.mark.jax
@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_step_equals_call(config):
    model = make(config)
    contract.assert_step_equals_call(model, tokens(time=8))
    (window,) = model.initial_state(3)
    assert window.shape == (3, model.order - 1) and np.all(keras.ops.convert_to_numpy(window) == model.pad_id)


@pytest.mark.jax
@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_carried_state_equals_one_call(config):
    # Windows of 3, 1 and 5 tokens: the 1-token window is shorter than the context, so the state it returns still
    # holds tokens of the window before it.
    contract.assert_carried_state_equals_one_call(make(config), tokens(time=9), cuts=[3, 4])


# Under JAX (where it compiles each eager op) for the first configuration only: the rest adds minutes, not cases.
@pytest.mark.parametrize(
    "config", [pytest.param(CONFIGS[0], marks=pytest.mark.jax), *CONFIGS[1:]], ids=IDS
)
def test_state_ends_at_each_row_s_last_real_token(config):
    contract.assert_state_ends_at_each_row_s_last_real_token(make(config), tokens(batch=4, time=9), [5, 1, 0, 7])


def test_a_start_state_gives_the_logits_of_a_call_without_one():
    model = make(CONFIGS[1])  # pad_id 2 fills the start window
    x = tokens()
    logits, (window,) = model(x, initial_state=model.initial_state(3), return_state=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(logits), keras.ops.convert_to_numpy(model(x)))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(window), x[:, -3:])
    short = x[:, :2]  # shorter than the window: the start's pad_id stays in it
    (window,) = model(short, return_state=True)[1]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(window), np.concatenate([[[2]] * 3, short], axis=1))


def test_a_wrong_initial_state_is_an_error_naming_the_layout():
    model = make(CONFIGS[0])
    (window,) = model.initial_state(3)
    layout = r"\(window,\): one int32 tensor \[batch, 3\], the last 3 tokens read, oldest first, pad_id=0 before"
    with pytest.raises(ValueError, match=r"initial_state must hold 1 tensor, " + layout + r".*got 2"):
        model(tokens(), initial_state=(window, window))
    with pytest.raises(ValueError, match=r"initial_state must be a tuple " + layout + r".*got a .* of shape \(3, 3\)"):
        model(tokens(), initial_state=window)
    with pytest.raises(ValueError, match=r"initial_state\[0\] must be \[batch, 3\] .*got shape \(3, 4\)"):
        model(tokens(), initial_state=(np.zeros((3, 4), "int32"),))
    batch = r"initial_state\[0\] must have the tokens' batch size, 3, .*got shape \(2, 3\)"
    with pytest.raises(ValueError, match=batch):
        model(tokens(), initial_state=model.initial_state(2))


@pytest.mark.jax
def test_jit_compiled_call_and_steps_equal_eager():
    contract.assert_jit_compiled_call_and_steps_equal_eager(make(CONFIGS[0]), tokens(time=6))


def test_dropout_only_while_training():
    contract.assert_dropout_only_while_training(make(CONFIGS[0], dropout=0.5), make(CONFIGS[0]), tokens())


def test_config_and_keras_file_round_trip(tmp_path):
    model = make(CONFIGS[1], dropout=0.25)
    contract.assert_config_and_keras_file_round_trip(
        model, tokens(), str(tmp_path / "m.keras"), expected_config={"pad_id": 2, "dropout": 0.25}
    )


def test_saved_model_round_trip(tmp_path):
    contract.assert_saved_model_round_trip(make(CONFIGS[0]), str(tmp_path / "export"))


def test_learns_a_deterministic_cycle():
    contract.assert_learns_a_deterministic_cycle(
        lambda vocab_size: FeedForwardLM(vocab_size=vocab_size, order=3, embedding_dim=8, hidden_units=16)
    )


def test_preset_values_build_a_model():
    (name,) = FFNN_LM_PRESETS
    model = FeedForwardLM(vocab_size=VOCAB, **FFNN_LM_PRESETS[name])
    assert model(tokens()).shape == (3, 7, VOCAB)
    assert "vocab_size" not in FFNN_LM_PRESETS[name]


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"vocab_size must be a positive int, got 0"):
        FeedForwardLM(vocab_size=0)
    with pytest.raises(ValueError, match=r"order must be an int >= 2 .*, got 1"):
        FeedForwardLM(vocab_size=VOCAB, order=1)
    with pytest.raises(ValueError, match=r"embedding_dim must be a positive int, got -3"):
        FeedForwardLM(vocab_size=VOCAB, embedding_dim=-3)
    with pytest.raises(ValueError, match=r"hidden_units must be a positive int, got 2.5"):
        FeedForwardLM(vocab_size=VOCAB, hidden_units=2.5)
    with pytest.raises(ValueError, match=r"direct_connections must be True or False, got 'yes'"):
        FeedForwardLM(vocab_size=VOCAB, direct_connections="yes")
    with pytest.raises(ValueError, match=r"dropout must be a float in \[0, 1\), got 1.0"):
        FeedForwardLM(vocab_size=VOCAB, dropout=1.0)
    with pytest.raises(ValueError, match=r"pad_id must be an int in \[0, vocab_size=11\), got 11"):
        FeedForwardLM(vocab_size=VOCAB, pad_id=VOCAB)
