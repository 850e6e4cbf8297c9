"""A request never fails because of another: through the whole server, with batching, over REST and gRPC."""

import threading
import time

import grpc
import httpx2 as httpx
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.serving.server.conftest import free_port
from tests.serving.server.conftest import make_server
from tests.serving.testdata import checked
from tests.serving.testdata import spin


def batching_file(tmp_path, text):
    path = tmp_path / "batching.config"
    path.write_text(text)
    return str(path)


def predict_request(name, key, values, dtype):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.inputs[key].CopyFrom(tf.make_tensor_proto(np.asarray(values, dtype)))
    return request


def test_one_clients_invalid_values_fail_only_that_client(tmp_path):
    # 24 concurrent requests gather in batches (a 300 ms batch timeout); 3 of them carry a value the model's own
    # check refuses. Only those 3 fail, with the model's message; the 21 others get their square roots. TF Serving
    # (and this server before) failed every request batched with an offender.
    checked.build(str(tmp_path / "checked" / "1"))
    server = make_server(model_name="checked", model_base_path=str(tmp_path / "checked"), rest_api_port=free_port(),
                         enable_batching=True, batching_parameters_file=batching_file(
                             tmp_path, "max_batch_size { value: 32 }\nbatch_timeout_micros { value: 300000 }\n"
                                       "num_batch_threads { value: 1 }\n")).start()
    bad = {3, 10, 17}
    answers = [None] * 24
    try:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}"))
        url = f"http://127.0.0.1:{server.rest_port}/v1/models/checked:predict"

        def call(index):
            value = -1.0 if index in bad else float(index * index)
            if index % 2:
                response = httpx.post(url, json={"instances": [value]}, timeout=60)
                answers[index] = (response.status_code, response.json())
            else:
                try:
                    outputs = stub.Predict(predict_request("checked", "x", [value], np.float32), timeout=60).outputs
                    answers[index] = (200, {"predictions": tf.make_ndarray(outputs["y"]).tolist()})
                except grpc.RpcError as error:
                    answers[index] = (error.code(), {"error": error.details()})

        threads = [threading.Thread(target=call, args=(i,)) for i in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        page = server.metrics.exposition().decode()
    finally:
        server.stop()
    assert all(not thread.is_alive() for thread in threads)
    for index, (status, body) in enumerate(answers):
        if index in bad:
            assert status in (400, grpc.StatusCode.INVALID_ARGUMENT), (index, status, body)
            assert "x must be non-negative" in body["error"]
        else:
            assert (status, body) == (200, {"predictions": [float(index)]}), (index, status, body)
    assert 'split_batches_total{model_name="checked"}' in page, "no batch held an offender: the test proved nothing"


def test_a_rest_request_that_times_out_while_queued_fails_alone(tmp_path):
    # One batch thread, busy for 2 s with a gRPC request (its own deadline). Meanwhile a REST request (timeout
    # 400 ms) and a gRPC request (deadline 60 s) wait in the same batch. The REST request answers 504 at its
    # deadline and leaves the batch; the gRPC request is then run and answered. (The REST request's cancelled
    # future used to be completed later, and the error landed on the gRPC request: 500 / INTERNAL.)
    spin.build(str(tmp_path / "spin" / "1"))
    server = make_server(model_name="spin", model_base_path=str(tmp_path / "spin"), rest_api_port=free_port(),
                         rest_api_timeout_in_ms=400, enable_batching=True, batching_parameters_file=batching_file(
                             tmp_path, "max_batch_size { value: 8 }\nnum_batch_threads { value: 1 }\n")).start()
    results = {}
    try:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}"))

        def grpc_call(key, steps, deadline):
            try:
                outputs = stub.Predict(predict_request("spin", "steps", [steps], np.int64), timeout=deadline).outputs
                results[key] = tf.make_ndarray(outputs["done"]).tolist()
            except grpc.RpcError as error:
                results[key] = error.code()

        def rest_call():
            response = httpx.post(f"http://127.0.0.1:{server.rest_port}/v1/models/spin:predict",
                                  json={"instances": [5]}, timeout=60)
            results["rest"] = response.status_code

        threads = [threading.Thread(target=grpc_call, args=("busy", 10**12, 2.0))]
        threads[0].start()
        time.sleep(0.3)  # the busy request is running
        threads.append(threading.Thread(target=rest_call))
        threads[-1].start()
        time.sleep(0.1)
        threads.append(threading.Thread(target=grpc_call, args=("patient", 7, 60.0)))
        threads[-1].start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        server.stop()
    assert results == {"busy": grpc.StatusCode.DEADLINE_EXCEEDED, "rest": 504, "patient": [7]}, results
