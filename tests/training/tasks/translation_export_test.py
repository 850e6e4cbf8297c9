"""The translation export: strings in and strings out in both TensorFlow loaders and through the server (REST and
gRPC, batching on), with the translations `TranslationTask.translate` gives."""

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

# 60 steps of 64 pairs: a model that writes date-like strings without having learnt the task, so that beam search and
# greedy decoding often disagree (what the per-row beam sizes must show). About 10 s to train and export on 2 cores.
TINY = {"train_size": 2000, "validation_size": 32, "test_size": 64, "steps": 60}
# A source longer than max_length (64) characters, one with characters the vocabulary lacks, and an empty one.
LONG = "Wednesday, 25 November 2026 " * 4
ODD = ["", LONG, "日本 2026/11/25"]


def make_config(preset="dates", **overrides):
    return runs.make_config("translation", preset, **overrides)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(task, config, trainer, path, loaded): a tiny dates run, exported, loaded with tf.saved_model.load (about 30 s
    on 2 busy cores: the tests that use it are slow)."""
    task, config = make_config(**TINY)
    work = tmp_path_factory.mktemp("translation")
    trainer = runs.train_best(task, config, str(work / "run"))
    path = export.export(str(work / "run"), "dates", export_base=str(work / "saved"))
    return task, trainer.config, trainer, path, tf.saved_model.load(path)


def sources(task, config, count=16):
    return task.corpus(config).lines["test"][0][:count] + ODD


def strings(values):
    return [value.decode("utf-8") for value in np.asarray(values).ravel()]


def both_loaders(path, loaded, signature, inputs):
    """[outputs of tf.saved_model.load, outputs of the TF1 session loader], as NumPy arrays."""
    arrays = {name: np.array(value, dtype=object) if name == "source" else np.asarray(value)
              for name, value in inputs.items()}
    eager = loaded.signatures[signature](**{name: tf.constant(value) for name, value in arrays.items()})
    return [{name: value.numpy() for name, value in eager.items()}, load_with_session(path, arrays, signature)]


@pytest.mark.slow
def test_serving_default_gives_translates_beam_search_in_both_loaders(exported):
    task, config, trainer, path, loaded = exported
    assert sorted(os.listdir(os.path.join(path, "assets"))) == ["source_vocabulary.txt", "target_vocabulary.txt"]
    assert_dense_signature_outputs(path)
    batch = sources(task, config)
    expected = task.translate(config, trainer.model, batch, "beam")
    for outputs in both_loaders(path, loaded, "serving_default", {"source": batch}):
        assert strings(outputs["translation"]) == expected
        assert outputs["score"].shape == outputs["log_prob"].shape == outputs["length"].shape == (len(batch),)
        assert (outputs["length"] >= 1).all() and (outputs["length"] <= config["decode_length"]).all()
        np.testing.assert_allclose(outputs["score"], outputs["log_prob"])  # length_penalty 0: the log-probability
        assert (outputs["log_prob"] < 0).all()
    # An empty batch gives empty outputs, in every signature.
    for signature, extra in (("serving_default", {}), ("nbest", {}),
                             ("translate", {"beam_size": tf.zeros([0], tf.int32),
                                            "max_length": tf.zeros([0], tf.int32)})):
        outputs = loaded.signatures[signature](source=tf.constant([], tf.string), **extra)
        assert all(value.shape[0] == 0 for value in outputs.values()), (signature, outputs)


@pytest.mark.slow
def test_per_row_beam_size_and_max_length_take_effect_row_by_row(exported):
    task, config, trainer, path, loaded = exported
    batch = sources(task, config)
    count = len(batch)
    beams = np.array([1, 4, 2, 3] * (count // 4) + [1, 4, 2, 3][: count % 4], np.int32)
    lengths = np.array([config["decode_length"]] * (count - 4) + [3, 5, 1, 12], np.int32)
    expected = []
    for source, beam, length in zip(batch, beams, lengths):
        settings = {**config, "beam_size": int(beam), "decode_length": int(length)}
        expected.append(task.translate(settings, trainer.model, [source], "beam")[0])
    inputs = {"source": batch, "beam_size": beams, "max_length": lengths}
    for outputs in both_loaders(path, loaded, "translate", inputs):
        assert strings(outputs["translation"]) == expected
        assert (outputs["length"] <= lengths).all()
    # Beam 1 is greedy decoding; the tiny model's greedy and beam-4 translations differ on some sources (else the
    # per-row beam sizes above would show nothing).
    function = loaded.signatures["translate"]

    def translate(rows, beam, length=config["decode_length"]):
        count = len(rows)
        found = function(source=tf.constant(rows), beam_size=tf.fill([count], beam),
                         max_length=tf.fill([count], length))
        return strings(found["translation"])

    greedy = translate(batch, 1)
    assert greedy == task.translate(config, trainer.model, batch, "greedy")
    assert translate(batch, 4) == task.translate(config, trainer.model, batch, "beam")
    assert greedy != translate(batch, 4)
    # A row's translation does not depend on the rows batched with it.
    together = strings(function(source=tf.constant(batch), beam_size=tf.constant(beams),
                                max_length=tf.constant(lengths))["translation"])
    alone = [strings(function(source=tf.constant([s]), beam_size=tf.constant([b]),
                              max_length=tf.constant([m]))["translation"])[0]
             for s, b, m in zip(batch, beams, lengths)]
    reversed_batch = strings(function(source=tf.constant(batch[::-1]), beam_size=tf.constant(beams[::-1]),
                                      max_length=tf.constant(lengths[::-1]))["translation"])[::-1]
    assert together == alone == reversed_batch == expected
    assert all(len(t) <= 3 for t in translate(batch, 4, 3))


@pytest.mark.slow
def test_nbest_lists_the_beam_with_its_alignments(exported):
    task, config, trainer, path, loaded = exported
    batch = sources(task, config, 6)
    k, t = config["beam_size"], config["decode_length"]
    best = loaded.signatures["serving_default"](source=tf.constant(batch))
    tokenized = [list(s)[: config["max_length"]] for s in batch]  # characters in
    width = max(len(tokens) for tokens in tokenized)
    for outputs in both_loaders(path, loaded, "nbest", {"source": batch}):
        assert set(outputs) == {"translations", "scores", "log_probs", "lengths", "output_tokens", "source_tokens",
                                "alignments"}
        assert outputs["translations"].shape == outputs["scores"].shape == outputs["lengths"].shape == (len(batch), k)
        assert outputs["output_tokens"].shape == (len(batch), k, t)
        assert outputs["source_tokens"].shape == (len(batch), width)
        assert outputs["alignments"].shape == (len(batch), k, t, width)
        # The first hypothesis is serving_default's translation; the list is sorted by score.
        assert strings(outputs["translations"][:, 0]) == strings(best["translation"])
        np.testing.assert_allclose(outputs["scores"][:, 0], best["score"].numpy(), rtol=1e-6)
        np.testing.assert_array_equal(outputs["lengths"][:, 0], best["length"].numpy())
        assert (np.diff(outputs["scores"], axis=1) <= 0).all()
        for row, tokens in enumerate(tokenized):
            assert strings(outputs["source_tokens"][row]) == tokens + [""] * (width - len(tokens))
            real = np.arange(width) < len(tokens)
            for beam in range(k):
                length = outputs["lengths"][row, beam]
                written = strings(outputs["output_tokens"][row, beam])
                assert all(written[:length]) and not any(written[length:])
                text = "".join(token for token in written[:length] if token != "<eos>")
                assert text == strings(outputs["translations"][row, beam])[0]
                matrix = outputs["alignments"][row, beam]
                # Each written token's attention is a distribution over the real source positions; nothing after.
                if real.any():
                    np.testing.assert_allclose(matrix[:length][:, real].sum(axis=1), 1.0, atol=1e-5)
                np.testing.assert_array_equal(matrix[:, ~real], 0.0)
                np.testing.assert_array_equal(matrix[length:], 0.0)


@pytest.mark.slow
@pytest.mark.parametrize("inputs, message", [
    ({"beam_size": [0, 4]}, r"beam_size must be in \[1, 4\]"),
    ({"beam_size": [5, 4]}, r"beam_size must be in \[1, 4\]"),
    ({"max_length": [12, 0]}, r"max_length must be in \[1, 12\]"),
    ({"max_length": [13, 12]}, r"max_length must be in \[1, 12\]"),
    ({"beam_size": [4]}, "beam_size needs one value per source"),
    ({"max_length": [4, 4, 4]}, "max_length needs one value per source"),
])
def test_out_of_range_settings_fail_with_invalid_argument_naming_them(exported, inputs, message):
    _, _, _, path, loaded = exported
    arguments = {"source": np.array(["25.11.2026", "nov 25 '26"], dtype=object),
                 "beam_size": np.array([4, 1], np.int32), "max_length": np.array([12, 12], np.int32)}
    arguments.update({name: np.array(value, np.int32) for name, value in inputs.items()})
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded.signatures["translate"](**{name: tf.constant(value) for name, value in arguments.items()})
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        load_with_session(path, arguments, "translate")


def biased_model(task, config, token_ids, bias=20.0):
    """The config's model, untrained, with an output bias that puts nearly all the mass on `token_ids`."""
    model = task.build_model(config)
    model((np.ones((1, 3), "int32"), np.ones((1, 2), "int32")))
    weights = np.zeros(task.corpus(config).target.vocabulary.size, "float32")
    weights[list(token_ids)] = bias
    model.output_projection.bias.assign(weights)
    return model


def test_without_attention_nbest_has_no_alignments(tmp_path):
    task, config = make_config("dates_plain", train_size=200, validation_size=20, test_size=20)
    model = task.build_model(config)
    model((np.ones((1, 3), "int32"), np.ones((1, 2), "int32")))
    path = str(tmp_path / "plain")
    export.write_saved_model(task, config, model, path)
    batch = task.corpus(config).lines["test"][0][:3]
    outputs = tf.saved_model.load(path).signatures["nbest"](source=tf.constant(batch))
    assert set(outputs) == {"translations", "scores", "log_probs", "lengths", "output_tokens", "source_tokens"}
    assert strings(outputs["translations"][:, 0]) == task.translate(config, model, batch, "beam")


@pytest.mark.slow
def test_unk_is_written_only_when_allowed_here_and_in_translate(tmp_path):
    # A model that prefers <unk>, <pad> and <bos> to every real token by far: greedy and beam would write them.
    task, config = make_config(train_size=200, validation_size=20, test_size=20, decode_length=4)
    vocabulary = task.corpus(config).target.vocabulary
    model = biased_model(task, config, [vocabulary.unk_id, vocabulary.pad_id, vocabulary.bos_id])
    batch = task.corpus(config).lines["test"][0][:3]
    for allow_unk in (False, True):
        settings = {**config, "allow_unk": allow_unk}
        path = str(tmp_path / f"allow_unk_{allow_unk}")
        export.write_saved_model(task, settings, model, path)
        loaded = tf.saved_model.load(path)
        translations = strings(loaded.signatures["serving_default"](source=tf.constant(batch))["translation"])
        tokens = strings(loaded.signatures["nbest"](source=tf.constant(batch))["output_tokens"])
        assert translations == task.translate(settings, model, batch, "beam")
        assert not {"<pad>", "<bos>"} & set(tokens)
        if allow_unk:
            assert translations == ["<unk>" * 4] * 3 and "<unk>" in tokens
        else:
            assert "<unk>" not in tokens and "<unk>" not in "".join(translations)
    with pytest.raises(ValueError, match="^allow_unk must be True or False, got 'yes'$"):
        task.check_config({**config, "allow_unk": "yes"})


BATCHING = ("max_batch_size { value: 32 }\nbatch_timeout_micros { value: 200000 }\nnum_batch_threads { value: 1 }\n"
            "max_enqueued_batches { value: 100 }\n")


@pytest.mark.slow
def test_served_over_rest_and_grpc_with_batching(exported, tmp_path):
    task, config, trainer, path, loaded = exported
    base = os.path.dirname(os.path.dirname(path))
    parameters = tmp_path / "batching.config"
    parameters.write_text(BATCHING)
    server = make_server(model_config_file=os.path.join(base, export.CONFIG_FILE), rest_api_port=free_port(),
                         enable_batching=True, batching_parameters_file=str(parameters)).start()
    url = f"http://127.0.0.1:{server.rest_port}/v1/models/dates:predict"
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

    def grpc_predict(inputs, signature="serving_default"):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "dates"
        request.model_spec.signature_name = signature
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        response = stub.Predict(request, timeout=120)
        return {name: tf.make_ndarray(value) for name, value in response.outputs.items()}

    batch = sources(task, config, 8)
    beams = [1, 4, 2, 3, 1, 4, 2, 3, 4, 1, 2]
    lengths = [12] * 8 + [3, 12, 5]
    best = task.translate(config, trainer.model, batch, "beam")
    try:
        # REST, the row format and the columnar one; gRPC Predict.
        rows = httpx.post(url, json={"instances": batch}, timeout=120).json()["predictions"]
        assert [row["translation"] for row in rows] == best
        columns = httpx.post(url, json={"signature_name": "translate", "inputs": {
            "source": batch, "beam_size": beams, "max_length": lengths}}, timeout=120).json()["outputs"]
        by_grpc = grpc_predict({"source": np.array(batch, dtype=object), "beam_size": np.array(beams, np.int32),
                                "max_length": np.array(lengths, np.int32)}, "translate")
        expected = [task.translate({**config, "beam_size": b, "decode_length": m}, trainer.model, [s], "beam")[0]
                    for s, b, m in zip(batch, beams, lengths)]
        assert columns["translation"] == strings(by_grpc["translation"]) == expected
        nbest = httpx.post(url, json={"signature_name": "nbest", "instances": batch[:2]}, timeout=120).json()
        assert [row["translations"][0] for row in nbest["predictions"]] == best[:2]
        assert np.asarray(nbest["predictions"][0]["alignments"]).shape[:2] == (config["beam_size"],
                                                                              config["decode_length"])
        # Bad settings: INVALID_ARGUMENT, with the message naming the input and its range.
        response = httpx.post(url, json={"signature_name": "translate", "instances": [
            {"source": batch[0], "beam_size": 9, "max_length": 12}]}, timeout=120)
        assert response.status_code == 400 and "beam_size must be in [1, 4]" in response.json()["error"]
        with pytest.raises(grpc.RpcError) as raised:
            grpc_predict({"source": np.array(batch[:1], dtype=object), "beam_size": np.array([4], np.int32),
                          "max_length": np.array([0], np.int32)}, "translate")
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "max_length must be in [1, 12]" in raised.value.details()

        # Concurrent requests, half over REST and half over gRPC, batched together: each gets what it gets alone.
        before = processed_batches(server)
        answers = [None] * len(batch)

        def call(index):
            source, beam, length = batch[index], beams[index], lengths[index]
            if index % 2:
                answers[index] = httpx.post(url, json={"signature_name": "translate", "instances": [
                    {"source": source, "beam_size": beam, "max_length": length}]}, timeout=120).json()[
                    "predictions"][0]["translation"]
            else:
                answers[index] = strings(grpc_predict({"source": np.array([source], dtype=object),
                                                       "beam_size": np.array([beam], np.int32),
                                                       "max_length": np.array([length], np.int32)},
                                                      "translate")["translation"])[0]

        threads = [threading.Thread(target=call, args=(i,)) for i in range(len(batch))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answers == expected[: len(batch)]
        assert processed_batches(server) - before < len(batch), "concurrent requests were not batched"
    finally:
        channel.close()
        server.stop()


def processed_batches(server):
    page = server.metrics.exposition().decode()
    marker = ':tensorflow:serving:batching_session:processed_batch_size_count{model_name="dates"} '
    return float(page.split(marker)[1].split("\n")[0]) if marker in page else 0.0
