"""Bounded memory per request and over time: JSON bodies are measured before they are parsed, and the metrics page
only names configured models."""

import gc
import os
import subprocess
import sys
import threading
import time
import tracemalloc

import httpx2 as httpx
import pytest
from tensorflow.core.framework import types_pb2

from serving import json_tensor
from serving.server.errors import ServingError
from tests.serving.server.conftest import free_port
from tests.serving.server.conftest import make_server

FLOAT = {"x": types_pb2.DT_FLOAT}
STRING = {"x": types_pb2.DT_STRING}
MAX_VALUES = 1 << 17
SCAN_MEMORY = 16 << 20  # json_scan's working memory (about 40 x its 256 KiB chunk), with room


def parse_peak(body, dtypes):
    """(outcome, peak bytes) of turning a :predict body into tensors, as the REST front end does."""
    gc.collect()
    tracemalloc.start()
    try:
        document = json_tensor.parse_json(body, max_values=MAX_VALUES)
        json_tensor.predict_signature_name(document)
        json_tensor.predict_inputs(document, dtypes, b"true" in body or b"false" in body)
        outcome = "ok"
    except ServingError as error:
        outcome = error.message
    finally:
        document = None
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome, peak


def instances(items):
    return b'{"instances": [' + b",".join(items) + b"]}"


n = MAX_VALUES - 8
CASES = {
    # What broke the server: containers cost ~80 bytes of Python objects for 3 bytes of text (1.5-2 GB for 57 MB).
    "empty lists, far over the limit": (instances([b"[]"] * 3_000_000), FLOAT, "more than the 131072"),
    "empty objects, far over the limit": (instances([b"{}"] * 3_000_000), FLOAT, "more than the 131072"),
    "nesting far too deep": (b'{"instances": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", FLOAT, "levels deep"),
    # The worst a valid body within the limits costs, per value and per byte.
    "floats in lists of one": (instances([b"[1.5]"] * (n // 2)), FLOAT, "ok"),
    "objects of one list": (instances([b'{"x":[1.5]}'] * (n // 4)), FLOAT, "ok"),
    "distinct short strings": (instances([b'"%07d"' % i for i in range(n)]), STRING, "ok"),
    "one long string of 4-byte characters": (instances([b'"' + "\U0001F600".encode() * 2_000_000 + b'"']), STRING,
                                             "ok"),
    "long strings": (instances([b'"%0200d"' % i for i in range(40_000)]), STRING, "ok"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_json_body_costs_at_most_five_times_its_size_or_130_bytes_a_value(name):
    # The bound stated in serving/README.md: parsing a body takes at most about 5 x its size (a string of 4-byte
    # characters: the text decoded, the JSON string, its bytes) or 130 bytes per value allowed (a short string:
    # its str, bytes and array slot), whichever is larger, plus the scan's fixed working memory.
    body, dtypes, expected = CASES[name]
    outcome, peak = parse_peak(body, dtypes)
    assert expected in outcome, outcome
    bound = max(5 * len(body), 130 * MAX_VALUES) + SCAN_MEMORY
    assert peak <= bound, f"{name}: {peak / 2**20:.1f} MiB for a {len(body) / 2**20:.1f} MiB body"


def test_unknown_model_names_do_not_grow_the_metrics_page(model_base, tmp_path):
    # Request metrics are labelled by model name; names the config lacks are all counted under model_name="", so
    # 2,000 distinct unknown names add one series, not 2,000 (40,000 made a 277 MB page before).
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true, path: "/metrics" }\n')
    server = make_server(model_name="half", model_base_path=model_base, rest_api_port=free_port(),
                         monitoring_config_file=str(monitoring)).start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.rest_port}") as client:
            client.post("/v1/models/half:predict", json={"instances": [1.0]})
            before = len(client.get("/metrics").content)
            for index in range(2000):
                assert client.post(f"/v1/models/unknown-{index}:predict", json={"instances": [1.0]}).status_code == 404
            page = client.get("/metrics").text
    finally:
        server.stop()
    assert "unknown-" not in page
    assert ':tensorflow:serving:request_count_total{model_name="",status="NOT_FOUND"} 2000.0' in page
    assert len(page) < before + 4000, (before, len(page))


def test_a_tensor_claiming_a_huge_shape_is_refused_before_anything_is_allocated(model_base):
    # 2^28 float elements from one value would take 1 GiB (tf.make_ndarray builds it); the server refuses it with
    # INVALID_ARGUMENT before allocating (the limit: --grpc_max_receive_message_bytes, 64 MiB, for the request's
    # tensors together). The server runs in this process, so tracemalloc sees its allocations.
    import grpc
    from tensorflow.core.framework import tensor_pb2
    from tensorflow.core.framework import tensor_shape_pb2
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half"
    request.inputs["x"].CopyFrom(tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, float_val=[1.0],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=2**28)])))
    server = make_server(model_name="half", model_base_path=model_base).start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            gc.collect()
            tracemalloc.start()
            with pytest.raises(grpc.RpcError) as raised:
                stub.Predict(request, timeout=60)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    finally:
        server.stop()
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "has 268435456 elements (1073741824 bytes), more than the 67108864 bytes" in raised.value.details()
    assert peak < 16 * 2**20, peak


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the server's RSS from /proc")
def test_repeated_large_refused_grpc_messages_do_not_grow_memory(model_base):
    # 48 refused 50 MB Predict requests from 8 threads: each gRPC thread's malloc arena used to keep what they
    # freed (RSS +500 MB after 50 such requests, still rising after 1,000; nothing was alive: glibc held the memory
    # as free). The server now hands freed memory back a second after its requests stop (serving/server/memory.py).
    import grpc
    from tensorflow.core.framework import tensor_pb2
    from tensorflow_serving.apis import predict_pb2

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.server", "--model_name=half", f"--model_base_path={model_base}",
         f"--port={port}", "--file_system_poll_wait_seconds=0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert "gRPC on" in process.stdout.readline()
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "half"
        count = 50 * 2**20 // 4
        request.inputs["nope"].CopyFrom(tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=bytes(
            4 * count)))
        request.inputs["nope"].tensor_shape.dim.add(size=count)
        payload = request.SerializeToString()
        time.sleep(1)
        before = rss_bytes(process.pid)
        answers = []

        def client():
            with grpc.insecure_channel(f"127.0.0.1:{port}",
                                       options=[("grpc.max_send_message_length", 2**30)]) as channel:
                call = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
                for _ in range(6):
                    try:
                        call(payload, timeout=120)
                        answers.append("OK")
                    except grpc.RpcError as error:
                        answers.append(error.code())

        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        time.sleep(3)  # the trim comes a second after the last request
        after = rss_bytes(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert answers == [grpc.StatusCode.INVALID_ARGUMENT] * 48
    assert after - before < 150 * 2**20, f"RSS grew by {(after - before) / 2**20:.0f} MiB"
