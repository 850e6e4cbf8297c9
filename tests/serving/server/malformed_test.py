"""Every malformed request gets a client error naming what was wrong, and a flood of them does not flood the log."""

import base64
import os
import socket
import subprocess
import sys

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient
from tensorflow.core.framework import types_pb2

from serving import json_tensor
from serving.server.rest import RestApp
from tests.serving.server.conftest import free_port
from tests.serving.testdata import checked


@pytest.fixture(scope="module")
def client(server):
    with TestClient(RestApp(server.core)) as test_client:
        yield test_client


def nested(depth, leaf=b"1.0"):
    return b"[" * depth + leaf + b"]" * depth


@pytest.mark.parametrize(
    "path, body, message",
    [
        # Nested deeper than NumPy allows (64 dimensions): columnar, and row format (an instance of 64 dimensions
        # plus the batch dimension).
        ("/v1/models/half:predict", b'{"inputs": ' + nested(65) + b"}",
         "JSON value nests lists 65 deep: a tensor has at most 64 dimensions"),
        ("/v1/models/half:predict", b'{"instances": [' + nested(64) + b"]}",
         "have 64 dimensions: with the batch dimension, more than the 64 a tensor may have"),
        # Integers of thousands of digits, as values and as a version.
        ("/v1/models/half:predict", b'{"instances": [' + b"9" * 5000 + b"]}",
         "JSON Parse error: Number too big to be stored in double."),
        ("/v1/models/half:predict", b'{"instances": [' + b"9" * 400 + b"]}",
         "JSON Parse error: Number too big to be stored in double."),
        ("/v1/models/half/versions/" + "7" * 5000 + ":predict", b'{"instances": [1.0]}',
         "Failed to convert version: 7777"),
        # A JSON escape of a lone UTF-16 surrogate is not a character.
        ("/v1/models/half:classify", b'{"signature_name": "classify_x_to_y", "examples": [{"\\ud800": 1.0}]}',
         "is not valid UTF-8"),
        ("/v1/models/half:predict", b'{"instances": [1.0], "signature_name": ' + b'"' + b"s" * 100_000 + b'"}',
         'not found in signature def'),
    ],
)
def test_malformed_requests_are_client_errors(client, path, body, message):
    response = client.post(path, content=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert len(response.text) < 2000, "an error message quotes at most a short part of what was sent"
    assert client.post("/v1/models/half:predict", json={"instances": [1.0]}).json() == {"predictions": [3.5]}


def test_infinities_and_nans_as_rapidjson_reads_them(client):
    body = b'{"instances": [Inf, -Inf, Infinity, -Infinity, NaN, -NaN]}'
    assert client.post("/v1/models/half:predict", content=body).text == (
        '{"predictions": [Infinity, -Infinity, Infinity, -Infinity, NaN, NaN]}'
    )


def test_bytes_that_are_not_utf8_reach_the_model_as_sent():
    # rapidjson does not validate UTF-8, so TF Serving hands a string input's bytes to the model as they were sent;
    # so does this server (a string output that is not UTF-8 is written with U+FFFD: serving/README.md).
    document = json_tensor.parse_json(b'{"instances": ["caf\xe9 \xff", "ok"], "x": "Inf"}')
    tensors, _ = json_tensor.predict_inputs(document, {"s": types_pb2.DT_STRING})
    assert tensors["s"].tolist() == [b"caf\xe9 \xff", b"ok"]
    assert document["x"] == "Inf"
    assert json_tensor.tensor_from_json({"b64": base64.b64encode(b"\xff").decode()}, types_pb2.DT_STRING) == b"\xff"


def test_a_flood_of_bad_requests_does_not_flood_the_log(tmp_path):
    # 150 requests the model refuses (TensorFlow's runtime logs a warning for many failed runs), 150 that are not
    # HTTP (uvicorn logs a warning for each): the server's log stays a few lines long, and the server keeps serving.
    checked.build(str(tmp_path / "checked" / "1"))
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}  # a user's
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.server", "--model_name=checked",
         f"--model_base_path={tmp_path / 'checked'}", f"--port={free_port()}", f"--rest_api_port={port}",
         "--file_system_poll_wait_seconds=0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
    )
    try:
        assert "REST on" in process.stdout.readline()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(150):
                assert http.post("/v1/models/checked:predict", json={"instances": [-1.0]}).status_code == 400
        for _ in range(150):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"\x00\x01 not http at all\r\n\r\n")
                sock.recv(1024)
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/models/checked:predict", json={"instances": [4.0]})
        assert answer.json() == {"predictions": [2.0]}
    finally:
        process.terminate()
        _, log = process.communicate(timeout=60)
    lines = [line for line in log.splitlines() if line.strip()]
    assert len(lines) < 20, "\n".join(lines[:60])


def test_tensor_protos_that_no_model_can_take_are_client_errors(model_base):
    # Over gRPC: a tensor claiming 2^40 elements from one value, a negative dimension, DT_VARIANT and DT_RESOURCE,
    # and a dtype enum that does not exist were answered INTERNAL (or tried to allocate): each is INVALID_ARGUMENT
    # "tensor parsing error: <input>: ...", and the server keeps serving.
    import grpc
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2
    from tensorflow.core.framework import tensor_shape_pb2
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    from tests.serving.server.conftest import make_server

    def request(dims, dtype=types_pb2.DT_FLOAT, **values):
        message = predict_pb2.PredictRequest()
        message.model_spec.name = "half"
        message.inputs["x"].CopyFrom(tensor_pb2.TensorProto(
            dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims]), **values))
        return message

    cases = [
        (request([2**40], float_val=[1.0]), "more than the 67108864 bytes"),
        (request([-3], float_val=[1.0]), "negative dimension (-3)"),
        (request([1], dtype=types_pb2.DT_VARIANT), "dtype DT_VARIANT cannot be sent in a request"),
        (request([1], dtype=types_pb2.DT_RESOURCE), "dtype DT_RESOURCE cannot be sent in a request"),
        (request([1], dtype=999), "dtype 999 (not a DataType) cannot be sent"),
        (request([2], float_val=[1.0, 2.0, 3.0]), None),  # more values than the shape: the first two, as TF does
    ]
    server = make_server(model_name="half", model_base_path=model_base).start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for message, expected in cases:
                if expected is None:
                    assert tf.make_ndarray(stub.Predict(message, timeout=30).outputs["y"]).tolist() == [3.5, 4.0]
                    continue
                with pytest.raises(grpc.RpcError) as raised:
                    stub.Predict(message, timeout=30)
                assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
                assert "tensor parsing error: x: " in raised.value.details() and expected in raised.value.details()
    finally:
        server.stop()
