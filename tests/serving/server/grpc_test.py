"""The gRPC API with the official stubs (tf_serving_api.md §2): Predict, Classify, Regress, MultiInference,
metadata, status, config reload, health, and TF Serving's status codes and messages."""

import os

import grpc
import numpy as np
import pytest
import tensorflow as tf
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.apis import regression_pb2

from tests.serving.server.conftest import make_server


@pytest.fixture(scope="module")
def stubs(model_base):
    server = make_server(model_name="half", model_base_path=model_base, enable_grpc_healthcheck_service=True,
                         enable_reload_config_rpc=True).start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield (prediction_service_pb2_grpc.PredictionServiceStub(channel),
           model_service_pb2_grpc.ModelServiceStub(channel), health_pb2_grpc.HealthStub(channel))
    channel.close()
    server.stop()


def predict_request(x, signature=""):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half"
    request.model_spec.signature_name = signature
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.asarray(x, np.float32)))
    return request


def rpc_error(call, request, code, message):
    with pytest.raises(grpc.RpcError) as raised:
        call(request)
    assert raised.value.code() == code, raised.value.details()
    assert message in raised.value.details(), raised.value.details()


def test_predict(stubs):
    prediction, _, _ = stubs
    response = prediction.Predict(predict_request([1.0, 2.0, 5.0]))
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["y"]), [3.5, 4.0, 5.5])
    assert list(response.outputs["y"].float_val) == [3.5, 4.0, 5.5]  # typed fields, as TF Serving writes them
    assert response.model_spec.name == "half" and response.model_spec.version.value == 2
    assert response.model_spec.signature_name == "serving_default"


def test_predict_errors(stubs):
    prediction, _, _ = stubs
    request = predict_request([1.0])
    request.model_spec.name = "nope"
    rpc_error(prediction.Predict, request, grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)")
    rpc_error(prediction.Predict, predict_request([1.0], "nope"), grpc.StatusCode.FAILED_PRECONDITION,
              'Serving signature key "nope" not found.')
    rpc_error(prediction.Predict, predict_pb2.PredictRequest(), grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
    request = predict_request([1.0])
    request.inputs["extra"].CopyFrom(tf.make_tensor_proto([1.0]))
    rpc_error(prediction.Predict, request, grpc.StatusCode.INVALID_ARGUMENT,
              "input size does not match signature: 2!=1 len({extra,x}) != len({x}). Sent extra: {extra}. "
              "Missing but required: {}.")
    request = predict_request([1.0])
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(["a"]))
    rpc_error(prediction.Predict, request, grpc.StatusCode.INVALID_ARGUMENT,
              "Expects arg[0] to be float but string is provided")
    request = predict_request([1.0])
    request.output_filter.append("z")
    rpc_error(prediction.Predict, request, grpc.StatusCode.INVALID_ARGUMENT,
              "output tensor alias not found in signature: z Outputs expected to be in the set {y}.")
    request.model_spec.version_label = "stable"
    rpc_error(prediction.Predict, request, grpc.StatusCode.INVALID_ARGUMENT, "Unrecognized servable version label")
    long = predict_request([1.0], "s" * 3000)
    with pytest.raises(grpc.RpcError) as raised:
        prediction.Predict(long)
    assert raised.value.details().endswith("...TRUNCATED") and len(raised.value.details()) == 1024 + 12


def examples_input(target, values):
    for value in values:
        target.example_list.examples.add().features.feature["x"].float_list.value.append(value)


def test_classify_regress_and_multi_inference(stubs):
    prediction, _, _ = stubs
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name, request.model_spec.signature_name = "half", "classify_x_to_y"
    examples_input(request.input, [20.0])
    response = prediction.Classify(request)
    assert [(c.label, c.score) for c in response.result.classifications[0].classes] == [("y", 13.0)]
    request = regression_pb2.RegressionRequest()
    request.model_spec.name, request.model_spec.signature_name = "half", "regress_x_to_y"
    examples_input(request.input, [80.0, 2.0])
    assert [r.value for r in prediction.Regress(request).result.regressions] == [43.0, 4.0]
    request.model_spec.signature_name = "nope"
    rpc_error(prediction.Regress, request, grpc.StatusCode.INVALID_ARGUMENT, "No signature was found with the name: nope")
    multi = inference_pb2.MultiInferenceRequest()
    for signature, method in (("classify_x_to_y", "tensorflow/serving/classify"),
                              ("regress_x_to_y", "tensorflow/serving/regress")):
        task = multi.tasks.add(method_name=method)
        task.model_spec.name, task.model_spec.signature_name = "half", signature
    examples_input(multi.input, [4.0])
    results = prediction.MultiInference(multi).results
    assert results[0].classification_result.classifications[0].classes[0].score == 5.0
    assert results[1].regression_result.regressions[0].value == 5.0
    multi.tasks[1].method_name = "tensorflow/serving/predict"
    rpc_error(prediction.MultiInference, multi, grpc.StatusCode.UNIMPLEMENTED, "Unsupported signature method_name")


def test_metadata_status_reload_and_health(stubs, model_base):
    prediction, models, health = stubs
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "half"
    response = prediction.GetModelMetadata(request)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    assert "regress_x_to_y" in signatures.signature_def and response.model_spec.version.value == 2
    del request.metadata_field[:]
    rpc_error(prediction.GetModelMetadata, request, grpc.StatusCode.INVALID_ARGUMENT,
              "GetModelMetadataRequest must specify at least one metadata_field")
    request.metadata_field.append("other")
    rpc_error(prediction.GetModelMetadata, request, grpc.StatusCode.INVALID_ARGUMENT,
              "Metadata field other is not supported")
    status = get_model_status_pb2.GetModelStatusRequest()
    status.model_spec.name = "half"
    (version,) = models.GetModelStatus(status).model_version_status
    assert version.version == 2 and version.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    # Reload with an "all" policy: version 1 loads too, and a label can then name it.
    reload = model_management_pb2.ReloadConfigRequest()
    config = reload.config.model_config_list.config.add(name="half", base_path=model_base)
    config.model_version_policy.all.SetInParent()
    config.version_labels["stable"] = 1
    assert models.HandleReloadConfigRequest(reload).status.error_code == 0
    assert [v.version for v in models.GetModelStatus(status).model_version_status] == [2, 1]
    labelled = predict_request([1.0])
    labelled.model_spec.version_label = "stable"
    np.testing.assert_allclose(tf.make_ndarray(prediction.Predict(labelled).outputs["y"]), [2.5])
    config.version_labels["canary"] = 9
    rpc_error(models.HandleReloadConfigRequest, reload, grpc.StatusCode.FAILED_PRECONDITION,
              "Request to assign label to version 9 of model half, which is not currently available for inference")
    reload.config.custom_model_config.type_url = "x"
    rpc_error(models.HandleReloadConfigRequest, reload, grpc.StatusCode.INVALID_ARGUMENT,
              "Only ModelConfigList is currently supported")
    for service in ("", "tensorflow.serving.PredictionService"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_the_reload_rpc_is_off_by_default_and_kept_inside_its_root(model_base, tmp_path):
    # The RPC replaces every served model from paths the client names: off unless the server is started with
    # --enable_reload_config_rpc, and then base paths must lie inside the allowed root (by default the directory
    # of the config file, or of the model's base path). Messages name no server path.
    from tests.serving.testdata import half_plus_two

    outside = half_plus_two.build_versions(str(tmp_path / "elsewhere" / "other"), [1])
    request = model_management_pb2.ReloadConfigRequest()
    request.config.model_config_list.config.add(name="half", base_path=model_base)
    for enabled, expected, message in [
        (False, grpc.StatusCode.PERMISSION_DENIED, "HandleReloadConfigRequest is turned off on this server"),
        (True, grpc.StatusCode.PERMISSION_DENIED, "Model other: its base_path is outside the directory this server"),
    ]:
        server = make_server(model_name="half", model_base_path=model_base, enable_reload_config_rpc=enabled).start()
        try:
            with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
                stub = model_service_pb2_grpc.ModelServiceStub(channel)
                attempt = model_management_pb2.ReloadConfigRequest()
                attempt.CopyFrom(request)
                attempt.config.model_config_list.config.add(name="other", base_path=outside)
                with pytest.raises(grpc.RpcError) as raised:
                    stub.HandleReloadConfigRequest(attempt, timeout=60)
                assert raised.value.code() == expected and message in raised.value.details()
                assert str(tmp_path) not in raised.value.details()
                assert server.core.manager.model_names() == ["half"]  # nothing changed
                if enabled:  # inside the root, the same request is served; a symbolic link cannot lead out of it
                    assert stub.HandleReloadConfigRequest(request, timeout=60).status.error_code == 0
                    os.symlink(outside, os.path.join(os.path.dirname(model_base), "link"))
                    attempt.config.model_config_list.config[1].base_path = os.path.join(os.path.dirname(model_base),
                                                                                        "link")
                    with pytest.raises(grpc.RpcError) as raised:
                        stub.HandleReloadConfigRequest(attempt, timeout=60)
                    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
        finally:
            server.stop()
    server = make_server(model_name="half", model_base_path=model_base, enable_reload_config_rpc=True,
                         reload_config_allowed_root="/").start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = model_service_pb2_grpc.ModelServiceStub(channel)
            request.config.model_config_list.config.add(name="other", base_path=outside)
            assert stub.HandleReloadConfigRequest(request, timeout=60).status.error_code == 0
        assert server.core.manager.model_names() == ["half", "other"]
    finally:
        server.stop()


def test_reload_answers_unknown_when_a_model_it_adds_fails_to_load(model_base, tmp_path):
    # TF Serving's ServerCore::ReloadConfig waits for the models a config adds and reports those that did not
    # become available (code UNKNOWN); the version's error names no server path.
    broken = tmp_path / "broken" / "1"
    broken.mkdir(parents=True)
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    server = make_server(model_name="half", model_base_path=model_base, enable_reload_config_rpc=True,
                         reload_config_allowed_root="/").start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            request = model_management_pb2.ReloadConfigRequest()
            request.config.model_config_list.config.add(name="half", base_path=model_base)
            request.config.model_config_list.config.add(name="broken", base_path=str(tmp_path / "broken"))
            with pytest.raises(grpc.RpcError) as raised:
                model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(request, timeout=60)
    finally:
        server.stop()
    assert raised.value.code() == grpc.StatusCode.UNKNOWN
    assert "1 model(s) did not become available: {{{name: broken version: 1} due to error:" in raised.value.details()
    assert str(tmp_path) not in raised.value.details() and "Error:" not in raised.value.details()
