"""python -m serving.server: a TensorFlow-Serving-compatible model server (REST and gRPC).

    python -m serving.server --model_config_file=saved_models/models.config --port=8500 --rest_api_port=8501
    python -m serving.server --model_name=adding --model_base_path=saved_models/adding --rest_api_port=8501

Flags carry tensorflow_model_server's names and defaults wherever it has the flag; --host (default 127.0.0.1: the
server is reachable only from this machine unless told otherwise), the REST body and connection limits and the gRPC
connection limits are this server's own.
serving/README.md lists every difference from TF Serving.
"""

import logging
import os
import signal
import sys

from absl import app
from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow
from training.startup import run

# TensorFlow's C++ runtime warns for many failed runs, one line per refused request: the server logs from ERROR up
# (serving/server/log_limits.py), unless TF_CPP_MIN_LOG_LEVEL says otherwise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import_tensorflow()

from serving.server.errors import ServingError  # noqa: E402
from serving.json_tensor import DEFAULT_MAX_VALUES as DEFAULT_MAX_JSON_VALUES  # noqa: E402
from serving.server.log_limits import limit_server_logs  # noqa: E402
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
flags.DEFINE_integer("rest_api_max_connections", None,
                     "Open REST connections at most; over it, a connection with no request in progress is closed to "
                     "make room, or the new one is answered 503 (default: half the file descriptors, at most 1024).")
flags.DEFINE_integer("rest_api_idle_timeout_in_ms", 30000,
                     "A REST connection that sends nothing this long (before its first request or since its last "
                     "response) is closed.")
flags.DEFINE_integer("rest_api_header_timeout_in_ms", 10000,
                     "A REST request's line and headers must all arrive within this time of their first byte.")
flags.DEFINE_integer("rest_api_body_timeout_in_ms", 60000,
                     "A REST request's body must arrive within this time of its headers (else 408).")
flags.DEFINE_integer("rest_api_max_inflight_body_bytes", None,
                     "Bytes of REST bodies over 64 KiB being received or parsed at once, across connections; more "
                     "is answered 503 (default 4 x --rest_api_max_body_bytes).")
flags.DEFINE_integer("rest_api_max_json_values", DEFAULT_MAX_JSON_VALUES,
                     "Values and keys a REST JSON body may hold; larger bodies are refused before they are parsed.")
flags.DEFINE_integer("grpc_max_threads", None,
                     "Threads serving gRPC (default 4 x CPUs; with batching, at least max_batch_size, up to 256).")
flags.DEFINE_integer("grpc_max_connections", None,
                     "Open gRPC connections at most (gRPC's grpc.max_allowed_incoming_connections; default as for "
                     "REST).")
flags.DEFINE_integer("grpc_max_concurrent_streams", 100, "Concurrent gRPC calls per connection (HTTP/2 streams).")
flags.DEFINE_integer("grpc_max_concurrent_rpcs", 256,
                     "gRPC calls running or queued at once; more are answered RESOURCE_EXHAUSTED.")
flags.DEFINE_integer("grpc_max_receive_message_bytes", 64 * 1024 * 1024,
                     "Largest gRPC request message (TF Serving: 2 GiB).")
flags.DEFINE_integer("grpc_max_connection_idle_ms", 300_000, "A gRPC connection with no call this long is closed.")
flags.DEFINE_integer("grpc_max_connection_age_ms", 3_600_000,
                     "A gRPC connection is closed after this long (clients reconnect), after a grace period.")
flags.DEFINE_integer("grpc_max_connection_age_grace_ms", 60_000,
                     "Time calls in progress get to finish when their connection reaches its maximum age.")
flags.DEFINE_integer("grpc_keepalive_min_ping_interval_ms", 300_000,
                     "Clients pinging more often than this without calls are disconnected (gRPC's keepalive "
                     "enforcement).")
flags.DEFINE_string("grpc_channel_arguments", "",
                    "gRPC channel arguments for the server, key=value separated by commas; they override the above.")
flags.DEFINE_integer("max_num_load_retries", 5, "Retries of a failing version load before it ends in END.")
flags.DEFINE_integer("load_retry_interval_micros", 60 * 1000 * 1000, "Wait between load retries.")
flags.DEFINE_bool("enable_model_warmup", True, "Replay assets.extra/tf_serving_warmup_requests before serving.")
flags.DEFINE_integer("num_request_iterations_for_warmup", 1, "Times each warmup record is replayed.")
flags.DEFINE_bool("allow_version_labels_for_unavailable_models", False, "Allow new labels on versions not loaded.")
flags.DEFINE_bool("enable_grpc_healthcheck_service", False, "Serve grpc.health.v1.")
flags.DEFINE_integer("num_load_threads", 4, "Versions loaded at once (TF Serving: 0, one after another).")
flags.DEFINE_bool("enable_reload_config_rpc", False,
                  "Let clients replace the served models with ModelService/HandleReloadConfigRequest.")
flags.DEFINE_string("reload_config_allowed_root", None,
                    "With --enable_reload_config_rpc, base paths must lie inside this directory (default: the "
                    "config file's directory, or the parent of --model_base_path; / allows any local path).")

_OPTION_FLAGS = (
    "host", "port", "rest_api_port", "model_config_file", "model_name", "model_base_path", "enable_batching",
    "batching_parameters_file", "monitoring_config_file", "file_system_poll_wait_seconds",
    "model_config_file_poll_wait_seconds", "rest_api_timeout_in_ms", "rest_api_num_threads",
    "rest_api_max_body_bytes", "rest_api_enable_cors_support", "rest_api_max_connections",
    "rest_api_idle_timeout_in_ms", "rest_api_header_timeout_in_ms", "rest_api_body_timeout_in_ms",
    "rest_api_max_inflight_body_bytes", "rest_api_max_json_values", "grpc_max_threads", "grpc_max_connections",
    "grpc_max_concurrent_streams", "grpc_max_concurrent_rpcs", "grpc_max_receive_message_bytes",
    "grpc_max_connection_idle_ms", "grpc_max_connection_age_ms", "grpc_max_connection_age_grace_ms",
    "grpc_keepalive_min_ping_interval_ms", "grpc_channel_arguments", "max_num_load_retries",
    "load_retry_interval_micros", "enable_model_warmup", "num_request_iterations_for_warmup",
    "allow_version_labels_for_unavailable_models", "enable_grpc_healthcheck_service", "num_load_threads",
    "enable_reload_config_rpc", "reload_config_allowed_root",
)


def main(argv):
    absl_warnings_only()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.getLogger("serving.server").setLevel(logging.INFO)
    limit_server_logs()
    values = {name: FLAGS[name].value for name in _OPTION_FLAGS if FLAGS[name].value is not None}
    try:
        server = ModelServer(ServerOptions(**values)).start()
    except (ValueError, OSError, ServingError) as error:  # flags or config files that cannot be served
        print(f"error: {error}", file=sys.stderr)
        return 2
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: server.stop())
    rest = f", REST on http://{FLAGS.host}:{server.rest_port}" if server.rest_port else ""
    unavailable = server.core.manager.unavailable_models()
    served = [name for name in server.core.manager.model_names() if name not in unavailable]
    print(f"serving {', '.join(served) or 'no model yet'}: gRPC on {FLAGS.host}:{server.grpc_port}{rest}", flush=True)
    if unavailable:
        # The reasons, in detail, are in the log above; versions that appear later are loaded and served.
        print("not serving " + ", ".join(f"{name} ({why})" for name, why in unavailable.items()), file=sys.stderr,
              flush=True)
    server.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    run(main)
