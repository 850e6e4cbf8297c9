"""ServerCore: what the REST and gRPC front ends share: the models, the optional batcher, metrics, and warmup."""

import asyncio
import contextlib
import logging
import os
import time

import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import prediction_log_pb2

from serving.server import api
from serving.server import tensor_proto
from serving.server.errors import ServingError
from serving.server.servable import filter_outputs
from serving.server.servable import from_tf_error

log = logging.getLogger("serving.server")

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000


class ServerCore:
    def __init__(self, metrics, batcher=None, max_tensor_bytes=tensor_proto.DEFAULT_MAX_BYTES):
        self.metrics = metrics
        self.batcher = batcher
        self.max_tensor_bytes = max_tensor_bytes  # what a gRPC request's tensors may decode to, together
        self.manager = None  # set once the manager exists (it needs `warmup` from here first)

    def run_predict(self, servable, signature, inputs, output_filter=(), timeout=None):
        """Predict through the batcher when batching is on; records the runtime latency.

        `timeout` (seconds, None for none) is the request's deadline: the run's RunOptions timeout, or how long to
        wait for the batch.
        """
        start = time.perf_counter()
        if self.batcher is not None:
            servable.check_output_filter(signature, output_filter)
            outputs = filter_outputs(self.batcher.predict(servable, signature, inputs, timeout), output_filter)
        else:
            outputs = servable.predict(signature, inputs, output_filter, timeout)
        self.metrics.record_runtime(servable.name, "Predict", time.perf_counter() - start)
        return outputs

    async def run_predict_async(self, servable, signature, inputs, output_filter=(), timeout=None):
        """`run_predict` for a caller on an event loop: with batching, the loop waits for the batch without blocking
        (so one loop can put many requests into it); without, the run happens right here, as a REST thread of TF
        Serving runs it."""
        if self.batcher is None:
            return self.run_predict(servable, signature, inputs, output_filter, timeout)
        start = time.perf_counter()
        servable.check_output_filter(signature, output_filter)
        future = asyncio.wrap_future(self.batcher.submit(servable, signature, inputs, timeout))
        try:
            outputs = filter_outputs(await asyncio.wait_for(future, timeout), output_filter)
        except asyncio.TimeoutError:
            raise ServingError("DEADLINE_EXCEEDED", "Deadline Exceeded") from None
        self.metrics.record_runtime(servable.name, "Predict", time.perf_counter() - start)
        return outputs

    @contextlib.contextmanager
    def request(self, model_name, api_name, entrypoint):
        """Around one request: records its count and latency under TF Serving's metric names (a model the config
        does not have is counted under the model name ""), and turns a TensorFlow error into the ServingError with
        its code."""
        start = time.perf_counter()
        status = "OK"
        try:
            yield
        except ServingError as error:
            status = error.code
            raise
        except tf.errors.OpError as error:
            converted = from_tf_error(error)
            status = converted.code
            raise converted from None
        except Exception:
            status = "INTERNAL"
            raise
        finally:
            self.metrics.record_request(self._label(model_name), api_name, entrypoint, status,
                                        time.perf_counter() - start)

    def _label(self, model_name):
        """The metrics label of a request's model: its name if the config has it, else "" (labels from whatever
        names clients send would grow the metrics page without bound)."""
        return model_name if self.manager is not None and self.manager.has_model(model_name) else ""

    def call(self, model_name, api_name, entrypoint, function):
        """Runs `function()` as one request (see `request`)."""
        with self.request(model_name, api_name, entrypoint):
            return function()


def warmup(servable, iterations=1):
    """Replays the version's assets.extra/tf_serving_warmup_requests (PredictionLog TFRecords), as TF Serving does.

    A missing file is fine; a corrupt file, more than 1000 records, an unsupported log type or a failing request
    fails the load.
    """
    path = os.path.join(servable.path, WARMUP_FILE)
    if not os.path.exists(path):
        return 0
    records = []
    try:
        for record in tf.data.TFRecordDataset(path):
            records.append(record.numpy())
            if len(records) > MAX_WARMUP_RECORDS:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}",
                )
    except tf.errors.OpError as error:
        raise from_tf_error(error) from None
    for index, raw in enumerate(records):
        try:
            entry = prediction_log_pb2.PredictionLog.FromString(raw)
        except DecodeError:
            raise ServingError("DATA_LOSS", f"warmup record {index} of {path} is not a PredictionLog") from None
        kind = entry.WhichOneof("log_type")
        for _ in range(iterations):
            if kind == "predict_log":
                api.predict(servable, entry.predict_log.request)
            elif kind == "classify_log":
                api.classify(servable, entry.classify_log.request)
            elif kind == "regress_log":
                api.regress(servable, entry.regress_log.request)
            elif kind == "multi_inference_log":
                request = entry.multi_inference_log.request
                examples = api.serialized_examples(request.input)
                for task in request.tasks:
                    run = servable.classify if task.method_name == api.CLASSIFY_METHOD else servable.regress
                    run(task.model_spec.signature_name, examples)
            else:
                raise ServingError("UNIMPLEMENTED", f"Unsupported log_type for warmup: {kind}")
    log.info("model %s version %d: replayed %d warmup records", servable.name, servable.version, len(records))
    return len(records)
