"""One client for TensorFlow Serving's REST and gRPC APIs (this project's server or the stock one), NumPy in and out.

    client = Client.connect("localhost:8500", protocol="grpc")      # or ("localhost:8501", protocol="rest")
    client.predict("adding", np.zeros((2, 30, 2), "float32"))      # {"sum": array([...])}
    client.regress("adding", [{"x0": [...], "x1": [...]}], signature="regress")
    client.status("adding"); client.metadata("adding")

    python -m serving.client --server=localhost:8500 --protocol=grpc --model=adding --input='[[[0.5, 1.0], ...]]'
    seqzoo-client --server=localhost:8501 --protocol=rest --model=adding --method=status
    seqzoo-client --server=localhost:8501 --protocol=rest --model=speech --wav=one.wav,two.wav   # transcripts

Errors raise `ServingClientError` with the server's code (e.g. "NOT_FOUND") and message, whichever the protocol.
"""

import base64
import json
import sys
import urllib.error
import urllib.request

import numpy as np
from absl import app
from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow
from training.startup import run

FLAGS = flags.FLAGS

_HTTP_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
               409: "ABORTED", 413: "RESOURCE_EXHAUSTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
               501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


class ServingClientError(Exception):
    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _as_inputs(inputs):
    return inputs if isinstance(inputs, dict) else {None: inputs}


class Client:
    """The interface both protocols implement."""

    @staticmethod
    def connect(server, protocol="grpc", timeout=30.0):
        if protocol == "grpc":
            return GrpcClient(server, timeout)
        if protocol == "rest":
            return RestClient(server, timeout)
        raise ValueError(f"protocol must be 'grpc' or 'rest', got {protocol!r}")


class RestClient(Client):
    """Talks JSON over HTTP (standard library only). Predict uses the columnar ("inputs") format."""

    def __init__(self, server, timeout=30.0):
        self.base = server if server.startswith("http") else f"http://{server}"
        self.timeout = timeout
        self._output_names = {}

    def _url(self, model, version=None, label=None, suffix=""):
        where = f"/versions/{version}" if version is not None else f"/labels/{label}" if label else ""
        return f"{self.base}/v1/models/{model}{where}{suffix}"

    def _call(self, url, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            text = error.read().decode("utf-8", errors="replace")
            try:
                message = json.loads(text)["error"]
            except (ValueError, KeyError, TypeError):
                message = text
            raise ServingClientError(_HTTP_CODES.get(error.code, "UNKNOWN"), message) from None
        except urllib.error.URLError as error:
            raise ServingClientError("UNAVAILABLE", f"cannot reach {self.base}: {error.reason}") from None

    def predict(self, model, inputs, signature="", version=None, label=None):
        named = _as_inputs(inputs)
        body = {"inputs": np.asarray(named[None]).tolist() if None in named else
                {k: _jsonable(v) for k, v in named.items()}}
        if signature:
            body["signature_name"] = signature
        outputs = self._call(self._url(model, version, label, ":predict"), body)["outputs"]
        if not isinstance(outputs, dict):
            # A signature with one output answers without its name: ask the metadata for it (once).
            outputs = {self._lone_output(model, signature, version, label): outputs}
        return {k: _from_json(k, v) for k, v in outputs.items()}

    def _lone_output(self, model, signature, version, label):
        key = (model, signature, version, label)
        if key not in self._output_names:
            metadata = self.metadata(model, version, label)
            signature_def = metadata["metadata"]["signature_def"]["signature_def"][signature or "serving_default"]
            (self._output_names[key],) = signature_def["outputs"]
        return self._output_names[key]

    def _examples(self, verb, model, examples, signature, context, version, label):
        body = {"examples": examples}
        if signature:
            body["signature_name"] = signature
        if context is not None:
            body["context"] = context
        return self._call(self._url(model, version, label, f":{verb}"), body)["results"]

    def classify(self, model, examples, signature="", context=None, version=None, label=None):
        results = self._examples("classify", model, examples, signature, context, version, label)
        return [[(label_, score) for label_, score in row] for row in results]

    def regress(self, model, examples, signature="", context=None, version=None, label=None):
        return list(self._examples("regress", model, examples, signature, context, version, label))

    def metadata(self, model, version=None, label=None):
        return self._call(self._url(model, version, label, "/metadata"))

    def status(self, model, version=None):
        return self._call(self._url(model, version))["model_version_status"]


def _jsonable(value):
    if isinstance(value, bytes):
        # Not through NumPy: a bytes scalar there ("S" dtype) loses its trailing NUL bytes, which binary data (a WAV
        # file's last samples) may end with.
        return {"b64": base64.b64encode(value).decode()}
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind == "S":
        return [_jsonable(v) for v in array] if array.ndim else {"b64": base64.b64encode(bytes(array.item())).decode()}
    return array.tolist()


def _from_json(name, value):
    if name.endswith("_bytes"):
        decode = lambda v: base64.b64decode(v["b64"]) if isinstance(v, dict) else [decode(x) for x in v]  # noqa: E731
        return np.array(decode(value), dtype=object)
    return np.asarray(value)


class GrpcClient(Client):
    """Talks protobuf over gRPC with the official tensorflow-serving-api stubs."""

    def __init__(self, server, timeout=30.0):
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self._grpc = grpc
        self.timeout = timeout
        self.channel = grpc.insecure_channel(server, options=[("grpc.max_receive_message_length", 2**31 - 1)])
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def close(self):
        self.channel.close()

    def _rpc(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except self._grpc.RpcError as error:
            raise ServingClientError(error.code().name, error.details()) from None

    @staticmethod
    def _spec(spec, model, signature="", version=None, label=None):
        spec.name = model
        spec.signature_name = signature
        if version is not None:
            spec.version.value = int(version)
        elif label:
            spec.version_label = label

    def predict(self, model, inputs, signature="", version=None, label=None):
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, model, signature, version, label)
        named = _as_inputs(inputs)
        if None in named:
            metadata = self.metadata(model, version, label)
            key = signature or "serving_default"
            if key not in metadata["signature_def"]:
                raise ServingClientError("FAILED_PRECONDITION", f'Serving signature key "{key}" not found.')
            names = list(metadata["signature_def"][key].inputs.keys())
            if len(names) != 1:
                raise ServingClientError("INVALID_ARGUMENT", f"signature {key} takes the inputs {sorted(names)}: "
                                                             "give a dict {name: tensor}")
            named = {names[0]: named[None]}
        for key, value in named.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        response = self._rpc(self.prediction.Predict, request)
        return {key: tf.make_ndarray(value) for key, value in response.outputs.items()}

    def _input(self, request, examples, context):
        from serving.json_tensor import examples_from_json

        parsed, parsed_context = examples_from_json({"examples": examples, **({"context": context} if context else {})})
        if parsed_context is None:
            request.input.example_list.examples.extend(parsed)
        else:
            request.input.example_list_with_context.examples.extend(parsed)
            request.input.example_list_with_context.context.CopyFrom(parsed_context)

    def classify(self, model, examples, signature="", context=None, version=None, label=None):
        from tensorflow_serving.apis import classification_pb2

        request = classification_pb2.ClassificationRequest()
        self._spec(request.model_spec, model, signature, version, label)
        self._input(request, examples, context)
        result = self._rpc(self.prediction.Classify, request).result
        return [[(c.label, c.score) for c in entry.classes] for entry in result.classifications]

    def regress(self, model, examples, signature="", context=None, version=None, label=None):
        from tensorflow_serving.apis import regression_pb2

        request = regression_pb2.RegressionRequest()
        self._spec(request.model_spec, model, signature, version, label)
        self._input(request, examples, context)
        return [r.value for r in self._rpc(self.prediction.Regress, request).result.regressions]

    def metadata(self, model, version=None, label=None):
        """{"model_spec": ModelSpec, "signature_def": {name: SignatureDef}} (protos)."""
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec, model, "", version, label)
        response = self._rpc(self.prediction.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return {"model_spec": response.model_spec, "signature_def": dict(signatures.signature_def)}

    def status(self, model, version=None):
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, model, "", version)
        response = self._rpc(self.models.GetModelStatus, request)
        return json_format.MessageToDict(response, always_print_fields_with_no_presence=True,
                                         preserving_proto_field_name=True)["model_version_status"]


def _print(value):
    def default(item):
        if isinstance(item, np.ndarray):
            return item.tolist()
        if isinstance(item, (np.generic,)):
            return item.item()
        if isinstance(item, bytes):
            return item.decode("utf-8", errors="replace")
        from google.protobuf import json_format

        return json_format.MessageToDict(item, preserving_proto_field_name=True)

    print(json.dumps(value, default=default, indent=1))


def _cli_tensor(value):
    """A --input tensor: strings (UTF-8) when its values are strings, else float32."""
    flat = np.asarray(value, dtype=object).ravel()
    if flat.size and all(isinstance(v, str) for v in flat):
        return np.vectorize(lambda v: v.encode("utf-8"), otypes=[object])(np.asarray(value, dtype=object))
    return np.asarray(value, np.float32)


def define_flags():
    """The flags of `python -m serving.client`. Defined only when the client runs as a program: the library defines
    none, so that it imports next to entry points that have flags of the same names."""
    flags.DEFINE_string("server", "localhost:8500", "host:port of the server's gRPC API or, with --protocol=rest, of "
                                                    "its REST API (TF Serving's ports: 8500 gRPC, 8501 REST).")
    flags.DEFINE_enum("protocol", "grpc", ["grpc", "rest"], "The API to call.")
    flags.DEFINE_string("model", None, "The model's name in the server (required; no default).")
    flags.DEFINE_enum("method", "predict", ["predict", "classify", "regress", "metadata", "status"],
                      "predict: run a signature on tensors; classify, regress: run one on tf.Examples; metadata: the "
                      "model's signatures; status: its versions and their states.")
    flags.DEFINE_string("input", None, "JSON. For predict: a tensor, or {input name: tensor} (a tensor of strings is "
                                       "sent as strings, numbers as float32); for classify and regress: a list of "
                                       "examples, each {feature: value or list of values}. Required by those three "
                                       "methods; no default.")
    flags.DEFINE_list("wav", None, "WAV files (comma-separated) to send as the 'wav' input of predict, their bytes "
                                   "as strings (base64 over REST), instead of --input: a speech model's "
                                   "serving_default transcribes them. No default.")
    flags.DEFINE_string("signature", "", "The signature to call; empty: serving_default.")
    flags.DEFINE_integer("version", None, "The model version to call (default: the latest available).")
    flags.DEFINE_string("label", None, "A version label to call instead of --version (default: none).")
    flags.DEFINE_float("timeout", 30.0, "Seconds to wait for the answer.")
    flags.mark_flag_as_required("model")


def main(argv):
    absl_warnings_only()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.wav:
        if FLAGS.input is not None or FLAGS.method != "predict":
            print("error: --wav sends WAV files to predict: give it without --input, with --method=predict",
                  file=sys.stderr)
            return 2
        try:
            inputs = wav_inputs(FLAGS.wav)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return call_and_print(FLAGS.server, FLAGS.protocol, FLAGS.model, "predict", None, FLAGS.signature,
                              FLAGS.version, FLAGS.label, FLAGS.timeout, inputs=inputs)
    if FLAGS.method in ("predict", "classify", "regress") and FLAGS.input is None:
        print(f"error: --input (or --wav) is required with --method={FLAGS.method}", file=sys.stderr)
        return 2
    try:
        value = json.loads(FLAGS.input) if FLAGS.input is not None else None
    except ValueError as error:
        print(f"error: --input is not JSON: {error}", file=sys.stderr)
        return 2
    return call_and_print(FLAGS.server, FLAGS.protocol, FLAGS.model, FLAGS.method, value, FLAGS.signature,
                          FLAGS.version, FLAGS.label, FLAGS.timeout)


def wav_inputs(paths):
    """{"wav": string tensor [len(paths)]} of the files' bytes: the input of a speech model's serving_default. A
    file that cannot be read, or is not a RIFF WAVE file, is a ValueError naming it (the server checks the rest:
    16 kHz, mono, 16-bit PCM)."""
    contents = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as error:
            raise ValueError(f"cannot read --wav file {path}: {error.strerror}") from error
        if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
            raise ValueError(f"--wav file {path} is not a WAV file (no RIFF/WAVE header); expected 16 kHz mono "
                             "16-bit PCM WAV")
        contents.append(data)
    return {"wav": np.array(contents, dtype=object)}


def call_and_print(server, protocol, model, method="predict", value=None, signature="", version=None, label=None,
                   timeout=30.0, inputs=None):
    """What `python -m serving.client` does once its flags are read: one call, with `value` (the parsed --input) or
    ready `inputs` ({name: array}, e.g. `wav_inputs`), its answer printed as JSON. Returns the exit status: 0, or 1
    when the server answers an error (printed)."""
    if protocol == "grpc":
        import_tensorflow()
    client = Client.connect(server, protocol, timeout)
    try:
        if method == "predict":
            if inputs is None:
                inputs = ({k: _cli_tensor(v) for k, v in value.items()} if isinstance(value, dict)
                          else _cli_tensor(value))
            result = client.predict(model, inputs, signature, version, label)
        elif method in ("classify", "regress"):
            result = getattr(client, method)(model, value, signature, None, version, label)
        elif method == "metadata":
            result = client.metadata(model, version, label)
        else:
            result = client.status(model, version)
    except ServingClientError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    _print(result)
    return 0


if __name__ == "__main__":
    define_flags()
    run(main)
