"""Seq2Seq: teacher forcing equals stepping, source padding changes nothing, greedy and beam search run on the model,
XLA, the file round trips, presets, and a toy reversal task that it learns."""

import zipfile

import h5py
import keras
import numpy as np
import pytest

import zoo
from tests.helpers import backend
from tests.helpers import reference
from tests.helpers import saved_model
from tests.helpers.backend import jax_for
from tests.helpers.language_model_contract import numpy
from zoo import decoding
from zoo.models.seq2seq.seq2seq import Seq2Seq
from zoo.models.seq2seq.seq2seq import scheduled_sampling_noise
from zoo.models.seq2seq.seq2seq_presets import SEQ2SEQ_PRESETS

SOURCE_VOCAB, TARGET_VOCAB = 11, 9
PAD, BOS, EOS = 0, 1, 2
WEIGHT_RANGES = {"alpha": (0.05, 1.0)}  # leak rates live in (0, 1]
CONFIGS = {
    # Luong "general" over a bidirectional two-layer LSTM encoder, attentional vector, input feeding, dense bridge.
    "luong_bidirectional": dict(cell="lstm", units=5, encoder_layers=2, bidirectional=True, embedding_dim=4,
                                attention="luong", attention_options={"score": "general", "scale": True},
                                attention_layer_size=4),
    # Bahdanau over a GRU encoder, the context fed back (no attention layer), the encoder's state copied.
    "bahdanau_copy": dict(cell="gru", units=5, embedding_dim=3, attention="bahdanau",
                          attention_options={"units": 3, "normalize": True}, bridge="copy"),
    # Luong "concat", no input feeding, tied embeddings, leaky cells.
    "luong_concat_tied": dict(cell="leaky", units=5, bidirectional=True, embedding_dim=4, attention="luong",
                              attention_options={"score": "concat", "units": 3}, attention_layer_size=4,
                              input_feeding=False, tie_embeddings=True, cell_options={"alpha": 0.5}),
    # The fixed-vector encoder–decoder: no attention, the decoder starts from the bridged final states.
    "plain_bidirectional": dict(cell="lstm", units=5, bidirectional=True, embedding_dim=3, attention="none"),
    "plain_elman": dict(cell="elman", units=5, encoder_layers=2, embedding_dim=3, attention="none"),
}
ATTENTIONAL = ["luong_bidirectional", "bahdanau_copy", "luong_concat_tied"]


def data(batch=4, source_time=6, target_time=5, seed=0):
    """Source [batch, source_time] right-padded to different lengths (the first row full, the last one token),
    target_in [batch, target_time] starting with <bos>, without padding."""
    rng = np.random.default_rng(seed)
    source = rng.integers(3, SOURCE_VOCAB, size=(batch, source_time)).astype("int32")
    lengths = rng.integers(1, source_time + 1, size=batch)
    lengths[0], lengths[-1] = source_time, 1
    source[np.arange(source_time)[None, :] >= lengths[:, None]] = PAD
    target = rng.integers(3, TARGET_VOCAB, size=(batch, target_time)).astype("int32")
    target[:, 0] = BOS
    return source, target


def make(name, seed=0, **overrides):
    model = Seq2Seq(SOURCE_VOCAB, TARGET_VOCAB, **{**CONFIGS[name], **overrides})
    model.build(((None, None), (None, None)))
    reference.randomize_weights(model, seed=seed, ranges=WEIGHT_RANGES)
    return model


def run_steps(model, source, target):
    """Teacher forcing by hand: `step` on every target token from `initial_state(source)`; logits [B, T, V]."""
    state = model.initial_state(source)
    logits = []
    for t in range(target.shape[1]):
        step_logits, state = model.step(target[:, t], state)
        logits.append(numpy(step_logits))
    return np.stack(logits, axis=1)


@pytest.mark.parametrize("name", jax_for(sorted(CONFIGS), ("bahdanau_copy", "luong_concat_tied")))
def test_step_equals_call(name):
    model = make(name)
    source, target = data()
    np.testing.assert_allclose(run_steps(model, source, target), numpy(model((source, target))), atol=1e-5)


# Under JAX (where each new shape recompiles) two configurations suffice: one attends, one does not.
JAX_PADDING_CONFIGS = ("bahdanau_copy", "plain_bidirectional")



@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.jax] if n in JAX_PADDING_CONFIGS else []) for n in sorted(CONFIGS)]
)
def test_source_padding_changes_nothing(name):
    model = make(name)
    source, target = data()
    logits = numpy(model((source, target)))
    # More padding on every row: the same logits.
    padded = np.concatenate([source, np.zeros((len(source), 4), "int32")], axis=1)
    np.testing.assert_allclose(numpy(model((padded, target))), logits, atol=1e-5)
    # A row alone, cut to its own length: the logits it has in the batch.
    for row in range(len(source)):
        length = int(np.sum(source[row] != PAD))
        alone = numpy(model((source[row:row + 1, :length], target[row:row + 1])))
        np.testing.assert_allclose(alone[0], logits[row], atol=1e-5, err_msg=f"row {row}")
    # ...while a real source token does reach the logits (through the attention, or the bridge without it).
    changed = source.copy()
    changed[0, 0] = 3 + (changed[0, 0] - 2) % (SOURCE_VOCAB - 3)
    assert not np.allclose(numpy(model((changed, target)))[0], logits[0], atol=1e-4)


def feature_twin(model):
    """The same Seq2Seq without a source vocabulary, its weights but the source embedding: it reads the embedded
    source as feature vectors, with their mask."""
    twin = Seq2Seq.from_config({**model.get_config(), "source_vocab_size": None, "source_dim": model.embedding_dim})
    twin.build(None)
    by_path = {w.path.split("/", 1)[1]: w for w in model.weights}
    for weight in twin.weights:
        weight.assign(by_path[weight.path.split("/", 1)[1]])
    assert len(twin.weights) == len(model.weights) - 1  # all but the source embedding
    return twin


@pytest.mark.parametrize("name", jax_for(["luong_bidirectional", "plain_bidirectional"], ("luong_bidirectional",)))
def test_feature_sources_with_a_mask_equal_the_embedded_tokens(name):
    model = make(name)
    twin = feature_twin(model)
    source, target = data()
    mask = source != PAD
    # Garbage at the padded positions: only the mask tells them apart.
    features = np.where(mask[..., None], numpy(model.source_embedding.embeddings)[source], 5.0).astype("float32")
    expected = numpy(model((source, target)))
    np.testing.assert_allclose(numpy(twin(((features, mask), target))), expected, atol=1e-5)
    np.testing.assert_allclose(run_steps(twin, (features, mask), target), expected, atol=1e-5)
    np.testing.assert_array_equal(numpy(twin.source_mask((features, mask))), mask)
    with pytest.raises(ValueError, match=r"takes its source as the pair \(features \[batch, S, source_dim\], mask"):
        twin((features, target))


@pytest.mark.jax
def test_initial_state_is_the_attention_wrapper_s():
    model = make("luong_bidirectional")
    source, _ = data()
    state = model.initial_state(source)
    # output a_0, the LSTM's (h, c), a_0 fed back, alignment, coverage, memory [B, S * 10], keys [B, S * 5], mask.
    assert [tuple(s.shape) for s in state] == [(4, 4), (4, 5), (4, 5), (4, 4), (4, 6), (4, 6), (4, 60), (4, 30),
                                               (4, 6)]
    np.testing.assert_array_equal(numpy(state[zoo.layers.MEMORY_MASK_INDEX]), source != PAD)
    np.testing.assert_array_equal(numpy(model.source_mask(source)), source != PAD)
    memory, final_states = model.encode(source)
    assert tuple(memory.shape) == (4, 6, 10) and [tuple(s.shape) for s in final_states] == [(4, 5)] * 4
    # Forward (h, c), then backward (h, c): the forward h at each row's last real token, the backward h at its first.
    memory = numpy(memory)
    last = np.sum(source != PAD, axis=1) - 1
    np.testing.assert_allclose(numpy(final_states[0]), memory[np.arange(4), last, :5], atol=1e-6)
    np.testing.assert_allclose(numpy(final_states[2]), memory[:, 0, 5:], atol=1e-6)
    # The bridge really projects the encoder's final states: s_0 = [e_1; ...; e_4] W_b + b_b, split into (h, c).
    cell = model.decoder_cell
    projected = np.concatenate([numpy(s) for s in final_states], -1) @ numpy(cell.bridge_kernel) + numpy(
        cell.bridge_bias)
    np.testing.assert_allclose(np.concatenate([numpy(state[1]), numpy(state[2])], -1), projected, atol=1e-5)


def greedy(model, source, max_length):
    batch = len(source)
    return decoding.generate(
        model.step, model.initial_state(source), np.full((batch, 1), BOS, "int32"), np.ones(batch, "int32"),
        max_length, eos_id=EOS, banned_ids=(PAD, BOS),
    )


def beam(model, source, max_length, beam_size, **kwargs):
    return decoding.beam_search(
        model.step, model.initial_state(source), keras.ops.full(keras.ops.shape(source)[:1], BOS, "int32"), max_length,
        eos_id=EOS,
        beam_size=beam_size, banned_ids=(PAD, BOS), alignment_fn=model.alignment,
        source_mask=model.source_mask(source), **kwargs,
    )


@pytest.mark.parametrize("name", jax_for(["luong_bidirectional", "bahdanau_copy", "plain_elman"], ("bahdanau_copy",)))
def test_greedy_and_beam_search_decode_the_model(name):
    model = make(name)
    source, _ = data()
    greedy_out = greedy(model, source, 7)
    beam_1 = beam(model, source, 7, beam_size=1)
    np.testing.assert_array_equal(numpy(beam_1["tokens"])[:, 0], numpy(greedy_out["tokens"]))
    np.testing.assert_array_equal(numpy(beam_1["lengths"])[:, 0], numpy(greedy_out["lengths"]))
    # The greedy sequence's score is the sum of its token log-probabilities under the model.
    np.testing.assert_allclose(numpy(beam_1["log_probs"])[:, 0], numpy(greedy_out["log_probs"]).sum(-1), atol=1e-4)

    out = beam(model, source, 7, beam_size=3, length_penalty=0.6, coverage_penalty=0.2)
    tokens, lengths, alignments = numpy(out["tokens"]), numpy(out["lengths"]), numpy(out["alignments"])
    assert tokens.shape == (4, 3, 7) and alignments.shape == (4, 3, 7, 6)
    # Each hypothesis's own alignments: weight only on the real source positions, and (with attention) a
    # distribution over them at every step it took; none at all without attention.
    real = (source != PAD)[:, None, None, :]
    assert not np.any(alignments[np.broadcast_to(~real, alignments.shape)])
    steps_taken = np.arange(7)[None, None, :] < lengths[:, :, None]
    sums = alignments.sum(-1)
    expected = steps_taken.astype("float32") if CONFIGS[name]["attention"] != "none" else np.zeros_like(sums)
    np.testing.assert_allclose(sums, expected, atol=1e-5)
    # Scores sorted best first, and no hypothesis of a row is returned twice.
    scores = numpy(out["scores"])
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    for row in range(4):
        assert len({tuple(t[:n]) for t, n in zip(tokens[row], lengths[row])}) == 3
    # More source padding decodes the same: the same hypotheses and scores, the alignments padded with zeros.
    padded = beam(model, np.concatenate([source, np.zeros((4, 3), "int32")], axis=1), 7, beam_size=3,
                  length_penalty=0.6, coverage_penalty=0.2)
    np.testing.assert_array_equal(numpy(padded["tokens"]), tokens)
    np.testing.assert_allclose(numpy(padded["scores"]), scores, atol=1e-4)
    np.testing.assert_allclose(numpy(padded["alignments"]), np.pad(alignments, [(0, 0)] * 3 + [(0, 3)]), atol=1e-5)


@pytest.mark.parametrize("name", jax_for(["luong_bidirectional", "plain_bidirectional"], ("plain_bidirectional",)))
def test_jit_compiled_call_steps_and_beam_search_equal_eager(name):
    model = make(name)
    source, target = data()
    eager = numpy(model((source, target)))
    specs = [((None, None), "int32"), ((None, None), "int32")]  # batch, source and target lengths stay symbolic
    compiled_call = backend.xla_compiled(lambda s, t: model((s, t)), model.variables, specs)
    np.testing.assert_allclose(compiled_call(source, target), eager, atol=1e-5)

    time = target.shape[1]

    def decode(s, t):
        state = model.initial_state(s)
        logits = []
        for position in range(time):
            step_logits, state = model.step(t[:, position], state)
            logits.append(step_logits)
        return keras.ops.stack(logits, axis=1)

    compiled_decode = backend.xla_compiled(decode, model.variables, [((None, None), "int32"), ((None, time), "int32")])
    np.testing.assert_allclose(compiled_decode(source, target), eager, atol=1e-5)

    eager_beam = beam(model, source, 6, beam_size=2, length_penalty=0.6)
    compiled_beam = backend.xla_compiled(
        lambda s: beam(model, s, 6, beam_size=2, length_penalty=0.6), model.variables, [((None, None), "int32")]
    )(source)
    for key in ("tokens", "lengths", "alignments"):
        np.testing.assert_allclose(compiled_beam[key], numpy(eager_beam[key]), atol=1e-5, err_msg=key)
    np.testing.assert_allclose(compiled_beam["scores"], numpy(eager_beam["scores"]), atol=1e-4)


def test_tied_embeddings_share_the_matrix():
    tied = make("luong_concat_tied")
    untied = make("luong_concat_tied", tie_embeddings=False)
    paths = {w.path.split("/", 1)[1] for w in tied.weights}
    assert "output_bias" in paths and not any(p.startswith("output/") for p in paths)
    assert untied.count_params() - tied.count_params() == 4 * TARGET_VOCAB  # O [4, vocab] is gone; the bias stays
    source, target = data()
    target[target == 8] = 3
    logits = numpy(tied((source, target)))
    # Token 8 is not in target_in: its embedding reaches the logits only as the output matrix's row.
    embeddings = numpy(tied.target_embedding.embeddings)
    embeddings[8] += 1.0
    tied.target_embedding.embeddings.assign(embeddings)
    changed = numpy(tied((source, target)))
    np.testing.assert_allclose(changed[..., :8], logits[..., :8], atol=1e-6)
    assert not np.allclose(changed[..., 8], logits[..., 8], atol=1e-3)


def test_dropout_only_while_training():
    model, plain = make("luong_bidirectional", dropout=0.5), make("luong_bidirectional")
    plain.set_weights(model.get_weights())
    source, target = data()
    np.testing.assert_allclose(numpy(model((source, target))), numpy(plain((source, target))), atol=1e-6)
    assert not np.allclose(numpy(model((source, target), training=True)), numpy(plain((source, target))))


def stored_weights(path):
    """The paths of the arrays in a `.keras` file's weights."""
    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as weights_file:
        with h5py.File(weights_file) as stored:
            paths = []
            stored.visititems(lambda key, item: paths.append(key) if isinstance(item, h5py.Dataset) else None)
    return sorted(paths)


@pytest.mark.parametrize("name", ["luong_bidirectional", "bahdanau_copy", "luong_concat_tied", "plain_elman"])
def test_config_and_keras_file_round_trip(name, tmp_path):
    model = make(name, dropout=0.25)
    config = model.get_config()
    for key, value in {**CONFIGS[name], "dropout": 0.25}.items():
        assert config[key] == value, (key, config[key], value)
    clone = Seq2Seq.from_config(config)
    assert clone.get_config() == config
    source, target = data()
    expected = numpy(model((source, target)))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded) is Seq2Seq and loaded.get_config() == config
    np.testing.assert_allclose(numpy(loaded((source, target))), expected, atol=1e-6)
    assert [(w.path, tuple(w.shape)) for w in loaded.weights] == [(w.path, tuple(w.shape)) for w in model.weights]
    # Scheduled sampling's decoder and the parallel teacher-forcing decoder share the model's layers and hold no
    # weights of their own: the file stores every weight where a Seq2Seq without them (as saved before they existed)
    # does, so that such files still load.
    bare = make(name, dropout=0.25)
    del bare._scheduled_decoder
    if bare._parallel_decoder is not None:
        del bare._parallel_decoder
    bare.save(tmp_path / "bare.keras")
    assert stored_weights(tmp_path / "m.keras") == stored_weights(tmp_path / "bare.keras")
    # And the same variables in the same order: what the trainer's checkpoints hold, by position and path.
    assert [v.path.split("/", 1)[1] for v in model.variables] == [v.path.split("/", 1)[1] for v in bare.variables]
    # The loaded model decodes as the saved one, and trains with scheduled sampling as it.
    np.testing.assert_array_equal(numpy(greedy(loaded, source, 5)["tokens"]), numpy(greedy(model, source, 5)["tokens"]))
    np.testing.assert_allclose(numpy(loaded((source, target), sampling_probability=0.5, sampling_seed=3)),
                               numpy(model((source, target), sampling_probability=0.5, sampling_seed=3)), atol=1e-6)


@pytest.mark.parametrize("name", ["luong_bidirectional", "plain_bidirectional"])
def test_saved_model_round_trip(name, tmp_path):
    model = make(name)
    batches = [list(data(batch=2, source_time=3, target_time=4, seed=1)),
               list(data(batch=5, source_time=9, target_time=7, seed=2))]
    # Named specs: the signature's inputs are called "source" and "target_in".
    specs = [keras.InputSpec(shape=(None, None), dtype="int32", name=name) for name in ("source", "target_in")]
    saved_model.assert_saved_model_round_trip(model, batches, str(tmp_path / "export"), input_signature=[specs])


def run_scheduled_steps(model, source, target, probability, seed):
    """Scheduled sampling by hand: `step` from `initial_state(source)`; step t > 0 reads a token drawn from the
    previous step's softmax (`inverse_cdf_sample` with noise[:, t, 1]) where noise[:, t, 0] < probability, the
    reference token elsewhere. Returns logits [B, T, V] and the tokens read [B, T]."""
    noise = numpy(scheduled_sampling_noise(seed, *target.shape))
    state = model.initial_state(source)
    logits, read, tokens = [], [], target[:, 0]
    for t in range(target.shape[1]):
        if t > 0:
            drawn = numpy(decoding.samplers.inverse_cdf_sample(logits[-1], noise[:, t, 1]))
            tokens = np.where(noise[:, t, 0] < probability, drawn, target[:, t])
        read.append(tokens)
        step_logits, state = model.step(tokens, state)
        logits.append(numpy(step_logits))
    return np.stack(logits, axis=1), np.stack(read, axis=1)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_scheduled_sampling_at_probability_0_is_teacher_forcing(name):
    model = make(name)
    source, target = data()
    np.testing.assert_allclose(numpy(model((source, target), sampling_probability=0.0, sampling_seed=5)),
                               numpy(model((source, target))), atol=1e-6)


@pytest.mark.parametrize("name", ["luong_bidirectional", "bahdanau_copy", "luong_concat_tied", "plain_elman"])
def test_scheduled_sampling_equals_stepping_on_the_model_s_own_samples(name):
    model = make(name)
    source, target = data(batch=6, target_time=7)
    for probability in (1.0, 0.5):
        expected, read = run_scheduled_steps(model, source, target, probability, seed=(3, 11))
        got = numpy(model((source, target), sampling_probability=probability, sampling_seed=np.array([3, 11])))
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=f"probability {probability}")
        # The first step reads <bos>; later ones read the model's tokens, all at 1 and some at 0.5.
        np.testing.assert_array_equal(read[:, 0], target[:, 0])
        differs = (read[:, 1:] != target[:, 1:]).mean()
        assert differs > 0.5 if probability == 1.0 else 0.1 < differs < 0.9, (probability, differs)
    # Another seed draws other tokens.
    other = numpy(model((source, target), sampling_probability=1.0, sampling_seed=4))
    assert not np.allclose(other, run_scheduled_steps(model, source, target, 1.0, seed=(3, 11))[0], atol=1e-3)


def test_scheduled_sampling_gradients_reach_every_weight():
    backend.skip_unless_tensorflow("the gradient of a model's weights through tf.GradientTape")
    import tensorflow as tf

    model = make("luong_bidirectional")
    source, target = data()
    target_out = np.roll(target, -1, axis=1)

    def gradients(**kwargs):
        with tf.GradientTape() as tape:
            logits = model((source, target), **kwargs)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(target_out, logits, from_logits=True))
        return [numpy(g) for g in tape.gradient(loss, model.trainable_variables)]

    teacher = gradients()
    # At probability 0: the gradients of teacher forcing. At 1: other ones, finite, and reaching every weight (the
    # embedding of the sampled tokens included; nothing flows through the discrete draw itself).
    for g, expected in zip(gradients(sampling_probability=tf.constant(0.0), sampling_seed=1), teacher):
        np.testing.assert_allclose(g, expected, atol=1e-6)
    sampled = gradients(sampling_probability=tf.constant(1.0), sampling_seed=1)
    for variable, g, expected in zip(model.trainable_variables, sampled, teacher):
        assert np.all(np.isfinite(g)) and np.any(g != 0), variable.path
    assert not all(np.allclose(g, expected, atol=1e-4) for g, expected in zip(sampled, teacher))
    # The target embedding learns from exactly the tokens read: <bos>, then the model's own.
    _, read = run_scheduled_steps(model, source, target, 1.0, seed=1)
    index = [v.path for v in model.trainable_variables].index(model.target_embedding.embeddings.path)
    rows_learning = np.flatnonzero(np.abs(sampled[index]).sum(-1))
    np.testing.assert_array_equal(rows_learning, np.unique(read))


def test_scheduled_sampling_dropout_is_the_dropout_of_call():
    model = make("luong_bidirectional", dropout=0.5, cell_options={"dropout": 0.3, "recurrent_dropout": 0.2})
    source, target = data()
    seeds = [v for v in model.variables if "seed_generator" in v.path]
    assert seeds, "the model's dropout layers hold seed generators"
    start = [numpy(v) for v in seeds]

    def from_start(**kwargs):
        for variable, value in zip(seeds, start):
            variable.assign(value)
        return numpy(model((source, target), training=True, **kwargs))

    # From the same random state, probability 0 makes the same dropout draws as teacher forcing.
    teacher = from_start()
    np.testing.assert_allclose(from_start(sampling_probability=0.0, sampling_seed=2), teacher, atol=1e-6)
    assert not np.allclose(teacher, numpy(model((source, target))), atol=1e-3)  # dropout was on
    # Not while evaluating: then scheduled sampling is deterministic given its seed.
    evaluated = numpy(model((source, target), sampling_probability=0.7, sampling_seed=2))
    np.testing.assert_array_equal(numpy(model((source, target), sampling_probability=0.7, sampling_seed=2)),
                                  evaluated)
    assert not np.allclose(from_start(sampling_probability=0.7, sampling_seed=2), evaluated, atol=1e-3)


# The JAX pass runs this one only (eager JAX steps slowly): it compiles scheduled sampling there and checks it
# against eager JAX and teacher forcing.
@pytest.mark.jax
def test_scheduled_sampling_under_xla_equals_eager():
    model = make("bahdanau_copy")
    source, target = data()
    eager = numpy(model((source, target), sampling_probability=0.6, sampling_seed=np.array([1, 7], "int32")))
    specs = [((None, None), "int32"), ((None, None), "int32"), ((), "float32"), ((2,), "int32")]
    compiled = backend.xla_compiled(
        lambda s, t, p, seed: model((s, t), sampling_probability=p, sampling_seed=seed), model.variables, specs
    )
    np.testing.assert_allclose(compiled(source, target, np.float32(0.6), np.array([1, 7], "int32")), eager,
                               atol=1e-5)
    # The probability is a runtime value: 0 gives teacher forcing from the same compiled function.
    np.testing.assert_allclose(compiled(source, target, np.float32(0.0), np.array([1, 7], "int32")),
                               numpy(model((source, target))), atol=1e-5)


def test_scheduled_sampling_bad_arguments():
    model = make("plain_elman")
    source, target = data()
    with pytest.raises(ValueError, match=r"sampling_probability must be a number in \[0, 1\] or a float tensor, "
                                         r"got 1.5"):
        model((source, target), sampling_probability=1.5, sampling_seed=0)
    with pytest.raises(ValueError, match=r"scheduled sampling draws its numbers from sampling_seed: expected an int "
                                         r"or an int tensor of shape \[2\].*got None"):
        model((source, target), sampling_probability=0.5)


def reversal_data(count, seed, vocab=10, length=6):
    """A toy translation: the source is `length` random tokens in [3, vocab), the target the same tokens reversed,
    then <eos>. Returns (source, target_in, target_out)."""
    rng = np.random.default_rng(seed)
    source = rng.integers(3, vocab, size=(count, length)).astype("int32")
    target = source[:, ::-1]
    target_in = np.concatenate([np.full((count, 1), BOS), target], axis=1).astype("int32")
    target_out = np.concatenate([target, np.full((count, 1), EOS)], axis=1).astype("int32")
    return source, target_in, target_out


def test_learns_to_reverse_with_fit():
    keras.utils.set_random_seed(0)
    model = Seq2Seq(10, 10, cell="gru", units=32, embedding_dim=16, attention="luong", attention_layer_size=32)
    source, target_in, target_out = reversal_data(64 * 100, seed=0)  # 100 steps of 64
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit((source, target_in), target_out, batch_size=64, shuffle=False, verbose=0)
    source, _, target_out = reversal_data(200, seed=1)  # unseen sequences
    tokens = numpy(greedy(model, source, target_out.shape[1])["tokens"])
    # Chance is 1/7 per token. When this test was written (seed 0, 2-core CPU) the model reached 0.995 token accuracy
    # after 80 steps and 1.0 after 150, while the same model without attention reached 0.74 after 150: 0.95 leaves
    # room for numerical drift and fails a model whose attention, masking or teacher forcing is broken.
    assert (tokens == target_out).mean() > 0.95


@pytest.mark.parametrize("name", sorted(SEQ2SEQ_PRESETS))
def test_presets_are_registered_and_build(name):
    assert name in zoo.models.names()
    assert "source_vocab_size" not in SEQ2SEQ_PRESETS[name]
    model = zoo.models.get(name, source_vocab_size=SOURCE_VOCAB, target_vocab_size=TARGET_VOCAB)
    assert type(model) is Seq2Seq and model.attention == name.split("_")[1].replace("plain", "none")
    source, target = data()
    assert model((source, target)).shape == (4, 5, TARGET_VOCAB)
    assert zoo.models.get(name, source_vocab_size=5, target_vocab_size=6, units=8).units == 8


def test_bad_arguments():
    def build(**kwargs):
        return Seq2Seq(**{"source_vocab_size": SOURCE_VOCAB, "target_vocab_size": TARGET_VOCAB, **kwargs})

    neither_or_both = r"give source_vocab_size \(token ids in\) or source_dim \(feature vectors in\), not both"
    with pytest.raises(ValueError, match=neither_or_both + r".*got source_vocab_size=None, source_dim=None"):
        Seq2Seq(None, 5)
    with pytest.raises(ValueError, match=neither_or_both + r".*got source_vocab_size=5, source_dim=3"):
        Seq2Seq(5, 5, source_dim=3)
    with pytest.raises(ValueError, match=r"source_dim must be a positive int, got 0"):
        Seq2Seq(None, 5, source_dim=0)
    with pytest.raises(ValueError, match=r"target_vocab_size must be a positive int, got 0"):
        Seq2Seq(5, 0)
    with pytest.raises(ValueError, match=r"cell must be one of 'elman', 'jordan', 'leaky', 'lstm', 'gru', got 'rnn'"):
        build(cell="rnn")
    with pytest.raises(ValueError, match=r"attention must be one of 'none', 'bahdanau', 'luong', got 'dot'"):
        build(attention="dot")
    with pytest.raises(ValueError, match=r"attention='none' has no mechanism to configure.*attention_layer_size=4"):
        build(attention="none", attention_layer_size=4)
    with pytest.raises(ValueError, match=r"attention='none' has no mechanism.*input_feeding=True"):
        build(attention="none", input_feeding=True)
    with pytest.raises(ValueError, match=r"attention_options \{'score': 'dot'\} do not fit attention='bahdanau'"):
        build(attention="bahdanau", attention_options={"score": "dot"})
    with pytest.raises(ValueError, match=r"score must be one of 'dot', 'general', 'concat', got 'cosine'"):
        build(attention="luong", attention_options={"score": "cosine"})
    with pytest.raises(ValueError, match=r"bridge='copy' needs the encoder's final states to have the decoder cell's "
                                         r"state sizes \[5, 5\], got \[5, 5, 5, 5\] \(bidirectional=True\)"):
        build(units=5, bidirectional=True, bridge="copy")
    with pytest.raises(ValueError, match=r"bridge must be one of 'zeros', 'copy', 'dense', got 'mean'"):
        build(bridge="mean")
    with pytest.raises(ValueError, match=r"tie_embeddings needs the decoder's output size to equal embedding_dim, "
                                         r"got output size 8 \(attention_layer_size=8, units=5\) and embedding_dim=5"):
        build(units=5, attention_layer_size=8, tie_embeddings=True)
    with pytest.raises(ValueError, match=r"attention_layer_size must be a positive int, got 0"):
        build(attention_layer_size=0)
    with pytest.raises(ValueError, match=r"dropout must be a float in \[0, 1\), got 1.5"):
        build(dropout=1.5)
    with pytest.raises(ValueError, match=r"pad_id must be an int in \[0, vocab_size=9\), got 9"):
        build(pad_id=9)
    with pytest.raises(ValueError, match=r"LSTM got unknown argument\(s\) \['hops'\]"):
        build(cell_options={"hops": 3})


# Attention without input feeding: `call` runs the wrapped cell over the whole target, then every step's attention
# at once. Each of these must give what stepping the whole decoder cell gives.
PARALLEL = {
    "luong_dot": dict(cell="lstm", units=5, embedding_dim=4, attention="luong", attention_options={"score": "dot"},
                      attention_layer_size=4, input_feeding=False),
    "luong_general_scaled": dict(cell="gru", units=5, encoder_layers=2, bidirectional=True, embedding_dim=3,
                                 attention="luong", attention_options={"score": "general", "scale": True},
                                 attention_layer_size=6, input_feeding=False),
    "luong_concat_tied": CONFIGS["luong_concat_tied"],
    "bahdanau_bidirectional": dict(cell="lstm", units=5, bidirectional=True, embedding_dim=4, attention="bahdanau",
                                   attention_options={"units": 3}, attention_layer_size=4, input_feeding=False),
    "bahdanau_normalized_copy": dict(cell="gru", units=5, embedding_dim=3, attention="bahdanau",
                                     attention_options={"units": 3, "normalize": True}, attention_layer_size=5,
                                     input_feeding=False, bridge="copy"),
    # No attention layer: the output is h_t (the context would only be fed back).
    "bahdanau_no_attention_layer": dict(cell="elman", units=5, embedding_dim=3, attention="bahdanau",
                                        input_feeding=False, bridge="zeros"),
}


def make_parallel(name, seed=0, **overrides):
    model = Seq2Seq(SOURCE_VOCAB, TARGET_VOCAB, **{**PARALLEL[name], **overrides})
    model.build(((None, None), (None, None)))
    reference.randomize_weights(model, seed=seed, ranges=WEIGHT_RANGES)
    return model


def stepwise_call(model, source, target, training=False):
    """Teacher forcing through the stepwise decoder (`keras.layers.RNN` over the whole `decoder_cell`, what `call`
    runs with input feeding), with the dropout draws of `call` in the same order."""
    state = model._decoder_state(source, training)
    y = model.embedding_dropout(model.target_embedding(keras.ops.convert_to_tensor(target)), training=training)
    return model._logits(model.decoder(y, initial_state=state, training=training), training)


@pytest.mark.parametrize("name", sorted(PARALLEL))
def test_parallel_teacher_forcing_equals_the_stepwise_decoder(name):
    model = make_parallel(name)
    assert model._parallel_decoder is not None
    source, target = data()  # padded sources
    np.testing.assert_allclose(numpy(model((source, target))), numpy(stepwise_call(model, source, target)),
                               atol=1e-6)


@pytest.mark.parametrize("name", sorted(PARALLEL))
def test_parallel_teacher_forcing_gradients_equal_the_stepwise_decoder_s(name):
    backend.skip_unless_tensorflow("the gradient of a model's weights through tf.GradientTape")
    import tensorflow as tf

    model = make_parallel(name)
    source, target = data()
    target_out = np.roll(target, -1, axis=1)

    def gradients(call):
        with tf.GradientTape() as tape:
            logits = call()
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(target_out, logits, from_logits=True))
        return [g for g in tape.gradient(loss, model.trainable_variables)]

    parallel = gradients(lambda: model((source, target)))
    stepwise = gradients(lambda: stepwise_call(model, source, target))
    for variable, g, expected in zip(model.trainable_variables, parallel, stepwise):
        if expected is None:  # the attention of a decoder without attention layer nor input feeding reaches nothing
            assert g is None, variable.path
            continue
        np.testing.assert_allclose(numpy(g), numpy(expected), atol=1e-6, err_msg=variable.path)


def test_parallel_teacher_forcing_dropout_is_the_stepwise_decoder_s():
    model = make_parallel("bahdanau_bidirectional", dropout=0.5,
                          cell_options={"dropout": 0.3, "recurrent_dropout": 0.2})
    source, target = data()
    seeds = [v for v in model.variables if "seed_generator" in v.path]
    start = [numpy(v) for v in seeds]

    def from_start(call):
        for variable, value in zip(seeds, start):
            variable.assign(value)
        return numpy(call())

    parallel = from_start(lambda: model((source, target), training=True))
    np.testing.assert_allclose(parallel, from_start(lambda: stepwise_call(model, source, target, training=True)),
                               atol=1e-6)
    assert not np.allclose(parallel, numpy(model((source, target))), atol=1e-3)  # dropout was on
    # The cell's own dropout alone (the model's off) is drawn as the stepwise decoder draws it.
    model = make_parallel("luong_dot", cell_options={"dropout": 0.4, "recurrent_dropout": 0.4})
    seeds = [v for v in model.variables if "seed_generator" in v.path]
    start = [numpy(v) for v in seeds]
    parallel = from_start(lambda: model((source, target), training=True))
    np.testing.assert_allclose(parallel, from_start(lambda: stepwise_call(model, source, target, training=True)),
                               atol=1e-6)
    assert not np.allclose(parallel, numpy(model((source, target))), atol=1e-3)


@pytest.mark.jax
def test_parallel_teacher_forcing_under_xla_equals_the_stepwise_decoder():
    model = make_parallel("luong_general_scaled")
    source, target = data()
    specs = [((None, None), "int32"), ((None, None), "int32")]
    compiled = backend.xla_compiled(lambda s, t: model((s, t)), model.variables, specs)
    np.testing.assert_allclose(compiled(source, target), numpy(stepwise_call(model, source, target)), atol=1e-5)
