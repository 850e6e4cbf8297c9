"""python -m serving.server: a TensorFlow-Serving-compatible model server (REST and gRPC).

    python -m serving.server --model_config_file=saved_models/models.config --port=8500 --rest_api_port=8501
    python -m serving.server --model_name=adding --model_base_path=saved_models/adding --rest_api_port=8501

Flags carry tensorflow_model_server's names and defaults wherever it has the flag; --host (default 127.0.0.1: the
server is reachable only from this machine unless told otherwise) and --rest_api_max_body_bytes are this server's own.
serving/README.md lists every difference from TF Serving.
"""

import logging
import signal
import sys

from absl import app
from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow

import_tensorflow()

from serving.server.server import ModelServer  # noqa: E402
from serving.server.server import ServerOptions  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("host", "127.0.0.1", "Address the gRPC and REST servers bind (0.0.0.0 for every interface).")
flags.DEFINE_integer("port", 8500, "gRPC port.")
flags.DEFINE_integer("rest_api_port", 0, "REST port; 0 turns REST off.")
flags.DEFINE_string("model_config_file", None, "A text-format ModelServerConfig (models.config).")
flags.DEFINE_string("model_name", "default", "The model's name, with --model_base_path.")
flags.DEFINE_string("model_base_path", None, "A single model's base path (instead of --model_config_file).")
flags.DEFINE_bool("enable_batching", False, "Batch concurrent Predict requests.")
flags.DEFINE_string("batching_parameters_file", None, "A text-format BatchingParameters file (needs --enable_batching).")
flags.DEFINE_string("monitoring_config_file", None, "A text-format MonitoringConfig (Prometheus page on the REST port).")
flags.DEFINE_float("file_system_poll_wait_seconds", 1.0, "How often base paths are polled for versions (0: once).")
flags.DEFINE_float("model_config_file_poll_wait_seconds", 0.0, "How often the config file is reread (0: never).")
flags.DEFINE_integer("rest_api_timeout_in_ms", 30000, "Deadline of a REST request.")
flags.DEFINE_integer("rest_api_num_threads", None, "Threads running REST requests (default 4 x CPUs).")
flags.DEFINE_integer("rest_api_max_body_bytes", 64 * 1024 * 1024, "Largest REST request body; larger ones get 413.")
flags.DEFINE_bool("rest_api_enable_cors_support", False, "Answer CORS preflights and add CORS headers.")
flags.DEFINE_integer("grpc_max_threads", None,
                     "Threads serving gRPC (default 4 x CPUs; with batching, at least max_batch_size, up to 256).")
flags.DEFINE_integer("max_num_load_retries", 5, "Retries of a failing version load before it ends in END.")
flags.DEFINE_integer("load_retry_interval_micros", 60 * 1000 * 1000, "Wait between load retries.")
flags.DEFINE_bool("enable_model_warmup", True, "Replay assets.extra/tf_serving_warmup_requests before serving.")
flags.DEFINE_integer("num_request_iterations_for_warmup", 1, "Times each warmup record is replayed.")
flags.DEFINE_bool("allow_version_labels_for_unavailable_models", False, "Allow new labels on versions not loaded.")
flags.DEFINE_bool("enable_grpc_healthcheck_service", False, "Serve grpc.health.v1.")

_OPTION_FLAGS = (
    "host", "port", "rest_api_port", "model_config_file", "model_name", "model_base_path", "enable_batching",
    "batching_parameters_file", "monitoring_config_file", "file_system_poll_wait_seconds",
    "model_config_file_poll_wait_seconds", "rest_api_timeout_in_ms", "rest_api_num_threads",
    "rest_api_max_body_bytes", "rest_api_enable_cors_support", "grpc_max_threads", "max_num_load_retries",
    "load_retry_interval_micros", "enable_model_warmup", "num_request_iterations_for_warmup",
    "allow_version_labels_for_unavailable_models", "enable_grpc_healthcheck_service",
)


def main(argv):
    absl_warnings_only()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.getLogger("serving.server").setLevel(logging.INFO)
    values = {name: FLAGS[name].value for name in _OPTION_FLAGS if FLAGS[name].value is not None}
    try:
        server = ModelServer(ServerOptions(**values)).start()
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: server.stop())
    rest = f", REST on http://{FLAGS.host}:{server.rest_port}" if server.rest_port else ""
    print(f"serving {', '.join(server.core.manager.model_names())}: gRPC on {FLAGS.host}:{server.grpc_port}{rest}",
          flush=True)
    server.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    app.run(main)
