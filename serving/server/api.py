"""The model-server API on the official tensorflow-serving-api protos, shared by the gRPC front end and warmup.

ModelSpec resolution, Predict, Classify, Regress, MultiInference, GetModelMetadata and GetModelStatus, with TF
Serving's checks and messages. The REST front end reuses the resolution, status and metadata parts.
"""

import numpy as np
import tensorflow as tf
from google.protobuf import wrappers_pb2
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import tensor_shape_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import regression_pb2
from tensorflow_serving.apis import status_pb2

from serving.server import tensor_proto
from serving.server.errors import ServingError
from serving.server.errors import invalid_argument
from serving.server.servable import CLASSIFY_METHOD
from serving.server.servable import DEFAULT_SIGNATURE
from serving.server.servable import REGRESS_METHOD

_STATE_NUMBERS = {"UNKNOWN": 0, "START": 10, "LOADING": 20, "AVAILABLE": 30, "UNLOADING": 40, "END": 50}
_ERROR_CODES = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9, "ABORTED": 10,
    "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}


def _checked_spec(request):
    """The request's ModelSpec, with TF Serving's errors when it is missing or names no model."""
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    if not request.model_spec.name:
        raise invalid_argument("ModelSpec has no name specified.")
    return request.model_spec


def resolve(manager, request):
    """The servable a request's model_spec names."""
    spec = _checked_spec(request)
    choice = spec.WhichOneof("version_choice")
    return manager.servable(
        spec.name,
        version=spec.version.value if choice == "version" else None,
        label=spec.version_label if choice == "version_label" else None,
    )


def model_spec(servable, signature_name):
    return model_pb2.ModelSpec(
        name=servable.name, version=wrappers_pb2.Int64Value(value=servable.version), signature_name=signature_name
    )


# Tensors.


def to_tensor_proto(array):
    """A TensorProto with typed *_val fields, as TF Serving writes Predict outputs by default."""
    array = np.asarray(array)
    proto = tensor_pb2.TensorProto(
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape]
        )
    )
    flat = array.reshape(-1)
    if array.dtype == object or array.dtype.kind in "SU":
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode("utf-8") for v in flat.tolist())
        return proto
    proto.dtype = tf.dtypes.as_dtype(array.dtype).as_datatype_enum
    field = {
        np.float32: "float_val", np.float64: "double_val", np.int32: "int_val", np.int16: "int_val",
        np.int8: "int_val", np.uint8: "int_val", np.uint16: "int_val", np.int64: "int64_val",
        np.uint32: "uint32_val", np.uint64: "uint64_val", np.bool_: "bool_val",
    }.get(array.dtype.type)
    if array.dtype == np.float16:
        proto.half_val.extend(flat.view(np.uint16).tolist())
    elif field is None:
        raise ServingError("INTERNAL", f"cannot serialize an output of type {array.dtype}")
    else:
        getattr(proto, field).extend(flat.tolist())
    return proto


# Predict, Classify, Regress, MultiInference.


def predict(servable, request, run=None, max_tensor_bytes=tensor_proto.DEFAULT_MAX_BYTES):
    """A PredictResponse; `run(servable, signature, inputs, output_filter)` defaults to `servable.predict`. The
    request's tensors may decode to `max_tensor_bytes` together (checked before they are allocated)."""
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    if servable.signature(name) is None:
        raise ServingError("FAILED_PRECONDITION", f'Serving signature key "{name}" not found.')
    servable.check_input_names(name, request.inputs)
    inputs = tensor_proto.to_ndarrays(request.inputs, max_tensor_bytes)
    run = run or (lambda s, n, i, f: s.predict(n, i, f))  # (servable, signature name, inputs, output filter)
    outputs = run(servable, name, inputs, list(request.output_filter))
    response = predict_pb2.PredictResponse(model_spec=model_spec(servable, name))
    for key, value in outputs.items():
        response.outputs[key].CopyFrom(to_tensor_proto(value))
    return response


def serialized_examples(input_proto):
    """The serialized tf.Examples of an Input proto; with a context, the context's bytes come first (proto merge)."""
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        return [e.SerializeToString() for e in input_proto.example_list.examples]
    if kind == "example_list_with_context":
        context = input_proto.example_list_with_context.context.SerializeToString()
        return [context + e.SerializeToString() for e in input_proto.example_list_with_context.examples]
    raise invalid_argument("Input is empty.")


def classify(servable, request, timeout=None):
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    results = servable.classify(name, serialized_examples(request.input), timeout)
    response = classification_pb2.ClassificationResponse(model_spec=model_spec(servable, name))
    fill_classifications(response.result, results)
    return response


def fill_classifications(result, classifications):
    for classes in classifications:
        entry = result.classifications.add()
        for label, score in classes:
            item = entry.classes.add()
            if label is not None:
                item.label = label.decode("utf-8", errors="replace") if isinstance(label, bytes) else str(label)
            if score is not None:
                item.score = score


def regress(servable, request, timeout=None):
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    values = servable.regress(name, serialized_examples(request.input), timeout)
    response = regression_pb2.RegressionResponse(model_spec=model_spec(servable, name))
    for value in values:
        response.result.regressions.add(value=value)
    return response


def multi_inference(manager, request):
    """Runs classify / regress tasks that share one model and one Input."""
    if not request.tasks:
        raise invalid_argument("MultiInferenceRequest must contain at least one task")
    names = {task.model_spec.name for task in request.tasks}
    if len(names) != 1:
        raise invalid_argument("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
    signatures = [task.model_spec.signature_name or DEFAULT_SIGNATURE for task in request.tasks]
    if len(set(signatures)) != len(signatures):
        raise invalid_argument("Duplicate evaluation of signature")
    examples = serialized_examples(request.input)
    response = inference_pb2.MultiInferenceResponse()
    for task, signature_name in zip(request.tasks, signatures):
        servable = resolve(manager, task)
        result = response.results.add(model_spec=model_spec(servable, signature_name))
        if task.method_name == CLASSIFY_METHOD:
            fill_classifications(result.classification_result, servable.classify(signature_name, examples))
        elif task.method_name == REGRESS_METHOD:
            for value in servable.regress(signature_name, examples):
                result.regression_result.regressions.add(value=value)
        else:
            raise ServingError("UNIMPLEMENTED", f"Unsupported signature method_name: {task.method_name}")
    return response


# Metadata and status.


def model_metadata(servable, request):
    if not request.metadata_field:
        raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
    for field in request.metadata_field:
        if field != "signature_def":
            raise invalid_argument(f"Metadata field {field} is not supported")
    response = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=model_spec(servable, ""))
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for key, signature in servable.signature_defs.items():
        signatures.signature_def[key].CopyFrom(signature)
    response.metadata["signature_def"].Pack(signatures)
    return response


def model_status(manager, request):
    spec = _checked_spec(request)
    version = spec.version.value if spec.WhichOneof("version_choice") == "version" else None
    response = get_model_status_pb2.GetModelStatusResponse()
    for number, state, code, message in manager.status(spec.name, version):
        response.model_version_status.add(
            version=number,
            state=_STATE_NUMBERS[state],
            status=status_pb2.StatusProto(error_code=_ERROR_CODES.get(code, 2), error_message=message),
        )
    return response
