import keras
import numpy as np
import pytest

from tests.helpers import language_model_contract as contract
from tests.helpers import reference
from tests.helpers.backend import jax_for
from tests.helpers.language_model_contract import numpy
from zoo.models.rnn_lm.rnn_lm import RNNLM
from zoo.models.rnn_lm.rnn_lm_presets import RNN_LM_PRESETS

VOCAB = 11
WEIGHT_RANGES = {"alpha": (0.05, 1.0)}  # leak rates live in (0, 1]
CONFIGS = {
    "elman": dict(cell="elman", units=5, num_layers=2, embedding_dim=3),
    "jordan_tied": dict(
        cell="jordan", units=5, num_layers=2, embedding_dim=4, tie_embeddings=True, cell_options={"output_units": 4}
    ),
    "leaky": dict(cell="leaky", units=5, num_layers=2, embedding_dim=3, cell_options={"alpha": 0.3}),
    "lstm": dict(cell="lstm", units=5, num_layers=2, embedding_dim=3),
    "lstm_peepholes_tied": dict(
        cell="lstm", units=4, num_layers=2, embedding_dim=4, tie_embeddings=True, cell_options={"peepholes": True}
    ),
    "gru_tied": dict(cell="gru", units=4, num_layers=1, embedding_dim=4, tie_embeddings=True),
    "gru_reset_before": dict(cell="gru", units=5, num_layers=2, embedding_dim=3, cell_options={"reset_after": False}),
}


def tokens(batch=3, time=7, seed=0):
    return contract.tokens(VOCAB, batch, time, seed)


def make(config, seed=0, **overrides):
    model = RNNLM(vocab_size=VOCAB, **{**config, **overrides})
    model.build((None, None))
    reference.randomize_weights(model, seed=seed, ranges=WEIGHT_RANGES)
    return model


# Under JAX (where each eager op compiles) two configurations: an output-feedback cell and a tied, peephole LSTM.
JAX_CONFIGS = ("jordan_tied", "lstm_peepholes_tied")


@pytest.mark.parametrize("name", jax_for(sorted(CONFIGS), JAX_CONFIGS))
def test_step_equals_call(name):
    contract.assert_step_equals_call(make(CONFIGS[name]), tokens())


@pytest.mark.parametrize("name", jax_for(sorted(CONFIGS), JAX_CONFIGS))
def test_carried_state_equals_one_call(name):
    contract.assert_carried_state_equals_one_call(make(CONFIGS[name]), tokens(time=9), cuts=[3, 4])


# Under JAX for the stacked LSTM only: the rest adds minutes to the JAX pass, not cases.
@pytest.mark.parametrize("name", jax_for(sorted(CONFIGS), ("lstm",)))
def test_state_ends_at_each_row_s_last_real_token(name):
    contract.assert_state_ends_at_each_row_s_last_real_token(make(CONFIGS[name]), tokens(batch=4, time=9), [5, 1, 0, 7])


def test_a_wrong_initial_state_is_an_error_naming_the_layout():
    model = make(CONFIGS["lstm"])
    with pytest.raises(ValueError, match=r"initial_state must hold 4 tensors .*sizes \[5, 5, 5, 5\]"):
        model(tokens(), initial_state=model.initial_state(3)[:2])
    state = list(model.initial_state(3))
    state[1] = np.zeros((3, 4), "float32")
    with pytest.raises(ValueError, match=r"initial_state\[1\] must be \[batch, 5\], got shape \(3, 4\)"):
        model(tokens(), initial_state=state)


def test_initial_state_is_every_layer_s_cell_states():
    model = make(CONFIGS["lstm"])
    state = model.initial_state(3)
    assert [tuple(s.shape) for s in state] == [(3, 5)] * 4  # (h, c) of two LSTM layers
    assert not any(np.any(numpy(s)) for s in state)
    jordan = make(CONFIGS["jordan_tied"])
    assert [tuple(s.shape) for s in jordan.initial_state(2)] == [(2, 4)] * 2  # o_{t-1} of two Jordan layers


# Configurations in which the model is a plain Keras stack: Embedding -> Keras recurrent layers -> projection.
KERAS_TWINS = [
    ("elman", lambda units, **kw: keras.layers.SimpleRNN(units, **kw)),
    ("lstm", lambda units, **kw: keras.layers.LSTM(units, **kw)),
    ("gru_tied", lambda units, **kw: keras.layers.GRU(units, **kw)),
    ("gru_reset_before", lambda units, **kw: keras.layers.GRU(units, reset_after=False, **kw)),
]


@pytest.mark.parametrize("name,make_twin", KERAS_TWINS, ids=[name for name, _ in KERAS_TWINS])
def test_equals_a_plain_keras_model(name, make_twin):
    config = CONFIGS[name]
    model = make(config)
    twin = keras.Sequential(
        [keras.Input((None,), dtype="int32"), keras.layers.Embedding(VOCAB, config["embedding_dim"])]
        + [make_twin(config["units"], return_sequences=True) for _ in range(config["num_layers"])]
    )
    reference.randomize_weights(twin, seed=1)
    reference.copy_weights_by_name(twin.layers[0], model.embedding)
    for twin_layer, layer in zip(twin.layers[1:], model.recurrent_layers):
        reference.copy_weights_by_name(twin_layer, layer)
    x = tokens()
    h = numpy(twin(x))
    if config.get("tie_embeddings"):
        # y = h C^T + o: the output projection is the embedding matrix itself.
        expected = h @ numpy(twin.layers[0].embeddings).T + numpy(model.output_bias)
    else:
        expected = h @ numpy(model.output_projection.kernel) + numpy(model.output_projection.bias)
    np.testing.assert_allclose(numpy(model(x)), expected, atol=1e-5)


def test_tied_embeddings_share_the_matrix():
    tied, untied = make(CONFIGS["gru_tied"]), make({**CONFIGS["gru_tied"], "tie_embeddings": False})
    paths = {w.path.split("/", 1)[1] for w in tied.weights}
    assert "output_bias" in paths and not any(p.startswith("output/") for p in paths)
    assert untied.count_params() - tied.count_params() == VOCAB * 4  # O [units, vocab] is gone; o stays
    # Token 10 never occurs in the input, so its embedding can only reach the logits as a row of the output matrix.
    x = tokens() % 10
    for model, reaches_logits in ((tied, True), (untied, False)):
        before = numpy(model(x))
        embeddings = numpy(model.embedding.embeddings)
        embeddings[10] += 1.0
        model.embedding.embeddings.assign(embeddings)
        after = numpy(model(x))
        np.testing.assert_allclose(after[..., :10], before[..., :10], atol=1e-6)
        assert reaches_logits != np.allclose(after[..., 10], before[..., 10], atol=1e-3)


def test_tie_embeddings_needs_matching_sizes():
    with pytest.raises(
        ValueError,
        match=r"tie_embeddings needs the top recurrent layer's output size to equal embedding_dim, got output size 5 "
        r"\(units=5\) and embedding_dim=3",
    ):
        RNNLM(vocab_size=VOCAB, units=5, embedding_dim=3, tie_embeddings=True)
    with pytest.raises(ValueError, match=r"got output size 6 \(units=5\) and embedding_dim=5"):
        RNNLM(vocab_size=VOCAB, cell="jordan", units=5, tie_embeddings=True, cell_options={"output_units": 6})


@pytest.mark.parametrize("name", ["elman", "lstm_peepholes_tied"])
def test_causal(name):
    contract.assert_causal(make(CONFIGS[name]), tokens(time=8), start=4)


@pytest.mark.jax
def test_jit_compiled_call_and_steps_equal_eager():
    contract.assert_jit_compiled_call_and_steps_equal_eager(make(CONFIGS["lstm_peepholes_tied"]), tokens(time=6))


INIT_SCALE_CONFIGS = {
    **CONFIGS,
    # What init_scale overrides: chrono initialisation of the biases, the forget bias at 1, a cell's initialiser.
    "lstm_chrono_peepholes": dict(
        cell="lstm",
        units=4,
        num_layers=2,
        embedding_dim=3,
        cell_options={"peepholes": True, "chrono_max_length": 50, "unit_forget_bias": True},
    ),
    "gru_chrono": dict(cell="gru", units=4, embedding_dim=3, cell_options={"chrono_max_length": 50}),
    "elman_constant_kernel": dict(cell="elman", units=4, embedding_dim=3, cell_options={"kernel_initializer": "ones"}),
    "leaky_trainable_alpha": dict(cell="leaky", units=4, embedding_dim=3, cell_options={"trainable_alpha": True}),
}


def built(config, **overrides):
    """An RNNLM built with its own initial weights under seed 0: {weight path without the model's name: NumPy}."""
    keras.utils.set_random_seed(0)
    model = RNNLM(vocab_size=VOCAB, **{**config, **overrides})
    model.build((None, None))
    return {w.path.split("/", 1)[1]: numpy(w) for w in model.weights}


@pytest.mark.parametrize("name", sorted(INIT_SCALE_CONFIGS))
def test_init_scale_draws_every_weight_from_a_uniform(name):
    config = INIT_SCALE_CONFIGS[name]
    weights = built(config, init_scale=0.05)
    for path, value in weights.items():
        if path.endswith("/alpha"):  # leak rates are rates, not weights: kept
            np.testing.assert_allclose(value, config.get("cell_options", {}).get("alpha", 0.5))
            continue
        assert np.all(np.abs(value) <= 0.05), (path, value)
        # Spread over the range (not one value, nor a narrower default such as U(-0.05, 0.05) scaled down).
        assert np.ptp(value) > 0.03 if value.size >= 8 else np.ptp(value) > 0, (path, value)
    # Every weight its own draw: no two weights of the same size start equal (an LSTM's peepholes included).
    values = [v.ravel() for path, v in weights.items() if not path.endswith("/alpha")]
    for i, a in enumerate(values):
        assert not any(len(a) == len(b) and np.array_equal(a, b) for b in values[i + 1 :])
    # The same seed draws the same weights.
    again = built(config, init_scale=0.05)
    for path in weights:
        np.testing.assert_array_equal(again[path], weights[path])


def test_without_init_scale_the_initialisers_are_the_layers_own():
    config = CONFIGS["lstm"]
    weights = built(config)
    assert RNNLM(vocab_size=VOCAB, **config).get_config()["init_scale"] is None
    for path, value in built(config, init_scale=None).items():
        np.testing.assert_array_equal(value, weights[path])
    for layer in ("lstm_0", "lstm_1"):
        # Biases: zeros, the forget gate's ones; the recurrent kernel: orthogonal (R R^T = I).
        np.testing.assert_array_equal(weights[f"{layer}/lstm_cell/bias"], np.repeat([0.0, 1.0, 0.0, 0.0], 5))
        recurrent = weights[f"{layer}/lstm_cell/recurrent_kernel"]
        np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(5), atol=1e-5)
    np.testing.assert_array_equal(weights["output/bias"], 0.0)
    assert np.abs(weights["output/kernel"]).max() > 0.1  # Glorot: limit sqrt(6 / (5 + 11)) = 0.61


def test_init_scale_config_and_keras_file_round_trip(tmp_path):
    model = RNNLM(vocab_size=VOCAB, cell="gru", units=4, embedding_dim=3, init_scale=0.1)
    model.build((None, None))
    loaded = contract.assert_config_and_keras_file_round_trip(
        model, tokens(), str(tmp_path / "m.keras"), expected_config={"init_scale": 0.1}
    )
    assert loaded.init_scale == 0.1


def test_dropout_only_while_training():
    contract.assert_dropout_only_while_training(make(CONFIGS["lstm"], dropout=0.5), make(CONFIGS["lstm"]), tokens())


def test_config_and_keras_file_round_trip(tmp_path):
    model = make(CONFIGS["lstm_peepholes_tied"], dropout=0.25, pad_id=4)
    loaded = contract.assert_config_and_keras_file_round_trip(
        model,
        tokens(),
        str(tmp_path / "m.keras"),
        expected_config={"cell_options": {"peepholes": True}, "tie_embeddings": True, "pad_id": 4},
    )
    assert loaded.recurrent_layers[0].cell.peepholes
    assert RNNLM(vocab_size=VOCAB, units=6).get_config()["embedding_dim"] == 6  # None means `units`


def test_saved_model_round_trip(tmp_path):
    contract.assert_saved_model_round_trip(make(CONFIGS["lstm_peepholes_tied"]), str(tmp_path / "export"))


def test_learns_a_deterministic_cycle():
    contract.assert_learns_a_deterministic_cycle(
        lambda vocab_size: RNNLM(vocab_size=vocab_size, cell="lstm", units=16, embedding_dim=16, tie_embeddings=True)
    )


@pytest.mark.parametrize("name", sorted(RNN_LM_PRESETS))
def test_presets_build_a_model(name):
    assert "vocab_size" not in RNN_LM_PRESETS[name]
    model = RNNLM(vocab_size=VOCAB, **RNN_LM_PRESETS[name])
    assert model(tokens()).shape == (3, 7, VOCAB)
    assert model.recurrent_layers[0].cell.units == RNN_LM_PRESETS[name]["units"]


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"vocab_size must be a positive int, got None"):
        RNNLM(vocab_size=None)
    with pytest.raises(ValueError, match=r"cell must be one of 'elman', 'jordan', 'leaky', 'lstm', 'gru', got 'rnn'"):
        RNNLM(vocab_size=VOCAB, cell="rnn")
    with pytest.raises(ValueError, match=r"units must be a positive int, got -3"):
        RNNLM(vocab_size=VOCAB, units=-3)
    with pytest.raises(ValueError, match=r"num_layers must be a positive int, got 0"):
        RNNLM(vocab_size=VOCAB, num_layers=0)
    with pytest.raises(ValueError, match=r"embedding_dim must be a positive int, got 0"):
        RNNLM(vocab_size=VOCAB, embedding_dim=0)
    with pytest.raises(ValueError, match=r"dropout must be a float in \[0, 1\), got 1.5"):
        RNNLM(vocab_size=VOCAB, dropout=1.5)
    with pytest.raises(ValueError, match=r"tie_embeddings must be True or False, got 1"):
        RNNLM(vocab_size=VOCAB, tie_embeddings=1)
    with pytest.raises(ValueError, match=r"cell_options must be a dict of recurrent layer arguments or None, got"):
        RNNLM(vocab_size=VOCAB, cell_options=["peepholes"])
    with pytest.raises(ValueError, match=r"LSTM got unknown argument\(s\) \['hops'\]"):
        RNNLM(vocab_size=VOCAB, cell_options={"hops": 3})
    with pytest.raises(ValueError, match=r"pad_id must be an int in \[0, vocab_size=11\), got 2.0"):
        RNNLM(vocab_size=VOCAB, pad_id=2.0)
    for bad in (0, -0.1, float("inf"), "0.1", True):
        with pytest.raises(ValueError, match=r"init_scale must be a positive float .* or None .*, got " + repr(bad)):
            RNNLM(vocab_size=VOCAB, init_scale=bad)
