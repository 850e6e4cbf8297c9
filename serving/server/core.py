"""ServerCore: what the REST and gRPC front ends share: the models, the optional batcher, metrics, and warmup."""

import logging
import os
import time

import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import prediction_log_pb2

from serving.server import api
from serving.server.errors import ServingError
from serving.server.servable import from_tf_error

log = logging.getLogger("serving.server")

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000


class ServerCore:
    def __init__(self, metrics, batcher=None):
        self.metrics = metrics
        self.batcher = batcher
        self.manager = None  # set once the manager exists (it needs `warmup` from here first)

    def run_predict(self, servable, signature, inputs, output_filter=()):
        """Predict through the batcher when batching is on; records the runtime latency."""
        start = time.perf_counter()
        run = self.batcher.predict if self.batcher is not None else _direct
        outputs = run(servable, signature, inputs, output_filter)
        self.metrics.record_runtime(servable.name, "Predict", time.perf_counter() - start)
        return outputs

    def call(self, model_name, api_name, entrypoint, function):
        """Runs `function()`, recording the request's count and latency under TF Serving's metric names."""
        start = time.perf_counter()
        status = "OK"
        try:
            return function()
        except ServingError as error:
            status = error.code
            raise
        except tf.errors.OpError as error:
            converted = from_tf_error(error)
            status = converted.code
            raise converted from None
        finally:
            self.metrics.record_request(model_name or "", api_name, entrypoint, status, time.perf_counter() - start)


def _direct(servable, signature, inputs, output_filter):
    return servable.predict(signature, inputs, output_filter)


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
