"""The export of a stream language model (config `bptt_steps` set): its texts read after `<eos>`, and `continue`,
which carries the model's state from one request into the next, in both TensorFlow loaders and through the server
(REST and gRPC).

The tests that export a model (10-30 s each on 2 cores) are slow."""

import os

import grpc
import httpx2 as httpx
import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import export
from tests.helpers.saved_model import assert_dense_signature_outputs
from tests.helpers.saved_model import load_with_session
from tests.serving.server.conftest import free_port
from tests.serving.server.conftest import make_server
from tests.training.tasks import runs
from training.tasks.language_model import state_widths

MAX_NEW = 4
PRESETS = ("lstm", "ffnn", "gcnn")  # float states; int windows that start as <pad>; int windows that start as -1
FIRST = ["", "a big", "some cats that", "zebra", "cats", "a"]
SECOND = ["a dog", "", "sleeps", "a", "zebra cats", "some"]


def two_word_model(task, config, seed=0):
    """The config's LM, untrained (seeded), whose output layer makes "dog" and <eos> its only choices, <eos> winning
    in about a tenth of the contexts: so some continuations end with <eos> and others run to max_new_tokens.

    The margin logit(<eos>) - logit(dog) of the untrained model varies little with the context (by 0.005 for the
    LSTM): the difference of the two output columns is scaled to make it vary by about 1, far above float error (the
    test compares greedy choices made in the graph and here), and the biases put 0 at its 90th percentile."""
    keras.utils.set_random_seed(seed)
    model = task.build_model(config)
    model(np.zeros((1, 1), "int32"))
    vocabulary = task.corpus(config).vocabulary
    dog, eos = vocabulary.tokens.index("dog"), vocabulary.eos_id
    contexts = np.random.default_rng(seed).integers(4, vocabulary.size, size=(50, 8))

    def margins():
        logits = keras.ops.convert_to_numpy(model(contexts))
        return (logits[..., eos] - logits[..., dog]).ravel()

    kernel = model.output_projection.kernel.numpy()
    bias = np.zeros(vocabulary.size, "float32")
    model.output_projection.bias.assign(bias)
    kernel[:, eos] = kernel[:, dog] + (kernel[:, eos] - kernel[:, dog]) / np.std(margins())
    model.output_projection.kernel.assign(kernel)
    bias[dog] = 8.0
    bias[eos] = 8.0 - np.percentile(margins(), 90)
    model.output_projection.bias.assign(bias)
    return model


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """preset -> (task, config, model, path, loaded): the stream-mode export of that preset's model (made once)."""
    made = {}

    def get(preset):
        if preset not in made:
            task, config = runs.make_config("language_model", preset, train_size=300, validation_size=20,
                                            test_size=20, max_new_tokens=MAX_NEW)
            config = {**config, "bptt_steps": 8}
            model = two_word_model(task, config)
            path = str(tmp_path_factory.mktemp(preset) / "1")
            export.write_saved_model(task, config, model, path)
            made[preset] = (task, config, model, path, tf.saved_model.load(path))
        return made[preset]

    return get


def token_ids(vocabulary, text):
    return [vocabulary.tokens.index(w) if w in vocabulary.tokens else vocabulary.unk_id for w in text.split()]


def encoded(model, state):
    """The state as `continue` carries it, computed here: each part minus its initial value, as float32, in order."""
    initial = model.initial_state(1)
    return np.concatenate([np.asarray(part, "float64") - np.asarray(start, "float64")
                           for part, start in zip(state, initial)], axis=1).astype("float32")


def stepped(model, state, fed, vocabulary, max_new=MAX_NEW):
    """Reads the tokens `fed` from `state` by stepping the Keras model eagerly, then continues greedily (never <pad>,
    <bos> or <unk>) until <eos> or `max_new` tokens, reading every generated token too: (tokens, log_probs,
    state after them all)."""
    banned = [vocabulary.pad_id, vocabulary.bos_id, vocabulary.unk_id]
    for token in fed:
        logits, state = model.step(np.array([token], "int32"), state)
    tokens, log_probs = [], []
    while len(tokens) < max_new and (not tokens or tokens[-1] != vocabulary.eos_id):
        row = np.asarray(logits[0], "float64")
        token = int(np.argmax(np.where(np.isin(np.arange(len(row)), banned), -np.inf, row)))
        tokens.append(token)
        log_probs.append(row[token] - row.max() - np.log(np.exp(row - row.max()).sum()))
        logits, state = model.step(np.array([token], "int32"), state)
    return tokens, log_probs, state


def words(vocabulary, tokens):
    return " ".join(vocabulary.tokens[t] for t in tokens if t != vocabulary.eos_id)


def call_continue(loaded, prompts, state):
    out = loaded.signatures["continue"](prompt=tf.constant(prompts), state=tf.constant(state, tf.float32))
    return {name: value.numpy() for name, value in out.items()}


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_continue_goes_on_with_the_text_its_state_holds(exports, preset):
    task, config, model, path, loaded = exports(preset)
    vocabulary = task.corpus(config).vocabulary
    state_size = loaded.signatures["continue"].structured_input_signature[1]["state"].shape[1]
    # A fresh text: zeros (for the window models too, whose initial windows are <pad> or -1).
    first = call_continue(loaded, FIRST, np.zeros((len(FIRST), state_size)))
    session = load_with_session(path, {"prompt": np.array(FIRST, object),
                                       "state": np.zeros((len(FIRST), state_size), "float32")}, "continue")
    second = call_continue(loaded, SECOND, first["state"])
    ended = []
    for row, (prompt_a, prompt_b) in enumerate(zip(FIRST, SECOND)):
        # The Keras model, stepped here from its own initial state: an empty prompt reads <eos>, others their words.
        fed_a = token_ids(vocabulary, prompt_a) or [vocabulary.eos_id]
        tokens_a, log_probs_a, state_a = stepped(model, model.initial_state(1), fed_a, vocabulary)
        fed_b = token_ids(vocabulary, prompt_b) or [vocabulary.eos_id]
        tokens_b, log_probs_b, state_b = stepped(model, state_a, fed_b, vocabulary)
        for out, tokens, log_probs, state in ((first, tokens_a, log_probs_a, state_a),
                                              (second, tokens_b, log_probs_b, state_b)):
            assert out["text"][row].decode() == words(vocabulary, tokens)
            assert out["lengths"][row] == len(tokens)
            np.testing.assert_allclose(out["log_probs"][row, : len(tokens)], log_probs, atol=1e-4)
            np.testing.assert_allclose(out["state"][row], encoded(model, state)[0], atol=1e-5)
        ended.append(tokens_a[-1] == vocabulary.eos_id)
        if ended[-1]:
            # The state after a generated <eos> holds it: it is not the state before it.
            _, _, before_eos = stepped(model, model.initial_state(1), fed_a + tokens_a[:-1], vocabulary, max_new=0)
            assert not np.allclose(first["state"][row], encoded(model, before_eos)[0], atol=1e-4)
    # The case has both kinds of rows: ended by <eos>, and cut at max_new_tokens.
    assert any(ended) and not all(ended), ended
    for name in ("text", "lengths", "state"):
        np.testing.assert_array_equal(np.asarray(session[name]), first[name])

    # One call over the whole text (with <eos> written as a word) gives what the two calls gave.
    whole = []
    for row, (prompt_a, prompt_b) in enumerate(zip(FIRST, SECOND)):
        parts = [prompt_a or "<eos>", first["text"][row].decode(), "<eos>" if ended[row] else "", prompt_b or "<eos>"]
        whole.append(" ".join(p for p in parts if p))
    at_once = call_continue(loaded, whole, np.zeros((len(whole), state_size)))
    assert at_once["text"].tolist() == second["text"].tolist()
    np.testing.assert_array_equal(at_once["lengths"], second["lengths"])
    np.testing.assert_allclose(at_once["state"], second["state"], atol=1e-6)


@pytest.mark.slow
def test_stream_texts_are_read_after_eos_and_only_stream_models_continue(exports, tmp_path):
    task, config, model, path, loaded = exports("lstm")
    vocabulary = task.corpus(config).vocabulary
    prompts = ["", "a big", "zebra"]
    greedy = loaded.signatures["serving_default"](prompt=tf.constant(prompts))
    for row, prompt in enumerate(prompts):
        fed = [vocabulary.eos_id] + token_ids(vocabulary, prompt)
        tokens, log_probs, _ = stepped(model, model.initial_state(1), fed, vocabulary)
        assert greedy["text"].numpy()[row].decode() == words(vocabulary, tokens)
        np.testing.assert_allclose(greedy["log_probs"].numpy()[row, : len(tokens)], log_probs, atol=1e-4)
    # From a fresh state, an empty prompt reads <eos> as serving_default does.
    fresh = call_continue(loaded, [""], np.zeros((1, loaded.signatures["continue"].structured_input_signature[1][
        "state"].shape[1])))
    assert fresh["text"].tolist() == greedy["text"].numpy()[:1].tolist()
    sentences = ["a big dog sleeps", ""]
    scored = loaded.signatures["score"](sentences=tf.constant(sentences))
    for row, sentence in enumerate(sentences):
        ids = [vocabulary.eos_id] + token_ids(vocabulary, sentence) + [vocabulary.eos_id]
        logits = model(np.array([ids[:-1]], "int32"))
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(np.array([ids[1:]]), logits).numpy().sum()
        assert scored["log_prob"].numpy()[row] == pytest.approx(-nll, abs=1e-4)
        assert scored["tokens"].numpy()[row] == len(ids) - 1
    assert_dense_signature_outputs(path)
    # A sentence model reads after <bos> and has no continue.
    sentence_path = str(tmp_path / "sentence")
    export.write_saved_model(task, {**config, "bptt_steps": None}, model, sentence_path)
    sentence_model = tf.saved_model.load(sentence_path)
    assert sorted(sentence_model.signatures) == ["sample", "score", "serving_default"]
    tokens, _, _ = stepped(model, model.initial_state(1), [vocabulary.bos_id], vocabulary)
    assert sentence_model.signatures["serving_default"](prompt=tf.constant([""]))["text"].numpy()[0].decode() == \
        words(vocabulary, tokens)


@pytest.mark.slow
def test_a_state_of_another_width_or_batch_is_invalid_argument(exports):
    _, config, _, path, loaded = exports("ffnn")
    state_size = loaded.signatures["continue"].structured_input_signature[1]["state"].shape[1]
    assert state_size == config["model_options"]["order"] - 1  # the window of the n-gram's context
    message = rf"state must be \[batch, state_size\] with state_size {state_size}, one row per prompt"
    for shape in ((2, state_size + 1), (1, state_size), (2, 0)):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            call_continue(loaded, ["a", "b"], np.zeros(shape))
    # As TF Serving runs it (C++ session, feeds not checked against the signature's shapes): the same error.
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        signature = tf.compat.v1.saved_model.loader.load(session, [tf.saved_model.SERVING], path).signature_def[
            "continue"]
        options = config_pb2.CallableOptions(feed=[signature.inputs["prompt"].name, signature.inputs["state"].name],
                                             fetch=[signature.outputs["state"].name])
        run = session._make_callable_from_options(options)
        assert run(np.array(["a", "b"], object), np.zeros((2, state_size), "float32"))[0].shape == (2, state_size)
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            run(np.array(["a", "b"], object), np.zeros((2, state_size + 1), "float32"))


@pytest.mark.slow
def test_continue_over_rest_and_grpc_with_the_state_passed_back(exports):
    _, _, _, path, loaded = exports("lstm")
    state_size = loaded.signatures["continue"].structured_input_signature[1]["state"].shape[1]
    base = os.path.dirname(path)
    server = make_server(model_name="lm", model_base_path=base, rest_api_port=free_port()).start()
    url = f"http://127.0.0.1:{server.rest_port}/v1/models/lm:predict"
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    first = call_continue(loaded, FIRST, np.zeros((len(FIRST), state_size)))
    second = call_continue(loaded, SECOND, first["state"])
    try:
        metadata = httpx.get(f"http://127.0.0.1:{server.rest_port}/v1/models/lm/metadata", timeout=60).json()
        inputs = metadata["metadata"]["signature_def"]["signature_def"]["continue"]["inputs"]
        assert [int(d["size"]) for d in inputs["state"]["tensor_shape"]["dim"]] == [-1, state_size]
        # REST: the state comes back as JSON floats and goes back as they are.
        rows = [{"prompt": p, "state": [0.0] * state_size} for p in FIRST]
        answer = httpx.post(url, json={"signature_name": "continue", "instances": rows}, timeout=120).json()
        answer = answer["predictions"]
        assert [row["text"] for row in answer] == [t.decode() for t in first["text"]]
        np.testing.assert_array_equal(np.array([row["state"] for row in answer], "float32"), first["state"])
        columns = {"prompt": SECOND, "state": [row["state"] for row in answer]}
        again = httpx.post(url, json={"signature_name": "continue", "inputs": columns}, timeout=120).json()["outputs"]
        assert again["text"] == [t.decode() for t in second["text"]]
        np.testing.assert_array_equal(np.array(again["state"], "float32"), second["state"])
        # gRPC, from the state REST returned.
        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = "lm", "continue"
        request.inputs["prompt"].CopyFrom(tf.make_tensor_proto(np.array(SECOND, object)))
        request.inputs["state"].CopyFrom(tf.make_tensor_proto(np.array(columns["state"], "float32")))
        response = stub.Predict(request, timeout=120)
        assert tf.make_ndarray(response.outputs["text"]).tolist() == second["text"].tolist()
        np.testing.assert_array_equal(tf.make_ndarray(response.outputs["state"]), second["state"])
        # A state of another width: INVALID_ARGUMENT, naming the width expected.
        bad = httpx.post(url, json={"signature_name": "continue", "inputs": {
            "prompt": ["a"], "state": [[0.0] * (state_size - 1)]}}, timeout=120)
        assert bad.status_code == 400 and f"expects [?,{state_size}]" in bad.json()["error"], bad.text
        request.inputs["state"].CopyFrom(tf.make_tensor_proto(np.zeros((len(SECOND), state_size + 2), "float32")))
        with pytest.raises(grpc.RpcError) as raised:
            stub.Predict(request, timeout=120)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"expects [?,{state_size}]" in raised.value.details()
    finally:
        channel.close()
        server.stop()


class Fixed:
    """A stand-in for a model, whose initial state is `parts`."""

    def __init__(self, *parts):
        self.parts = parts

    def initial_state(self, batch_size):
        return tuple(np.repeat(part[None], batch_size, axis=0) for part in self.parts)


def test_only_states_that_float32_carries_exactly_are_exported():
    assert state_widths(Fixed(np.zeros(3, "float32"), np.full(2, -1, "int32")), vocab_size=10) == [3, 2]
    with pytest.raises(ValueError, match="^continue carries float states exactly only from a zero initial state; "
                                         "part 1 of Fixed's initial_state is not zeros$"):
        state_widths(Fixed(np.zeros(3, "float32"), np.ones(2, "float32")), vocab_size=10)
    with pytest.raises(ValueError, match="exact up to 2\\^24; the vocabulary has 16777217 tokens$"):
        state_widths(Fixed(np.zeros(2, "int32")), vocab_size=2**24 + 1)
    with pytest.raises(ValueError, match="part 0 of Fixed's initial_state has shape \\(1, 2, 2\\)$"):
        state_widths(Fixed(np.zeros((2, 2), "float32")), vocab_size=10)
    with pytest.raises(ValueError, match="part 0 of Fixed's initial_state is string$"):
        state_widths(Fixed(np.array(["a"])), vocab_size=10)
