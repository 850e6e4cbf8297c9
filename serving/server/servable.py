"""Servable: one loaded version of a model: its SignatureDefs, and predict / classify / regress on NumPy values.

A version is loaded the way TF Serving loads it (SavedModelBundle): the `serve` meta graph is imported into a graph
of its own, its variables restored in a TF1 session, and each signature run with `Session.run` on the tensors its
SignatureDef names. So anything stock TF Serving can serve loads here (TF1 builder exports and TF2
`tf.saved_model.save` alike), and an export that only `tf.saved_model.load` could read fails here as it would there.
TF Text ops are registered before loading, as the stock model server links them.
"""

import logging
import math
import os
import threading
import weakref

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the TF Text ops that exported graphs may use)
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import config_pb2
from tensorflow.core.protobuf import saved_model_pb2

from serving.server.errors import ServingError
from serving.server.errors import invalid_argument


class _LoaderDeprecationFilter(logging.Filter):
    """Drops TensorFlow's notice that the TF1 loader is deprecated: it is the loader TF Serving uses, on purpose."""

    def filter(self, record):
        return "saved_model.loader_impl) is deprecated" not in record.getMessage()


logging.getLogger("tensorflow").addFilter(_LoaderDeprecationFilter())

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"

_TF_CODES = {
    tf.errors.CANCELLED: "CANCELLED",
    tf.errors.UNKNOWN: "UNKNOWN",
    tf.errors.INVALID_ARGUMENT: "INVALID_ARGUMENT",
    tf.errors.DEADLINE_EXCEEDED: "DEADLINE_EXCEEDED",
    tf.errors.NOT_FOUND: "NOT_FOUND",
    tf.errors.ALREADY_EXISTS: "ALREADY_EXISTS",
    tf.errors.PERMISSION_DENIED: "PERMISSION_DENIED",
    tf.errors.RESOURCE_EXHAUSTED: "RESOURCE_EXHAUSTED",
    tf.errors.FAILED_PRECONDITION: "FAILED_PRECONDITION",
    tf.errors.ABORTED: "ABORTED",
    tf.errors.OUT_OF_RANGE: "OUT_OF_RANGE",
    tf.errors.UNIMPLEMENTED: "UNIMPLEMENTED",
    tf.errors.INTERNAL: "INTERNAL",
    tf.errors.UNAVAILABLE: "UNAVAILABLE",
    tf.errors.DATA_LOSS: "DATA_LOSS",
    tf.errors.UNAUTHENTICATED: "UNAUTHENTICATED",
}


def from_tf_error(error):
    """A TensorFlow runtime error as a ServingError with the same code and its message (never a traceback)."""
    return ServingError(_TF_CODES.get(error.error_code, "UNKNOWN"), error.message)


def read_signature_defs(path):
    """{name: SignatureDef} of the `serve` meta graph of the SavedModel at `path`."""
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    for meta_graph in proto.meta_graphs:
        if tf.saved_model.SERVING in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ServingError("NOT_FOUND", f"Could not find meta graph def matching supplied tags: {{ serve }} in {path}")


def _shape_list(tensor_info):
    if tensor_info.tensor_shape.unknown_rank:
        return None
    return [d.size for d in tensor_info.tensor_shape.dim]


def _dtype_name(dtype):
    return tf.dtypes.as_dtype(dtype).name.replace("float32", "float").replace("float64", "double")


def filter_outputs(outputs, output_filter):
    """The outputs a checked output filter keeps; all of them when it is empty."""
    return {k: v for k, v in outputs.items() if k in output_filter} if output_filter else outputs


def run_timeout_ms(timeout):
    """A deadline `timeout` (seconds, > 0) as the run's RunOptions.timeout_in_ms: rounded up to one of eight steps
    per power of two (at most 1/8 longer), since every distinct timeout is a Session callable of its own, made
    while other runs wait; exact below 8 ms. The caller still answers at its exact deadline."""
    ms = max(1, math.ceil(timeout * 1000))
    if ms > 8:
        step = 2 ** (ms.bit_length() - 1) // 8
        ms = -(-ms // step) * step
    return min(ms, 2**62)


class Servable:
    """A SavedModel version, loaded and ready to run."""

    def __init__(self, name, version, path):
        self.name = name
        self.version = int(version)
        self.path = path
        self.signature_defs = read_signature_defs(path)
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph)
        # Closed when the last reference goes: requests in flight keep the version alive past its unload.
        weakref.finalize(self, self._session.close)
        try:
            with self._graph.as_default():
                tf.compat.v1.saved_model.loader.load(self._session, [tf.saved_model.SERVING], path)
        except tf.errors.OpError as error:
            raise from_tf_error(error) from None
        except (RuntimeError, ValueError, KeyError) as error:
            raise ServingError("INVALID_ARGUMENT", f"Could not load the SavedModel at {path}: {error}") from None
        self._callables = {}  # (signature, input keys, timeout ms) -> (Session callable, output keys)
        self._callables_lock = threading.Lock()

    def signature(self, name):
        """The SignatureDef called `name` ("" means serving_default), or None."""
        return self.signature_defs.get(name or DEFAULT_SIGNATURE)

    def input_dtypes(self, signature_name):
        return {key: info.dtype for key, info in self.signature(signature_name).inputs.items()}

    def predict(self, signature_name, inputs, output_filter=(), timeout=None):
        """Runs a signature on {input key: np.ndarray}; returns {output key: np.ndarray}.

        The inputs must be exactly the signature's, with its dtypes and compatible shapes; errors are TF Serving's.
        `timeout` (seconds) becomes the run's `RunOptions.timeout_in_ms`, as TF Serving turns a request's deadline
        into one: a run past it fails with DEADLINE_EXCEEDED.
        """
        name = signature_name or DEFAULT_SIGNATURE
        signature = self.signature(name)
        self.check_input_names(name, inputs)
        for index, key in enumerate(sorted(signature.inputs)):
            info = signature.inputs[key]
            value = inputs[key]
            want = tf.dtypes.as_dtype(info.dtype)
            have = tf.dtypes.as_dtype(value.dtype) if value.dtype != object else tf.string
            if have != want:
                raise invalid_argument(
                    f"Expects arg[{index}] to be {_dtype_name(want)} but {_dtype_name(have)} is provided"
                )
            shape = _shape_list(info)
            if shape is not None and (
                len(shape) != value.ndim or any(s not in (-1, d) for s, d in zip(shape, value.shape))
            ):
                wanted = "[" + ",".join("?" if s == -1 else str(s) for s in shape) + "]"
                raise invalid_argument(
                    f"input {key} has shape [{','.join(str(d) for d in value.shape)}] but the signature "
                    f"{name} expects {wanted}"
                )
        self.check_output_filter(name, output_filter)
        return filter_outputs(self._call(name, inputs, timeout), output_filter)

    def check_input_names(self, signature_name, names):
        """TF Serving's error unless `names` are exactly the signature's inputs (checked before any tensor is
        decoded, as TF Serving does)."""
        expected = set(self.signature(signature_name).inputs)
        sent = set(names)
        if sent != expected:
            raise invalid_argument(
                f"input size does not match signature: {len(sent)}!={len(expected)} len({{{','.join(sorted(sent))}}})"
                f" != len({{{','.join(sorted(expected))}}}). Sent extra: {{{','.join(sorted(sent - expected))}}}. "
                f"Missing but required: {{{','.join(sorted(expected - sent))}}}."
            )

    def check_output_filter(self, signature_name, output_filter):
        """TF Serving's errors for an output filter naming an alias twice or one the signature lacks (before any
        run)."""
        outputs = self.signature(signature_name).outputs
        seen = set()
        for alias in output_filter:
            if alias not in outputs:
                raise invalid_argument(
                    f"output tensor alias not found in signature: {alias} Outputs expected to be in the set "
                    f"{{{','.join(sorted(outputs))}}}."
                )
            if alias in seen:
                raise invalid_argument(f"duplicate output tensor alias: {alias}")
            seen.add(alias)

    def _callable(self, name, keys, timeout_ms):
        """A Session callable feeding the signature's `keys` inputs (in that order), fetching all its outputs, with
        RunOptions.timeout_in_ms `timeout_ms` (None: none): (callable, output keys), made once per combination.

        Built from CallableOptions, as TF Serving's C++ Session::Run takes feeds and fetches by name: the public
        `make_callable` with a feed list goes through `Session.run`'s generic feed and fetch handling instead, a Python
        cost paid on every call.
        """
        found = self._callables.get((name, keys, timeout_ms))
        if found is None:
            with self._callables_lock:
                found = self._callables.get((name, keys, timeout_ms))
                if found is not None:  # made by another thread meanwhile
                    return found
                signature = self.signature(name)
                outputs = tuple(sorted(signature.outputs))
                options = config_pb2.CallableOptions()
                options.feed.extend(signature.inputs[key].name for key in keys)
                options.fetch.extend(signature.outputs[key].name for key in outputs)
                if timeout_ms is not None:
                    options.run_options.timeout_in_ms = timeout_ms
                found = self._session._make_callable_from_options(options), outputs
                self._callables[(name, keys, timeout_ms)] = found
        return found

    def _call(self, name, inputs, timeout=None):
        keys = tuple(sorted(inputs))
        timeout_ms = None
        if timeout is not None:
            if timeout <= 0:
                raise ServingError("DEADLINE_EXCEEDED", "Deadline Exceeded")
            timeout_ms = run_timeout_ms(timeout)
        try:
            run, outputs = self._callable(name, keys, timeout_ms)
            results = run(*(np.ascontiguousarray(inputs[key]) for key in keys))
        except tf.errors.OpError as error:
            raise from_tf_error(error) from None
        except (TypeError, ValueError) as error:
            raise invalid_argument(str(error).split("\n")[0]) from None
        return dict(zip(outputs, results))

    def _example_signature(self, signature_name, method):
        name = signature_name or DEFAULT_SIGNATURE
        signature = self.signature(name)
        if signature is None:
            raise invalid_argument(f"No signature was found with the name: {name}")
        if "inputs" not in signature.inputs or len(signature.inputs) != 1:
            raise invalid_argument(f"Expected one input Tensor named 'inputs' in the {method} signature {name}")
        if signature.inputs["inputs"].dtype != types_pb2.DT_STRING:
            raise invalid_argument(f"The {method} signature {name} must take serialized tf.Examples (DT_STRING)")
        return name, signature

    def classify(self, signature_name, serialized_examples, timeout=None):
        """Per example, a list of (label bytes or None, score or None), from the `classes` / `scores` outputs."""
        name, signature = self._example_signature(signature_name, "classification")
        if not set(signature.outputs) & {"classes", "scores"}:
            raise invalid_argument(f"Expected classification signature outputs 'classes' and/or 'scores' in {name}")
        if not serialized_examples:
            raise invalid_argument("Input is empty.")
        outputs = self._call(name, {"inputs": np.array(serialized_examples, dtype=object)}, timeout)
        classes, scores = outputs.get("classes"), outputs.get("scores")
        batch = len(serialized_examples)
        for key, value in (("classes", classes), ("scores", scores)):
            if value is not None and (value.ndim != 2 or value.shape[0] != batch):
                raise invalid_argument(f"Expected Tensor shape: [{batch} N] but got {list(value.shape)} for {key}")
        width = (classes if classes is not None else scores).shape[1]
        return [
            [
                (None if classes is None else classes[i, j], None if scores is None else float(scores[i, j]))
                for j in range(width)
            ]
            for i in range(batch)
        ]

    def regress(self, signature_name, serialized_examples, timeout=None):
        """One float per example, from the `outputs` output ([batch] or [batch, 1])."""
        name, signature = self._example_signature(signature_name, "regression")
        if "outputs" not in signature.outputs:
            raise invalid_argument(f"Expected regression signature output 'outputs' in {name}")
        if not serialized_examples:
            raise invalid_argument("Input is empty.")
        values = self._call(name, {"inputs": np.array(serialized_examples, dtype=object)}, timeout)["outputs"]
        batch = len(serialized_examples)
        if values.shape not in ((batch,), (batch, 1)):
            raise invalid_argument(f"Expected output Tensor shape to be either [{batch}] or [{batch} 1] but got "
                                   f"{list(values.shape)}")
        return [float(v) for v in values.reshape(-1)]
