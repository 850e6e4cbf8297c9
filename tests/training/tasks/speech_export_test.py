"""The speech export: WAV bytes (or samples) in, transcripts out, in both TensorFlow loaders and through the server
(REST with base64 strings, gRPC, batching on), the transcripts `SpeechTask.transcribe` gives."""

import base64
import os
import threading
import wave

import grpc
import httpx2 as httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import client
from serving import export
from tests.helpers.saved_model import assert_dense_signature_outputs
from tests.helpers.saved_model import load_with_session
from tests.serving.server.conftest import free_port
from tests.serving.server.conftest import make_server
from tests.training.tasks import runs
from training.data import speech as speech_data

SIZES = {"train_size": 48, "validation_size": 8, "test_size": 8, "clean_digits_size": 6}


def untrained(task, config):
    """The config's model with its initial weights: its frames' argmax labels are all over the alphabet, so the
    transcripts are long and differ from row to row (a trained-for-a-few-steps model writes only blanks)."""
    model = task.build_model(config)
    inputs = (np.zeros((1, 800), "float32"), np.array([800], "int32"))
    model(inputs + ((np.ones((1, 1), "int32"),) if config["objective"] == "attention" else ()))
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{name: (task, config, model, path, loaded)} for CTC's greedy and beam decoders, the frame labeller, and the
    attention model with beam search."""
    work = tmp_path_factory.mktemp("speech_export")
    cache = str(work / "cache")
    found = {}
    small_speller = {"units": 16, "encoder_layers": 1, "attention_options": {"units": 16}, "attention_layer_size": 16}
    for name, preset, overrides in (("greedy", "ctc", {}), ("beam", "ctc", {"decoder": "beam", "beam_width": 4}),
                                    ("frames", "feedback", {}),
                                    ("attention", "attention", {"beam_width": 3, "decode_length": 12,
                                                                "model_options": small_speller})):
        task, config = runs.make_config("speech", preset, cache_dir=cache, **SIZES, **overrides)
        model = untrained(task, config)
        path = str(work / name)
        export.write_saved_model(task, config, model, path)
        found[name] = (task, config, model, path, tf.saved_model.load(path))
    return found


def wavs(examples):
    return [speech_data.wav_bytes(np.asarray(e.audio, np.float32) / 32768.0) for e in examples]


def decoded(values):
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()]


@pytest.mark.slow
# CTC's greedy decoding is exported and served in the server test below; here its beam search.
@pytest.mark.parametrize("name", ["beam", "frames", "attention"])
def test_wav_and_samples_give_the_task_s_transcripts_in_both_loaders(exported, name):
    task, config, model, path, loaded = exported[name]
    assert_dense_signature_outputs(path)
    examples = task.corpus(config).examples["test"][:6]
    # The WAV round trip quantizes to 16 bits: the expected transcripts are of the audio as the WAV files hold it.
    audio = [speech_data.read_wav_bytes(w) for w in wavs(examples)]
    expected = task.transcribe(config, model, audio)
    assert any(expected) and len(set(expected)) > 1, "transcripts too alike to show anything"
    batch = np.array(wavs(examples), dtype=object)
    eager = loaded.signatures["serving_default"](wav=tf.constant(batch))["transcript"]
    session = load_with_session(path, {"wav": batch})["transcript"]
    assert decoded(eager) == decoded(session) == expected
    width = max(len(a) for a in audio)
    samples = np.stack([np.pad(a, (0, width - len(a))) for a in audio]).astype(np.float32)
    lengths = np.array([len(a) for a in audio], np.int32)
    for outputs in (loaded.signatures["transcribe_samples"](samples=tf.constant(samples),
                                                            lengths=tf.constant(lengths)),
                    load_with_session(path, {"samples": samples, "lengths": lengths}, "transcribe_samples")):
        assert decoded(outputs["transcript"]) == expected
    # A row's transcript does not depend on the rows batched with it.
    alone = [decoded(loaded.signatures["serving_default"](wav=tf.constant([w]))["transcript"])[0]
             for w in batch]
    assert alone == expected
    # An empty batch gives an empty result.
    assert loaded.signatures["serving_default"](wav=tf.constant([], tf.string))["transcript"].shape == (0,)


def wav_file(rate=16000, channels=1, width=2, frames=1600):
    import io

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(b"\x01\x00" * frames * channels * (width // 2))
    return buffer.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("contents, message", [
    (wav_file(rate=8000), r"a WAV file holds audio at 8000 Hz in 1 channel\(s\); expected 16000 Hz mono"),
    (wav_file(channels=2), r"a WAV file holds audio at 16000 Hz in 2 channel\(s\); expected 16000 Hz mono"),
    (b"RIFF but not a wave file at all", r"(?i)wav|riff|header"),
])
def test_a_wav_that_is_not_16_khz_mono_pcm_is_invalid_argument_naming_it(exported, contents, message):
    _, _, _, path, loaded = exported["greedy"]
    batch = np.array([wav_file(), contents], dtype=object)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded.signatures["serving_default"](wav=tf.constant(batch))
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        load_with_session(path, {"wav": batch})


@pytest.mark.slow
def test_lengths_outside_the_samples_are_invalid_argument(exported):
    _, _, _, path, loaded = exported["greedy"]
    samples = np.zeros((2, 1000), np.float32)
    for lengths in ([1000, 1001], [-1, 10]):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"lengths must be in \[0, 1000\]"):
            loaded.signatures["transcribe_samples"](samples=tf.constant(samples),
                                                    lengths=tf.constant(lengths, tf.int32))


BATCHING = ("max_batch_size { value: 16 }\nbatch_timeout_micros { value: 200000 }\nnum_batch_threads { value: 1 }\n"
            "max_enqueued_batches { value: 100 }\n")


@pytest.mark.slow
def test_served_over_rest_with_base64_and_grpc_with_batching(exported, tmp_path):
    task, config, model, path, _ = exported["greedy"]
    base = str(tmp_path / "models")
    export.write_saved_model(task, config, model, os.path.join(base, "speech", "1"))
    (tmp_path / "models.config").write_text(
        'model_config_list {\n  config {\n    name: "speech"\n    base_path: "%s"\n    model_platform: '
        '"tensorflow"\n  }\n}\n' % os.path.join(base, "speech"))
    parameters = tmp_path / "batching.config"
    parameters.write_text(BATCHING)
    server = make_server(model_config_file=str(tmp_path / "models.config"), rest_api_port=free_port(),
                         enable_batching=True, batching_parameters_file=str(parameters)).start()
    url = f"http://127.0.0.1:{server.rest_port}/v1/models/speech:predict"
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    examples = task.corpus(config).examples["test"][:6]
    files = wavs(examples)
    expected = task.transcribe(config, model, [speech_data.read_wav_bytes(w) for w in files])

    def grpc_predict(batch):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "speech"
        request.inputs["wav"].CopyFrom(tf.make_tensor_proto(np.array(batch, dtype=object)))
        response = stub.Predict(request, timeout=120)
        return decoded(tf.make_ndarray(response.outputs["transcript"]))

    try:
        rows = httpx.post(url, json={"instances": [{"b64": base64.b64encode(f).decode()} for f in files]},
                          timeout=120).json()["predictions"]
        assert rows == expected
        assert grpc_predict(files) == expected
        # The command-line client sends WAV files (--wav), over both APIs.
        paths = []
        for index, contents in enumerate(files[:3]):
            paths.append(str(tmp_path / f"{index}.wav"))
            with open(paths[-1], "wb") as f:
                f.write(contents)
        for protocol, port in (("rest", server.rest_port), ("grpc", server.grpc_port)):
            answer = client.Client.connect(f"127.0.0.1:{port}", protocol).predict("speech", client.wav_inputs(paths))
            assert decoded(answer["transcript"]) == expected[:3]
        # A bad file is INVALID_ARGUMENT with the reason, over both APIs; the server keeps serving.
        response = httpx.post(url, json={"instances": [{"b64": base64.b64encode(wav_file(rate=22050)).decode()}]},
                              timeout=120)
        assert response.status_code == 400 and "22050 Hz in 1 channel(s); expected 16000 Hz mono" in \
            response.json()["error"]
        with pytest.raises(grpc.RpcError) as raised:
            grpc_predict([wav_file(channels=2)])
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # Concurrent one-file requests, REST and gRPC, batched together: each gets what it gets alone.
        answers = [None] * len(files)

        def call(index):
            if index % 2:
                answers[index] = httpx.post(url, json={"instances": [{"b64": base64.b64encode(files[index]).decode()}]},
                                            timeout=120).json()["predictions"][0]
            else:
                answers[index] = grpc_predict([files[index]])[0]

        threads = [threading.Thread(target=call, args=(i,)) for i in range(len(files))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answers == expected
    finally:
        channel.close()
        server.stop()
