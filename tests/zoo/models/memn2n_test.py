import keras
import numpy as np
import pytest

import zoo.models
from tests.helpers import backend
from tests.helpers import reference
from tests.helpers import saved_model
from tests.helpers import serialization
from zoo.models.memn2n.memn2n import MemN2N
from zoo.models.memn2n.memn2n_presets import MEMN2N_PRESETS

VOCAB, MEMORY, DIM = 13, 6, 5


def inputs(batch=3, slots=MEMORY, words=4, seed=0):
    """A story with padding words at the ends of sentences, an empty slot in the middle and trailing empty slots."""
    rng = np.random.default_rng(seed)
    story = rng.integers(1, VOCAB, (batch, slots, words))
    lengths = rng.integers(1, words + 1, (batch, slots))
    story[np.arange(words) >= lengths[..., None]] = 0
    story[:, 1] = 0  # an empty slot among the sentences
    story[0, slots - 2 :] = 0  # a shorter story
    query = rng.integers(1, VOCAB, (batch, words))
    query[:, words - 1] = 0
    return story.astype("int32"), query.astype("int32")


def make(seed=0, **config):
    model = MemN2N(**{"vocab_size": VOCAB, "memory_size": MEMORY, "embedding_dim": DIM, **config})
    model.build()
    switch = keras.ops.convert_to_numpy(model.linear_start_switch)  # the constructor's `linear_start`
    # Random weights: N(0, 0.5) keeps the softmaxes far from uniform.
    reference.randomize_weights(model, seed=seed)
    model.linear_start_switch.assign(switch)
    return model


def numpy_forward(model, story, query, linear=None):
    """The paper's equations (§2, §4.1) in NumPy, from the model's weights: (logits, attention [batch, hops, M]).

    `linear`: whether the softmaxes are removed (linear start); `None` takes the model's `linear_start` argument.
    """
    w = {v.path.split("/", 1)[1]: keras.ops.convert_to_numpy(v).astype(np.float64) for v in model.weights}
    d, hops = model.embedding_dim, model.hops

    def encode(E, sentence):  # Σ_j l_j · E x_j over the words of one sentence
        words = [x for x in sentence if x != 0]
        J = len(words)
        total = np.zeros(d)
        for j, x in enumerate(words, start=1):
            if model.encoding == "position":
                l = np.array([(1 - j / J) - (k / d) * (1 - 2 * j / J) for k in range(1, d + 1)])
            else:
                l = np.ones(d)
            total += l * E[x]
        return total

    if model.tying == "adjacent":
        E = [w[f"embedding_{k}/embeddings"] for k in range(hops + 1)]
        A, C, B, W = E[:-1], E[1:], E[0], E[-1].T
        T = [w[f"temporal_{k}/temporal"] for k in range(hops + 1)] if model.temporal_encoding else None
        TA, TC = (T[:-1], T[1:]) if T else (None, None)
    else:
        A = [w["memory_embedding/embeddings"]] * hops
        C = [w["output_embedding/embeddings"]] * hops
        B, W = w["query_embedding/embeddings"], w["answer/kernel"]
        if model.temporal_encoding:
            TA, TC = [w["temporal_a/temporal"]] * hops, [w["temporal_c/temporal"]] * hops
        else:
            TA = TC = None
    H = w.get("hop_map/kernel")
    linear = model.linear_start if linear is None else linear

    batch, slots, _ = story.shape
    logits, attention = [], []
    for b in range(batch):
        valid = [i for i in range(slots) if np.any(story[b, i] != 0)]
        last = max(valid)
        u = encode(B, query[b])
        rows = []
        for k in range(hops):
            m = {i: encode(A[k], story[b, i]) + (TA[k][last - i] if TA else 0) for i in valid}
            c = {i: encode(C[k], story[b, i]) + (TC[k][last - i] if TC else 0) for i in valid}
            scores = np.array([u @ m[i] for i in valid])
            # With empty memories, each of the memory_size - n empty slots adds exp(0) = 1 to the softmax's sum.
            empty = model.memory_size - len(valid) if model.empty_memories else 0
            p_valid = scores if linear else np.exp(scores) / (np.exp(scores).sum() + empty)
            p = np.zeros(slots)
            p[valid] = p_valid
            o = sum(p[i] * c[i] for i in valid)
            u = (u if H is None else u @ H) + o
            rows.append(p)
        logits.append(u @ W)
        attention.append(rows)
    return np.array(logits), np.array(attention)


CONFIGS = {
    "1hop_adjacent_position_temporal": {"hops": 1},
    "3hops_adjacent_position_temporal": {"hops": 3},
    "3hops_adjacent_bow_no_temporal": {"hops": 3, "encoding": "bow", "temporal_encoding": False},
    "3hops_adjacent_linear_start": {"hops": 3, "linear_start": True},
    "1hop_layer_wise_bow": {"hops": 1, "tying": "layer_wise", "encoding": "bow"},
    "3hops_layer_wise_position_temporal_hop_map": {"hops": 3, "tying": "layer_wise", "hop_map": True},
    "3hops_layer_wise_linear_start_no_temporal": {
        "hops": 3, "tying": "layer_wise", "temporal_encoding": False, "linear_start": True,
    },
    "3hops_adjacent_empty_memories": {"hops": 3, "empty_memories": True},
    "2hops_layer_wise_empty_memories_linear_start": {
        "hops": 2, "tying": "layer_wise", "empty_memories": True, "linear_start": True,
    },
}


@pytest.mark.jax
@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_numpy_reference(config):
    model = make(**config)
    story, query = inputs()
    expected_logits, expected_attention = numpy_forward(model, story, query)
    logits, attention = model.call_with_attention((story, query))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(logits), expected_logits, atol=1e-4, rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(attention), expected_attention, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model((story, query))), expected_logits, atol=1e-4, rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.attention((story, query))), expected_attention,
                               atol=1e-5, rtol=1e-5)


@pytest.mark.jax
def test_linear_start_switch_toggles_the_softmax_at_run_time():
    model = make(hops=2)
    story, query = inputs()
    call = backend.xla_compiled(lambda s, q: model.attention((s, q)), model.weights)
    softmax = call(story, query)
    np.testing.assert_allclose(softmax.sum(-1), 1.0, atol=1e-5)  # each hop's p sums to one
    model.set_linear_start(True)
    np.testing.assert_allclose(call(story, query), numpy_forward(model, story, query, linear=True)[1], atol=1e-5)
    model.set_linear_start(False)
    np.testing.assert_allclose(call(story, query), softmax, atol=1e-6)


def test_weight_counts_per_tying():
    V, d, M, K = VOCAB, DIM, MEMORY, 3
    adjacent = make(hops=K)
    assert {v.path.split("/", 1)[1]: tuple(v.shape) for v in adjacent.trainable_weights} == {
        **{f"embedding_{k}/embeddings": (V, d) for k in range(K + 1)},
        **{f"temporal_{k}/temporal": (M, d) for k in range(K + 1)},
    }
    assert adjacent.count_params() == (K + 1) * (V * d + M * d) + 1  # + the linear-start switch
    layer_wise = make(hops=K, tying="layer_wise", hop_map=True)
    assert {v.path.split("/", 1)[1]: tuple(v.shape) for v in layer_wise.trainable_weights} == {
        "memory_embedding/embeddings": (V, d), "output_embedding/embeddings": (V, d),
        "query_embedding/embeddings": (V, d), "answer/kernel": (d, V), "temporal_a/temporal": (M, d),
        "temporal_c/temporal": (M, d), "hop_map/kernel": (d, d),
    }
    assert len(make(hops=K, temporal_encoding=False).trainable_weights) == K + 1
    assert [v.name for v in adjacent.non_trainable_weights] == ["linear_start_switch"]


def test_initialisation_is_the_papers_normal():
    model = MemN2N(vocab_size=400, memory_size=50, embedding_dim=50)
    model.build()
    values = np.concatenate([keras.ops.convert_to_numpy(v).ravel() for v in model.trainable_weights])
    assert abs(values.mean()) < 0.01 and abs(values.std() - 0.1) < 0.005  # N(0, 0.1), 85k samples


@pytest.mark.jax
@pytest.mark.parametrize("empty_memories", [False, True])
def test_padding_never_changes_a_result(empty_memories):
    model = make(hops=3, empty_memories=empty_memories)
    story, query = inputs(slots=MEMORY - 2)
    logits, attention = (keras.ops.convert_to_numpy(y) for y in model.call_with_attention((story, query)))
    # More padding words in every sentence and in the query, trailing empty slots, and garbage ids behind
    # the padding words never reach the result (the empty slot in the middle stays: it is a time step).
    padded_story = np.concatenate([story, np.zeros_like(story[..., :2])], axis=-1)
    padded_story = np.concatenate([padded_story, np.zeros_like(padded_story[:, :2])], axis=1)
    padded_query = np.concatenate([query, np.zeros_like(query[:, :3])], axis=-1)
    logits2, attention2 = (
        keras.ops.convert_to_numpy(y) for y in model.call_with_attention((padded_story, padded_query))
    )
    np.testing.assert_allclose(logits2, logits, atol=1e-5)
    np.testing.assert_allclose(attention2[..., : MEMORY - 2], attention, atol=1e-6)
    assert np.all(attention2[..., MEMORY - 2 :] == 0) and np.all(attention2[:, :, 1] == 0)  # empty slots


def test_too_long_story_and_bad_arguments_are_errors():
    with pytest.raises(ValueError, match="memory_size=6"):
        make()((np.ones((1, MEMORY + 1, 3), "int32"), np.ones((1, 3), "int32")))
    with pytest.raises(ValueError, match="tying must be one of 'adjacent', 'layer_wise', got 'none'"):
        MemN2N(VOCAB, tying="none")
    with pytest.raises(ValueError, match="encoding must be one of"):
        MemN2N(VOCAB, encoding="lstm")
    with pytest.raises(ValueError, match="hops must be a positive int, got 0"):
        MemN2N(VOCAB, hops=0)
    with pytest.raises(ValueError, match="initializer_stddev must be a positive float, got -1"):
        MemN2N(VOCAB, initializer_stddev=-1)


def test_presets():
    assert {"memn2n_babi", "memn2n_babi_joint"} <= set(zoo.models.names())
    model = zoo.models.get("memn2n_babi", vocab_size=VOCAB)
    # The paper's single-task recipe (§4.1, config_babi.m).
    assert (model.hops, model.embedding_dim, model.memory_size, model.encoding, model.temporal_encoding,
            model.tying, model.initializer_stddev) == (3, 20, 50, "position", True, "adjacent", 0.1)
    assert zoo.models.get("memn2n_babi_joint", vocab_size=VOCAB).embedding_dim == 50
    # The authors' code: a softmax over the whole memory, its empty slots included (Memory.m).
    assert model.empty_memories and zoo.models.get("memn2n_babi_joint", vocab_size=VOCAB).empty_memories
    assert all("vocab_size" not in preset for preset in MEMN2N_PRESETS.values())


def test_config_and_keras_file_round_trip(tmp_path):
    model = make(hops=2, tying="layer_wise", hop_map=True, encoding="bow", empty_memories=True)
    model.set_linear_start(True)
    serialization.assert_config_round_trip(model)
    story, query = inputs()
    loaded = serialization.assert_keras_file_round_trip(model, (story, query), str(tmp_path / "memn2n.keras"))
    assert keras.ops.convert_to_numpy(loaded.linear_start_switch) == 1.0  # the switch is saved with the weights
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded.attention((story, query))),
        keras.ops.convert_to_numpy(model.attention((story, query))), atol=1e-6,
    )


def test_saved_model_round_trip(tmp_path):
    model = make(hops=3)
    # Named specs: the signature's inputs are called "story" and "query"; memory size and lengths stay free.
    spec = [[keras.InputSpec(shape=(None, None, None), dtype="int32", name="story"),
             keras.InputSpec(shape=(None, None), dtype="int32", name="query")]]
    batches = [list(inputs(batch=2, slots=MEMORY, words=4)), list(inputs(batch=3, slots=4, words=6, seed=1))]
    saved_model.assert_saved_model_round_trip(model, batches, str(tmp_path / "memn2n"), input_signature=spec)


@pytest.mark.jax
def test_jit_compile_equals_eager():
    model = make(hops=3)
    story, query = inputs()
    compiled = backend.xla_compiled(lambda s, q: model.call_with_attention((s, q)), model.weights)
    for actual, expected in zip(compiled(story, query), model.call_with_attention((story, query))):
        np.testing.assert_allclose(actual, keras.ops.convert_to_numpy(expected), atol=1e-5)


def which_sentence(count, seed, memory=5, people=4, places=5):
    """Tiny QA1: each sentence is "<person> <place>"; the question "<person>" asks where that person is last seen.

    Ids: 1..people are people, people+1..people+places are places.
    """
    rng = np.random.default_rng(seed)
    story = np.zeros((count, memory, 2), "int32")
    story[..., 0] = rng.integers(1, people + 1, (count, memory))
    story[..., 1] = rng.integers(people + 1, people + places + 1, (count, memory))
    asked = story[np.arange(count), rng.integers(0, memory, count), 0]
    answer = np.array([s[np.nonzero(s[:, 0] == a)[0][-1], 1] for s, a in zip(story, asked)], "int32")
    return story, asked[:, None].astype("int32"), answer


def test_learns_which_sentence_holds_the_answer():
    keras.utils.set_random_seed(0)
    story, query, answer = which_sentence(512, seed=0)
    model = MemN2N(vocab_size=10, memory_size=5, embedding_dim=20, hops=2)
    model.compile(optimizer=keras.optimizers.Adam(0.02),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit((story, query), answer, batch_size=32, epochs=15, verbose=0).history
    test_story, test_query, test_answer = which_sentence(256, seed=1)
    accuracy = np.mean(np.argmax(keras.ops.convert_to_numpy(model((test_story, test_query))), -1) == test_answer)
    # Chance is 1/5 (the places) and the loss starts at log(10) = 2.3; the temporal encoding is what tells the last
    # sighting from earlier ones, so a model that reads the memory at all gets far above chance.
    assert history["loss"][-1] < 0.5 * history["loss"][0], history["loss"]
    assert accuracy > 0.8, accuracy
