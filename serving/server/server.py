"""ModelServer: the model manager, the gRPC server and the REST server, started and stopped together."""

import gc
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import uvicorn
from tensorflow_serving.config import model_server_config_pb2

from serving.server import config_files
from serving.server.batching import Batcher
from serving.server.connections import ConnectionGuard
from serving.server.connections import default_max_connections
from serving.server.core import ServerCore
from serving.server.core import warmup
from serving.server.grpc_service import ReloadPolicy
from serving.server.grpc_service import add_services
from serving.json_tensor import DEFAULT_MAX_VALUES as DEFAULT_MAX_JSON_VALUES
from serving.server.metrics import Metrics
from serving.server.model_manager import ModelManager
from serving.server.rest import RestApp
from serving.server.rest import RestOptions

log = logging.getLogger("serving.server")

_GRPC_MAX_MESSAGE = 2**31 - 1  # TF Serving's server allows INT32_MAX bytes
_MAX_DEFAULT_GRPC_THREADS = 256
_POSITIVE = (
    "grpc_max_threads", "rest_api_num_threads", "rest_api_max_body_bytes", "rest_api_max_connections",
    "rest_api_idle_timeout_in_ms", "rest_api_header_timeout_in_ms", "rest_api_body_timeout_in_ms",
    "rest_api_max_inflight_body_bytes", "rest_api_max_json_values", "grpc_max_connections",
    "grpc_max_concurrent_streams", "grpc_max_concurrent_rpcs", "grpc_max_receive_message_bytes",
    "grpc_max_connection_idle_ms", "grpc_max_connection_age_ms", "grpc_max_connection_age_grace_ms",
    "grpc_keepalive_min_ping_interval_ms",
)


class ServerOptions:
    """The server's settings, named after tensorflow_model_server's flags (see python -m serving.server --help)."""

    def __init__(self, **values):
        cpus = os.cpu_count() or 1
        self.host = "127.0.0.1"
        self.port = 8500
        self.rest_api_port = 0
        self.model_config_file = None
        self.model_name = "default"
        self.model_base_path = None
        self.enable_batching = False
        self.batching_parameters_file = None
        self.monitoring_config_file = None
        self.file_system_poll_wait_seconds = 1.0
        self.model_config_file_poll_wait_seconds = 0.0
        self.rest_api_timeout_in_ms = 30000
        self.rest_api_num_threads = 4 * cpus
        self.rest_api_max_body_bytes = 64 * 1024 * 1024
        self.rest_api_enable_cors_support = False
        self.rest_api_max_connections = None  # connections.default_max_connections()
        self.rest_api_idle_timeout_in_ms = 30000
        self.rest_api_header_timeout_in_ms = 10000
        self.rest_api_body_timeout_in_ms = 60000
        self.rest_api_max_inflight_body_bytes = None  # 4 x rest_api_max_body_bytes
        self.rest_api_max_json_values = DEFAULT_MAX_JSON_VALUES
        self.grpc_max_threads = None  # 4 x CPUs; with batching, enough for a full batch (see grpc_threads)
        self.grpc_max_connections = None  # connections.default_max_connections()
        self.grpc_max_concurrent_streams = 100
        self.grpc_max_concurrent_rpcs = 256
        self.grpc_max_receive_message_bytes = 64 * 1024 * 1024
        self.grpc_max_connection_idle_ms = 300_000
        self.grpc_max_connection_age_ms = 3_600_000
        self.grpc_max_connection_age_grace_ms = 60_000
        self.grpc_keepalive_min_ping_interval_ms = 300_000
        self.grpc_channel_arguments = ""
        self.num_load_threads = 4
        self.enable_reload_config_rpc = False
        self.reload_config_allowed_root = None  # the config file's directory, or the parent of model_base_path
        self.max_num_load_retries = 5
        self.load_retry_interval_micros = 60 * 1000 * 1000
        self.enable_model_warmup = True
        self.num_request_iterations_for_warmup = 1
        self.allow_version_labels_for_unavailable_models = False
        self.enable_grpc_healthcheck_service = False
        for key, value in values.items():
            if not hasattr(self, key):
                raise ValueError(f"unknown server option {key!r}")
            setattr(self, key, value)
        self.validate()

    def validate(self):
        if bool(self.model_config_file) == bool(self.model_base_path):
            raise ValueError("give exactly one of --model_config_file and --model_base_path")
        if self.batching_parameters_file and not self.enable_batching:
            raise ValueError("--batching_parameters_file needs --enable_batching")
        if self.rest_api_port and self.rest_api_port == self.port:
            raise ValueError(f"--rest_api_port must differ from --port (both are {self.port})")
        if self.num_load_threads < 0:
            raise ValueError(f"--num_load_threads must be 0 or more, got {self.num_load_threads}")
        for name in _POSITIVE:
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"--{name} must be positive, got {getattr(self, name)}")
        self.grpc_options()  # checks --grpc_channel_arguments

    def grpc_options(self):
        """gRPC core's channel arguments for the server: its limits, then --grpc_channel_arguments (k=v,...), which
        may override any of them, as in TF Serving."""
        options = {
            "grpc.max_receive_message_length": self.grpc_max_receive_message_bytes,
            "grpc.max_send_message_length": _GRPC_MAX_MESSAGE,
            "grpc.max_allowed_incoming_connections": self.grpc_max_connections or default_max_connections(),
            "grpc.max_concurrent_streams": self.grpc_max_concurrent_streams,
            "grpc.max_connection_idle_ms": self.grpc_max_connection_idle_ms,
            "grpc.max_connection_age_ms": self.grpc_max_connection_age_ms,
            "grpc.max_connection_age_grace_ms": self.grpc_max_connection_age_grace_ms,
            "grpc.http2.min_ping_interval_without_data_ms": self.grpc_keepalive_min_ping_interval_ms,
            "grpc.http2.max_ping_strikes": 2,
            "grpc.keepalive_permit_without_calls": 0,
        }
        for item in filter(None, (part.strip() for part in self.grpc_channel_arguments.split(","))):
            key, equals, value = item.partition("=")
            if not equals or not key.strip():
                raise ValueError(f"--grpc_channel_arguments takes key=value pairs separated by commas, got {item!r}")
            value = value.strip()
            options[key.strip()] = int(value) if value.lstrip("-").isdigit() else value
        return list(options.items())

    def grpc_threads(self, max_batch_size=None):
        """The gRPC thread pool's size: --grpc_max_threads, else TF Serving's 4 x CPUs, raised with batching to the
        batch size (at most _MAX_DEFAULT_GRPC_THREADS): each thread waits for its request's batch, so a batch never
        holds more requests than there are threads."""
        if self.grpc_max_threads:
            return self.grpc_max_threads
        threads = 4 * (os.cpu_count() or 1)
        if max_batch_size:
            threads = max(threads, min(max_batch_size, _MAX_DEFAULT_GRPC_THREADS))
        return threads

    def model_server_config(self):
        """(ModelServerConfig, directory relative base paths resolve against)."""
        if self.model_config_file:
            path = os.path.abspath(self.model_config_file)
            return config_files.read_model_server_config(path), os.path.dirname(path)
        config = model_server_config_pb2.ModelServerConfig()
        config.model_config_list.config.add(
            name=self.model_name, base_path=os.path.abspath(self.model_base_path), model_platform="tensorflow"
        )
        return config, None


class ModelServer:
    """Serves the models of `options` over gRPC (`port`) and REST (`rest_api_port`, when not 0).

    The constructor loads the models (as TF Serving does before it opens its ports); `start` opens the ports;
    `grpc_port` and `rest_port` are the bound ports (`port=0` picks a free gRPC port).
    """

    def __init__(self, options):
        self.options = options
        self.metrics = Metrics()
        batcher = None
        if options.enable_batching:
            parameters = (
                config_files.read_batching_parameters(options.batching_parameters_file)
                if options.batching_parameters_file
                else config_files.BatchingParameters()
            )
            batcher = Batcher(parameters, self.metrics)
        self.core = ServerCore(self.metrics, batcher, max_tensor_bytes=options.grpc_max_receive_message_bytes)
        config, config_dir = options.model_server_config()
        self._config_dir = config_dir
        self._config_text = config.SerializeToString()
        replay = None
        if options.enable_model_warmup:
            iterations = options.num_request_iterations_for_warmup
            replay = lambda servable: warmup(servable, iterations)  # noqa: E731
        self.core.manager = ModelManager(
            config,
            config_dir=config_dir,
            poll_seconds=options.file_system_poll_wait_seconds,
            max_load_retries=options.max_num_load_retries,
            load_retry_seconds=options.load_retry_interval_micros / 1e6,
            warmup=replay,
            allow_labels_for_unavailable=options.allow_version_labels_for_unavailable_models,
            num_load_threads=options.num_load_threads,
        )
        self.reload_policy = ReloadPolicy(
            enabled=options.enable_reload_config_rpc,
            allowed_root=options.reload_config_allowed_root or config_dir
            or os.path.dirname(os.path.abspath(options.model_base_path)),
            config_dir=config_dir,
        )
        monitoring_path = (
            config_files.read_monitoring_config(options.monitoring_config_file)
            if options.monitoring_config_file
            else None
        )
        self.rest_app = RestApp(
            self.core,
            RestOptions(
                timeout_seconds=options.rest_api_timeout_in_ms / 1000.0,
                max_body_bytes=options.rest_api_max_body_bytes,
                monitoring_path=monitoring_path,
                enable_cors=options.rest_api_enable_cors_support,
                max_json_values=options.rest_api_max_json_values,
                max_inflight_body_bytes=options.rest_api_max_inflight_body_bytes,
            ),
        )
        self.connections = ConnectionGuard(
            options.rest_api_max_connections or default_max_connections(),
            idle_timeout=options.rest_api_idle_timeout_in_ms / 1000.0,
            header_timeout=options.rest_api_header_timeout_in_ms / 1000.0,
            body_timeout=options.rest_api_body_timeout_in_ms / 1000.0,
        )
        self.grpc_port = None
        self.rest_port = None
        self._grpc = None
        self._uvicorn = []
        self._threads = []
        self._stop = threading.Event()

    def start(self):
        self.core.manager.start()
        max_batch = self.core.batcher.parameters.max_batch_size if self.core.batcher is not None else None
        self._grpc = grpc.server(
            ThreadPoolExecutor(max_workers=self.options.grpc_threads(max_batch), thread_name_prefix="grpc"),
            options=self.options.grpc_options(),
            maximum_concurrent_rpcs=self.options.grpc_max_concurrent_rpcs,
        )
        add_services(self._grpc, self.core, health_check=self.options.enable_grpc_healthcheck_service,
                     reload_policy=self.reload_policy)
        self.grpc_port = self._grpc.add_insecure_port(f"{self.options.host}:{self.options.port}")
        if self.grpc_port == 0:
            raise OSError(f"could not bind the gRPC port {self.options.host}:{self.options.port}")
        self._grpc.start()
        if self.options.rest_api_port:  # 0: REST off, as in TF Serving
            self._start_rest()
        # The loaded models and libraries are millions of long-lived objects: without this, each full collection of
        # Python's garbage collector walks them all, a pause of up to 0.2 s in the middle of requests.
        gc.freeze()
        if self.options.model_config_file and self.options.model_config_file_poll_wait_seconds > 0:
            thread = threading.Thread(target=self._poll_config, name="config-poll", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("serving gRPC on %s:%s%s", self.options.host, self.grpc_port,
                 f", REST on {self.options.host}:{self.rest_port}" if self.rest_port else "")
        return self

    def _rest_sockets(self):
        """One listening socket, and a duplicate of it for each further REST thread: every loop accepts from the
        same queue. (Not SO_REUSEPORT, which would let a second server started on the same port quietly share it.)"""
        host, port = self.options.host, self.options.rest_api_port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(2048)
            sock.setblocking(False)
        except OSError as error:
            sock.close()
            raise OSError(f"could not bind the REST port {host}:{port}: {error}") from None
        sockets = [sock] + [sock.dup() for _ in range(max(1, self.options.rest_api_num_threads) - 1)]
        return sockets, sock.getsockname()[1]

    def _start_rest(self):
        sockets, self.rest_port = self._rest_sockets()
        for index, sock in enumerate(sockets):
            config = uvicorn.Config(
                self.rest_app,
                http=self.connections.protocol_class(),
                ws="none",
                log_level="warning",
                access_log=False,
                lifespan="off",
                proxy_headers=False,  # the app reads no forwarded-for headers: no middleware in between
                timeout_keep_alive=self.connections.idle_timeout + 60,  # a backstop: the guard closes idle ones
                timeout_graceful_shutdown=5,
                server_header=False,
            )
            server = uvicorn.Server(config)
            thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"rest-{index}", daemon=True)
            thread.start()
            self._uvicorn.append(server)
            self._threads.append(thread)
        deadline = time.monotonic() + 30
        while not all(server.started for server in self._uvicorn):
            if not all(thread.is_alive() for thread in self._threads) or time.monotonic() > deadline:
                raise OSError(f"the REST server could not start on {self.options.host}:{self.rest_port}")
            time.sleep(0.01)

    def _poll_config(self):
        path = os.path.abspath(self.options.model_config_file)
        while not self._stop.wait(self.options.model_config_file_poll_wait_seconds):
            try:
                config = config_files.read_model_server_config(path)
                if config.SerializeToString() != self._config_text:
                    self.core.manager.reload(config)
                    self._config_text = config.SerializeToString()
                    log.info("reloaded the model config from %s", path)
            except Exception as error:  # noqa: BLE001 (a bad edit of the file must not stop the server)
                log.error("could not reload the model config from %s: %s", path, error)

    def wait(self):
        """Blocks until `stop` (or a signal that the caller turns into `stop`)."""
        self._stop.wait()

    def stop(self):
        self._stop.set()
        for server in self._uvicorn:
            server.should_exit = True
        if self._grpc is not None:
            self._grpc.stop(grace=2).wait()
        for thread in self._threads:
            thread.join(timeout=10)
        self.core.manager.stop()
        if self.core.batcher is not None:
            self.core.batcher.stop()
