import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import reference
from tests.helpers import saved_model
from tests.helpers import serialization
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
    return np.random.default_rng(seed).integers(0, VOCAB, size=(batch, time)).astype("int32")


def make(config, seed=0, **overrides):
    model = RNNLM(vocab_size=VOCAB, **{**config, **overrides})
    model.build((None, None))
    reference.randomize_weights(model, seed=seed, ranges=WEIGHT_RANGES)
    return model


def numpy(w):
    return keras.ops.convert_to_numpy(w)


def run_steps(model, x):
    state = model.initial_state(x.shape[0])
    logits = []
    for t in range(x.shape[1]):
        step_logits, state = model.step(x[:, t], state)
        logits.append(numpy(step_logits))
    return np.stack(logits, axis=1)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_step_equals_call(name):
    model = make(CONFIGS[name])
    x = tokens()
    np.testing.assert_allclose(run_steps(model, x), numpy(model(x)), atol=1e-5)


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
    model = make(CONFIGS[name])
    x = tokens(time=8)
    changed = x.copy()
    changed[:, 4:] = (changed[:, 4:] + 1) % VOCAB
    y, y_changed = numpy(model(x)), numpy(model(changed))
    np.testing.assert_allclose(y_changed[:, :4], y[:, :4], atol=1e-6)
    assert not np.allclose(y_changed[:, 4], y[:, 4], atol=1e-3), "the current token must reach its own logits"


def test_jit_compiled_call_and_steps_equal_eager():
    model = make(CONFIGS["lstm_peepholes_tied"])
    x = tokens(time=6)
    eager = numpy(model(x))
    compiled_call = tf.function(lambda v: model(v), jit_compile=True)
    np.testing.assert_allclose(compiled_call(tf.constant(x)).numpy(), eager, atol=1e-5)

    @tf.function(jit_compile=True, input_signature=[tf.TensorSpec((None, 6), tf.int32)])
    def decode(v):
        state = model.initial_state(tf.shape(v)[0])  # a symbolic batch size
        logits = []
        for t in range(6):
            step_logits, state = model.step(v[:, t], state)
            logits.append(step_logits)
        return tf.stack(logits, axis=1)

    np.testing.assert_allclose(decode(tf.constant(x)).numpy(), eager, atol=1e-5)


def test_dropout_only_while_training():
    model = make(CONFIGS["lstm"], dropout=0.5)
    plain = make(CONFIGS["lstm"])
    plain.set_weights(model.get_weights())
    x = tokens()
    np.testing.assert_allclose(numpy(model(x)), numpy(plain(x)), atol=1e-6)
    assert not np.allclose(numpy(model(x, training=True)), numpy(plain(x)))


def test_config_and_keras_file_round_trip(tmp_path):
    model = make(CONFIGS["lstm_peepholes_tied"], dropout=0.25, pad_id=4)
    serialization.assert_config_round_trip(model)
    config = model.get_config()
    assert config["cell_options"] == {"peepholes": True} and config["tie_embeddings"] and config["pad_id"] == 4
    loaded = serialization.assert_keras_file_round_trip(model, tokens(), str(tmp_path / "m.keras"))
    assert loaded.recurrent_layers[0].cell.peepholes
    assert RNNLM(vocab_size=VOCAB, units=6).get_config()["embedding_dim"] == 6  # None means `units`


def test_saved_model_round_trip(tmp_path):
    model = make(CONFIGS["lstm_peepholes_tied"])
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
    model = RNNLM(vocab_size=8, cell="lstm", units=16, embedding_dim=16, tie_embeddings=True)
    x, y = cyclic_batch(8, 12)
    model.compile(
        optimizer=keras.optimizers.Adam(0.02), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    steps = 100  # one epoch of identical full batches: far less overhead than one epoch per step
    model.fit(np.tile(x, (steps, 1)), np.tile(y, (steps, 1)), batch_size=len(x), shuffle=False, verbose=0)
    assert float(model.evaluate(x, y, verbose=0)) < 0.1 * np.log(8)


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
