"""The whole server over real ports: hot swaps under load, metrics, warmup, batching, options, the command line."""

import os
import shutil
import subprocess
import sys
import threading
import time

import grpc
import httpx2 as httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving.server.core import warmup
from serving.server.servable import Servable
from serving.server.servable import run_timeout_ms
from serving.server.server import ServerOptions
from tests.serving.server.conftest import free_port
from tests.serving.server.conftest import make_server
from tests.serving.testdata import half_plus_two
from tests.serving.testdata import spin


def wait_for(condition, what, timeout=60, thread=None):
    """Waits until `condition()` holds; fails the test after `timeout` seconds, or at once if `thread` (the client
    whose progress is awaited) has died."""
    deadline = time.monotonic() + timeout
    while not condition():
        if thread is not None and not thread.is_alive():
            pytest.fail(f"the client thread died while waiting for {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.01)


def test_hot_swap_under_load_drops_no_request(tmp_path):
    # A client loop of 2,000+ requests while a new version appears (it takes over) and then a corrupt one (it ends
    # in END and the previous version keeps serving): not one request may fail.
    base = half_plus_two.build_versions(str(tmp_path / "half"), [1])
    server = make_server(model_name="half", model_base_path=base, rest_api_port=free_port(),
                         file_system_poll_wait_seconds=0.05).start()
    answers, failures, stop = [], [], threading.Event()
    give_up = time.monotonic() + 300

    def client():
        with httpx.Client(base_url=f"http://127.0.0.1:{server.rest_port}") as http:
            while (not stop.is_set() or len(answers) < 2000) and time.monotonic() < give_up:
                response = http.post("/v1/models/half:predict", json={"instances": [2.0]}, timeout=30)
                if response.status_code == 200:
                    answers.append(response.json()["predictions"][0])
                else:
                    failures.append(response.text)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()

    def publish(version, build):
        staging = os.path.join(str(tmp_path), f"staging-{version}")
        build(staging)
        os.rename(staging, os.path.join(base, str(version)))  # versions appear atomically

    def corrupt(path):
        os.makedirs(path)
        with open(os.path.join(path, "saved_model.pb"), "wb") as f:
            f.write(b"not a SavedModel")

    try:
        wait_for(lambda: len(answers) >= 500, "500 answers", thread=thread)
        publish(2, lambda path: half_plus_two.build(path, offset=1.0))
        wait_for(lambda: 4.0 in answers[-10:], "version 2 to answer", thread=thread)
        publish(3, corrupt)
        wait_for(lambda: len(answers) >= 1500, "1500 answers", thread=thread)
        stop.set()
        thread.join(timeout=120)
        assert not thread.is_alive(), "the client did not finish"
        status = httpx.get(f"http://127.0.0.1:{server.rest_port}/v1/models/half").json()["model_version_status"]
    finally:
        stop.set()
        server.stop()
    assert not failures, failures[:3]
    assert len(answers) >= 2000
    assert set(answers) == {3.0, 4.0} and answers[0] == 3.0 and answers[-1] == 4.0
    assert [(s["version"], s["state"]) for s in status] == [("3", "END"), ("2", "AVAILABLE"), ("1", "END")]
    assert status[0]["status"]["error_code"] != "OK" and status[0]["status"]["error_message"]


def test_prometheus_page(tmp_path, model_base):
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n')
    server = make_server(model_name="half", model_base_path=model_base, rest_api_port=free_port(),
                         monitoring_config_file=str(monitoring)).start()
    url = f"http://127.0.0.1:{server.rest_port}"
    httpx.post(f"{url}/v1/models/half:predict", json={"instances": [1.0]})
    httpx.post(f"{url}/v1/models/half:predict", json={"instances": ["x"]})
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones(2, np.float32)))
    prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request)
    page = httpx.get(f"{url}/monitoring/prometheus/metrics")
    server.stop()
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
    text = page.text
    assert "# TYPE :tensorflow:serving:request_count_total counter" in text and "_created" not in text
    assert ':tensorflow:serving:request_count_total{model_name="half",status="OK"} 2.0' in text
    assert ':tensorflow:serving:request_count_total{model_name="half",status="INVALID_ARGUMENT"} 1.0' in text
    assert ':tensorflow:serving:request_latency_count{API="Predict",entrypoint="REST",model_name="half"} 2.0' in text
    assert ':tensorflow:serving:request_latency_count{API="Predict",entrypoint="GRPC",model_name="half"} 1.0' in text


def write_warmup(version_dir, records):
    os.makedirs(os.path.join(version_dir, "assets.extra"), exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests")) as writer:
        for record in records:
            writer.write(record)


def test_warmup_is_replayed_and_a_bad_file_fails_the_load(tmp_path):
    base = half_plus_two.build_versions(str(tmp_path / "half"), [1, 2, 3])
    log = prediction_log_pb2.PredictionLog()
    log.predict_log.request.model_spec.name = "half"
    log.predict_log.request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones(3, np.float32)))
    write_warmup(os.path.join(base, "1"), [log.SerializeToString()] * 3)
    assert warmup(Servable("half", 1, os.path.join(base, "1")), iterations=2) == 3
    write_warmup(os.path.join(base, "2"), [b"this is not a PredictionLog"])
    write_warmup(os.path.join(base, "3"), [log.SerializeToString()])
    with open(os.path.join(base, "3", "assets.extra", "tf_serving_warmup_requests"), "r+b") as f:
        f.seek(10)
        f.write(b"\xff\xff")  # breaks the record's framing checksum
    manager = make_server(model_name="half", model_base_path=base, file_system_poll_wait_seconds=0).core.manager
    manager.reload(model_server_config(base, "all"))
    status = {version: (state, code, message) for version, state, code, message in manager.status("half")}
    assert status[1][:2] == ("AVAILABLE", "OK")
    assert status[2][:2] == ("END", "DATA_LOSS") and "is not a PredictionLog" in status[2][2]
    assert status[3][:2] == ("END", "DATA_LOSS") and "corrupted record" in status[3][2]


def model_server_config(base, policy):
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add(name="half", base_path=base)
    if policy == "all":
        model.model_version_policy.all.SetInParent()
    return config


def test_batching_through_the_server(model_base, tmp_path):
    parameters = tmp_path / "batching.config"
    parameters.write_text("max_batch_size { value: 32 }\nbatch_timeout_micros { value: 20000 }\n"
                          "num_batch_threads { value: 1 }\nallowed_batch_sizes: 8\nallowed_batch_sizes: 32\n")
    server = make_server(model_name="half", model_base_path=model_base, rest_api_port=free_port(),
                         enable_batching=True, batching_parameters_file=str(parameters)).start()
    url = f"http://127.0.0.1:{server.rest_port}/v1/models/half:predict"
    results = [None] * 16

    def call(index):
        results[index] = httpx.post(url, json={"instances": [float(index)]}).json()["predictions"]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # An output filter applies to a batched request too, and a bad one is refused with TF Serving's message.
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "half"
        request.model_spec.signature_name = "predict_matrix"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([[1.0, 2.0]], np.float32)))
        request.inputs["flag"].CopyFrom(tf.make_tensor_proto(np.array([True])))
        request.output_filter.append("label")
        filtered = stub.Predict(request, timeout=30).outputs
        request.output_filter.append("nope")
        with pytest.raises(grpc.RpcError) as raised:
            stub.Predict(request, timeout=30)
    page = server.metrics.exposition().decode()
    server.stop()
    assert list(filtered) == ["label"] and tf.make_ndarray(filtered["label"]).tolist() == [b"yes"]
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "output tensor alias not found in signature: nope" in raised.value.details()
    assert results == [[0.5 * i + 3.0] for i in range(16)]
    batches = float(page.split(':tensorflow:serving:batching_session:processed_batch_size_count{model_name="half"} ')[1]
                    .split("\n")[0])
    assert batches < 16, "concurrent requests were not batched"


@pytest.mark.parametrize(
    "options, message",
    [
        ({}, "give exactly one of --model_config_file and --model_base_path"),
        ({"model_base_path": "/x", "model_config_file": "/y"}, "give exactly one of"),
        ({"model_base_path": "/x", "batching_parameters_file": "/b"}, "--batching_parameters_file needs --enable_batching"),
        ({"model_base_path": "/x", "port": 9000, "rest_api_port": 9000}, "--rest_api_port must differ from --port"),
        ({"model_base_path": "/x", "bogus": 1}, "unknown server option 'bogus'"),
        ({"model_base_path": "/x", "grpc_max_threads": 0}, "--grpc_max_threads must be positive, got 0"),
        ({"model_base_path": "/x", "rest_api_num_threads": -2}, "--rest_api_num_threads must be positive, got -2"),
        ({"model_base_path": "/x", "rest_api_max_body_bytes": 0}, "--rest_api_max_body_bytes must be positive"),
        ({"model_base_path": "/x", "rest_api_max_connections": 0}, "--rest_api_max_connections must be positive"),
        ({"model_base_path": "/x", "rest_api_idle_timeout_in_ms": -1}, "--rest_api_idle_timeout_in_ms must be positive"),
        ({"model_base_path": "/x", "grpc_max_receive_message_bytes": 0},
         "--grpc_max_receive_message_bytes must be positive"),
        ({"model_base_path": "/x", "num_load_threads": -1}, "--num_load_threads must be 0 or more, got -1"),
        ({"model_base_path": "/x", "grpc_channel_arguments": "grpc.x"}, "takes key=value pairs"),
    ],
)
def test_option_errors(options, message):
    with pytest.raises(ValueError, match=message):
        ServerOptions(**options)


def test_grpc_threads_leave_room_for_a_full_batch():
    # TF Serving's default is 4 threads per CPU; a gRPC thread waits for its request's batch, so with batching the
    # default grows to the batch size (capped), and an explicit --grpc_max_threads always wins.
    cpus = os.cpu_count() or 1
    options = ServerOptions(model_base_path="/x")
    assert options.grpc_threads() == 4 * cpus
    assert options.grpc_threads(max_batch_size=max(64, 4 * cpus)) == max(64, 4 * cpus)
    assert options.grpc_threads(max_batch_size=1) == 4 * cpus
    assert options.grpc_threads(max_batch_size=100000) == max(256, 4 * cpus)
    assert ServerOptions(model_base_path="/x", grpc_max_threads=3).grpc_threads(max_batch_size=64) == 3


def test_command_line_server_binds_localhost_and_serves(model_base, tmp_path):
    config = tmp_path / "models.config"
    # A relative base path resolves against the config file's directory.
    shutil.copytree(model_base, tmp_path / "half")
    (tmp_path / "empty").mkdir()  # configured, but nothing exported there yet; and "missing" has no directory at all
    config.write_text("model_config_list {\n" + "".join(
        f'  config {{\n    name: "{name}"\n    base_path: "{name}"\n    model_platform: "tensorflow"\n  }}\n'
        for name in ("empty", "half", "missing")) + "}\n")
    grpc_port, rest_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.server", f"--model_config_file={config}", f"--port={grpc_port}",
         f"--rest_api_port={rest_port}", "--file_system_poll_wait_seconds=0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline()  # the banner, once the server serves (empty if it exited)
        answer = line and httpx.post(f"http://127.0.0.1:{rest_port}/v1/models/half:predict",
                                     json={"instances": [1.0]}).json()
    finally:
        process.terminate()
        process.wait(timeout=30)
    errors = process.stderr.read()  # read only now: until the server exits, its stderr has no end
    # The banner names only the models it serves.
    assert line.startswith(f"serving half: gRPC on 127.0.0.1:{grpc_port}, REST on http://127.0.0.1:{rest_port}"), (
        line + errors)
    assert answer == {"predictions": [3.5]}
    assert process.returncode == 0
    assert "not serving empty (no versions yet), missing (base path missing)" in errors, errors
    assert f"Could not find base path {tmp_path / 'missing'} for servable missing" in errors, errors


def test_command_line_errors(tmp_path):
    bad = tmp_path / "bad.config"
    bad.write_text("model_config_list { config { nme: 'x' } }")
    result = subprocess.run([sys.executable, "-m", "serving.server", f"--model_config_file={bad}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in result.stderr
    assert "Traceback" not in result.stderr
    bad.write_text('model_config_list { config { name: "a" base_path: "a" } config { name: "a" base_path: "b" } }')
    result = subprocess.run([sys.executable, "-m", "serving.server", f"--model_config_file={bad}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "error: Illegal to list model a multiple times in config list" in result.stderr
    assert "Traceback" not in result.stderr


def test_request_deadlines_cut_the_model_run_and_the_server_keeps_serving(tmp_path):
    # The REST timeout and a gRPC client's deadline become the run's RunOptions timeout (TF Serving's behaviour,
    # tf_serving_api.md): the spin model would run for minutes, so each request ends only if its run is cut.
    spin.build(str(tmp_path / "spin" / "1"))
    for batching in (False, True):
        server = make_server(model_name="spin", model_base_path=str(tmp_path / "spin"), rest_api_port=free_port(),
                             rest_api_timeout_in_ms=300, enable_batching=batching,
                             monitoring_config_file="serving/configs/monitoring.config").start()
        try:
            url = f"http://127.0.0.1:{server.rest_port}/v1/models/spin:predict"
            started = time.monotonic()
            response = httpx.post(url, json={"instances": [10**12]}, timeout=120)
            assert response.status_code == 504, response.text
            assert "error" in response.json()
            assert time.monotonic() - started < 60, "the request outlived its deadline by far"
            assert httpx.post(url, json={"instances": [10]}).json() == {"predictions": [10]}

            with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                request = predict_pb2.PredictRequest()
                request.model_spec.name = "spin"
                request.inputs["steps"].CopyFrom(tf.make_tensor_proto([10**12], dtype=tf.int64))
                with pytest.raises(grpc.RpcError) as raised:
                    stub.Predict(request, timeout=0.3)
                assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                # The server's own run was cut too (with batching: the batch's, at its last request's deadline): the
                # request ends DEADLINE_EXCEEDED on the server as well, not minutes later.
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    page = server.metrics.exposition().decode()
                    if 'request_count_total{model_name="spin",status="DEADLINE_EXCEEDED"} 2.0' in page:
                        break
                    time.sleep(0.1)
                else:
                    pytest.fail("the gRPC request's model run was not cut at its deadline")
                request.inputs["steps"].CopyFrom(tf.make_tensor_proto([7], dtype=tf.int64))
                assert tf.make_ndarray(stub.Predict(request, timeout=30).outputs["done"]).tolist() == [7]
        finally:
            server.stop()


def test_deadlines_share_session_callables(model_base):
    # Every distinct RunOptions timeout is a Session callable of its own, made while other runs wait; REST requests
    # (a fixed timeout from their arrival) and batches (their latest deadline) give a new value nearly every run, so
    # timeouts are rounded up to 8 steps per power of two: never shorter, at most 1/8 longer.
    for ms in [1, 2, 7, 8, 9, 15, 16, 17, 999, 1000, 29_999, 30_000, 10**9]:
        rounded = run_timeout_ms(ms / 1000)
        assert ms <= rounded <= max(ms, ms * 9 / 8), (ms, rounded)
    assert run_timeout_ms(0.0001) == 1
    servable = Servable("half", 1, os.path.join(model_base, "1"))
    for timeout in np.linspace(29.0, 30.0, 200):
        assert servable.predict("serving_default", {"x": np.array([2.0], np.float32)}, (), timeout)["y"] == [3.0]
    assert len(servable._callables) == 1
