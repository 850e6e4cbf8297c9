"""The bAbI export: story and question strings in, the answer and the per-hop attention out, in both TensorFlow
loaders and through the server (REST and gRPC, batching on), equal to the Keras model's on the encoded examples."""

import os
import threading

import grpc
import httpx2 as httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import export
from tests.helpers.saved_model import assert_dense_signature_outputs
from tests.helpers.saved_model import load_with_session
from tests.serving.server.conftest import free_port
from tests.serving.server.conftest import make_server
from tests.training.tasks import runs
from training.data.babi import tokenize
from training.tasks.babi import story_text
from training.tasks.babi import tokenize_in_graph

# Twenty epochs of generated QA1 (300 training questions): a model sure of most answers (so that the argmax the export
# and the Keras model compute over differently padded inputs is no near-tie), about 10 s to train on 2 cores.
TINY = {"tasks": [1], "train_questions": 300, "test_questions": 40, "epochs": 20}
STORY = "Mary moved to the bathroom.\nJohn went to the hallway.\nMary travelled to the office."


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(task, config, model, path, loaded): a tiny run on generated QA1, exported, loaded with tf.saved_model.load."""
    task, config = runs.make_config("babi", "memn2n_small", **TINY)
    work = tmp_path_factory.mktemp("babi")
    trainer = runs.train_best(task, config, str(work / "run"))
    path = export.export(str(work / "run"), "babi", export_base=str(work / "saved"))
    return task, trainer.config, trainer.model, path, tf.saved_model.load(path)


def both_loaders(path, loaded, story, question):
    """[outputs of tf.saved_model.load, outputs of the TF1 session loader], as NumPy arrays."""
    story, question = np.array(story, dtype=object), np.array(question, dtype=object)
    eager = loaded.signatures["serving_default"](story=tf.constant(story), question=tf.constant(question))
    return [{name: value.numpy() for name, value in eager.items()},
            load_with_session(path, {"story": story, "question": question})]


def strings(values):
    return [value.decode("utf-8") for value in np.asarray(values).ravel()]


def keras_outputs(task, config, model, stories, questions):
    """(answers, probabilities, attention [N, hops, slots]) of the Keras model on token lists encoded with the
    training vocabulary (as `BabiData.encode` does: the last memory_size sentences, left-aligned)."""
    data = task.data(config)
    kept = [story[-config["memory_size"]:] for story in stories]
    slots = max(len(story) for story in kept)
    words = max(len(sentence) for story in kept for sentence in story)
    story_ids = np.zeros((len(stories), slots, words), np.int32)
    query_ids = np.zeros((len(stories), max(len(q) for q in questions)), np.int32)
    for row, (story, question) in enumerate(zip(kept, questions)):
        for slot, sentence in enumerate(story):
            story_ids[row, slot, :len(sentence)] = data.token_ids(sentence)
        query_ids[row, :len(question)] = data.token_ids(question)
    logits, attention = model.call_with_attention((story_ids, query_ids))
    logits = np.asarray(logits, np.float64)
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    best = probabilities.argmax(-1)
    return [data.vocabulary[i] for i in best], probabilities[np.arange(len(best)), best], np.asarray(attention)


def test_tokenisation_in_the_graph_is_the_readers():
    texts = ["Where is Mary?", "Mary moved to the bathroom.", "  JOHN   went\tback to the hallway . ", "",
             "It's 9:30, isn't it?!", "snake_case and CamelCase42", "Åsa flög till Örebro — 3½ mil.",
             "naïve café, 東京 x\u00a0y", "a\u2003b\u2028c"]
    found = tokenize_in_graph(tf.constant(texts)).to_list()
    assert [[token.decode("utf-8") for token in row] for row in found] == [tokenize(text) for text in texts]


@pytest.mark.slow
def test_answers_and_attention_are_the_keras_models_in_both_loaders(exported):
    task, config, model, path, loaded = exported
    assert sorted(os.listdir(os.path.join(path, "assets"))) == ["vocabulary.txt"]
    assert_dense_signature_outputs(path)
    examples = task.data(config).examples["test"][:24]
    stories, questions = [e.story for e in examples], [e.query for e in examples]
    answers, probabilities, attention = keras_outputs(task, config, model, stories, questions)
    memory_size, hops = config["memory_size"], model.hops
    for outputs in both_loaders(path, loaded, [story_text(s) for s in stories], [" ".join(q) for q in questions]):
        assert strings(outputs["answer"]) == answers
        assert np.mean([a == e.answer for a, e in zip(answers, examples)]) >= 0.5  # learnt (chance: 1/6, six places)
        np.testing.assert_allclose(outputs["probability"], probabilities, rtol=1e-4)
        assert outputs["attention"].shape == (len(examples), hops, memory_size)
        np.testing.assert_allclose(outputs["attention"][:, :, :attention.shape[2]], attention, atol=1e-5)
        np.testing.assert_array_equal(outputs["attention"][:, :, attention.shape[2]:], 0.0)
        np.testing.assert_array_equal(outputs["sentences"], [len(s) for s in stories])
        np.testing.assert_array_equal(outputs["dropped"], 0)
        assert outputs["memory"].shape == (len(examples), memory_size)
        for row, story in enumerate(stories):
            assert strings(outputs["memory"][row]) == [" ".join(s) for s in story] + [""] * (memory_size - len(story))
    # Once linear start is over (the config's small run ends it), each hop's attention is a softmax over the memory:
    # the kept sentences and the empty slots (`empty_memories`, scored 0, as the authors' memory of nil words), so
    # over the sentences it sums to at most 1 (1 less the empty slots' share).
    assert float(model.linear_start_switch.numpy()) == 0.0
    total = attention.sum(-1)
    assert np.all(total <= 1 + 1e-5) and np.all(total > 0), total
    # An empty batch gives empty outputs.
    empty = tf.constant([], tf.string)
    outputs = loaded.signatures["serving_default"](story=empty, question=empty)
    assert all(value.shape[0] == 0 for value in outputs.values()), outputs


@pytest.mark.slow
def test_text_as_people_write_it_reads_as_the_tokens(exported):
    # Capitals, \r\n, blank lines, extra spaces, no space before the full stop: the same sentences to the model.
    _, _, _, path, loaded = exported
    messy = "MARY moved to the bathroom .\r\n\r\n   john went  to the hallway.\n\nMary travelled to the office.\n  \n"
    clean, messy_outputs = both_loaders(path, loaded, [STORY, messy], ["Where is Mary?", "where is MARY ?"])
    for outputs in (clean, messy_outputs):
        assert strings(outputs["answer"][:1]) == strings(outputs["answer"][1:])
        np.testing.assert_allclose(outputs["attention"][0], outputs["attention"][1], atol=1e-6)
        np.testing.assert_array_equal(outputs["sentences"], [3, 3])
        assert strings(outputs["memory"][1, :3]) == ["MARY moved to the bathroom .", "john went  to the hallway.",
                                                     "Mary travelled to the office."]


@pytest.mark.slow
def test_long_stories_keep_their_last_sentences_and_any_sentence_length_reads(exported):
    task, config, model, path, loaded = exported
    memory_size = config["memory_size"]
    lines = [f"{name} went to the {place}." for name, place in zip(["Mary", "John", "Sandra", "Daniel"] * 14,
                                                                      ["garden", "office", "kitchen"] * 19)]
    lines = lines[: memory_size + 3]
    # A sentence longer than any of training's, with words the vocabulary lacks (<unk>).
    long = "Mary went back to the very big sunny bathroom of the old house near the river again."
    stories = [lines, lines[:5] + [long], ["Mary moved to the bathroom.", "Zorblax the unknown went to the garden."]]
    questions = ["Where is Mary?", "Where is Mary?", "Where is Zorblax?"]
    answers, probabilities, attention = keras_outputs(task, config, model, [[tokenize(s) for s in story]
                                                                            for story in stories],
                                                      [tokenize(q) for q in questions])
    for outputs in both_loaders(path, loaded, ["\n".join(story) for story in stories], questions):
        assert strings(outputs["answer"]) == answers
        np.testing.assert_allclose(outputs["probability"], probabilities, rtol=1e-4)
        np.testing.assert_allclose(outputs["attention"], attention, atol=1e-5)  # the first story fills the memory
        np.testing.assert_array_equal(outputs["sentences"], [memory_size, 6, 2])
        np.testing.assert_array_equal(outputs["dropped"], [3, 0, 0])
        assert strings(outputs["memory"][0]) == lines[3:]
    assert max(len(tokenize(long)), 1) > task.data(config).words


@pytest.mark.slow
@pytest.mark.parametrize("story, question, message", [
    ([STORY, ""], ["Where is Mary?", "Where is John?"], "story: every story needs at least one sentence"),
    ([" \n\r\n\t"], ["Where is Mary?"], "story: every story needs at least one sentence"),
    ([STORY], ["  "], "question: every question needs at least one token"),
    ([STORY, STORY], ["Where is Mary?"], "story and question need one value per row each"),
])
def test_bad_input_fails_with_invalid_argument_naming_the_input(exported, story, question, message):
    _, _, _, path, loaded = exported
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded.signatures["serving_default"](story=tf.constant(story), question=tf.constant(question))
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        load_with_session(path, {"story": np.array(story, dtype=object), "question": np.array(question, dtype=object)})


BATCHING = ("max_batch_size { value: 32 }\nbatch_timeout_micros { value: 200000 }\nnum_batch_threads { value: 1 }\n"
            "max_enqueued_batches { value: 100 }\n")


@pytest.mark.slow
def test_served_over_rest_and_grpc_with_batching(exported, tmp_path):
    task, config, model, path, loaded = exported
    base = os.path.dirname(os.path.dirname(path))
    parameters = tmp_path / "batching.config"
    parameters.write_text(BATCHING)
    server = make_server(model_config_file=os.path.join(base, export.CONFIG_FILE), rest_api_port=free_port(),
                         enable_batching=True, batching_parameters_file=str(parameters)).start()
    url = f"http://127.0.0.1:{server.rest_port}/v1/models/babi:predict"
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

    def grpc_predict(story, question):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "babi"
        request.inputs["story"].CopyFrom(tf.make_tensor_proto(np.array(story, dtype=object)))
        request.inputs["question"].CopyFrom(tf.make_tensor_proto(np.array(question, dtype=object)))
        response = stub.Predict(request, timeout=120)
        return {name: tf.make_ndarray(value) for name, value in response.outputs.items()}

    examples = task.data(config).examples["test"][:8]
    stories = [story_text(e.story) for e in examples]
    questions = [" ".join(e.query) for e in examples]
    answers, _, attention = keras_outputs(task, config, model, [e.story for e in examples],
                                          [e.query for e in examples])
    slots = attention.shape[2]
    try:
        rows = httpx.post(url, json={"instances": [{"story": s, "question": q} for s, q in zip(stories, questions)]},
                          timeout=120).json()["predictions"]
        assert [row["answer"] for row in rows] == answers
        np.testing.assert_allclose(np.array([row["attention"] for row in rows])[:, :, :slots], attention, atol=1e-5)
        assert [row["sentences"] for row in rows] == [len(e.story) for e in examples]
        by_grpc = grpc_predict(stories, questions)
        assert strings(by_grpc["answer"]) == answers
        np.testing.assert_allclose(by_grpc["attention"][:, :, :slots], attention, atol=1e-5)
        # An empty story: INVALID_ARGUMENT, naming the input.
        response = httpx.post(url, json={"instances": [{"story": "", "question": "Where is Mary?"}]}, timeout=120)
        assert response.status_code == 400 and "story: every story needs at least one sentence" in response.json()[
            "error"]
        with pytest.raises(grpc.RpcError) as raised:
            grpc_predict([STORY], [""])
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "question: every question needs at least one token" in raised.value.details()

        # Concurrent requests, half over REST and half over gRPC, batched together: each gets what it gets alone.
        before = processed_batches(server)
        found = [None] * len(examples)

        def call(index):
            if index % 2:
                row = httpx.post(url, json={"instances": [{"story": stories[index], "question": questions[index]}]},
                                 timeout=120).json()["predictions"][0]
                found[index] = (row["answer"], np.array(row["attention"]))
            else:
                outputs = grpc_predict([stories[index]], [questions[index]])
                found[index] = (strings(outputs["answer"])[0], outputs["attention"][0])

        threads = [threading.Thread(target=call, args=(i,)) for i in range(len(examples))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [answer for answer, _ in found] == answers
        np.testing.assert_allclose(np.stack([a for _, a in found])[:, :, :slots], attention, atol=1e-5)
        assert processed_batches(server) - before < len(examples), "concurrent requests were not batched"
    finally:
        channel.close()
        server.stop()


def processed_batches(server):
    page = server.metrics.exposition().decode()
    marker = ':tensorflow:serving:batching_session:processed_batch_size_count{model_name="babi"} '
    return float(page.split(marker)[1].split("\n")[0]) if marker in page else 0.0
