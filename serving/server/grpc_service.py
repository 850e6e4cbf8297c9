"""The gRPC front end: PredictionService and ModelService on the official tensorflow-serving-api protos, and the
standard grpc.health.v1 service."""

import logging
import os

import grpc
from grpc_health.v1 import health
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.apis import status_pb2

from serving.server import api
from serving.server import memory
from serving.server.errors import ServingError
from serving.server.errors import invalid_argument
from serving.server.model_manager import resolve_base_path

log = logging.getLogger("serving.server")


def _guarded(core, context, model_name, api_name, function):
    """Runs a request; a ServingError becomes its gRPC code and (truncated) message, anything else INTERNAL.

    Afterwards, the heap memory the request freed is handed back to the system soon (serving/server/memory.py:
    without it, each gRPC thread's malloc arena keeps what large requests, even refused ones, freed).
    """
    try:
        return core.call(model_name, api_name, "GRPC", function)
    except ServingError as error:
        context.abort(error.grpc_code, error.grpc_message)
    except Exception:  # noqa: BLE001 (a request never takes the server down, nor shows it a traceback)
        log.exception("unexpected error in %s", api_name)
        context.abort(grpc.StatusCode.INTERNAL, "Internal error")
    finally:
        memory.release_free_memory()


def _deadline(context):
    """The client's deadline as the model run's timeout, in seconds; None when it set none (gRPC then reports an
    almost infinite time left)."""
    remaining = context.time_remaining()
    if remaining is None or remaining > 1e9:
        return None
    return max(remaining, 0.0)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core):
        self.core = core

    def _servable(self, request):
        return api.resolve(self.core.manager, request)

    def Predict(self, request, context):
        timeout = _deadline(context)
        run = lambda s, n, i, f: self.core.run_predict(s, n, i, f, timeout)  # noqa: E731
        return _guarded(self.core, context, request.model_spec.name, "Predict",
                        lambda: api.predict(self._servable(request), request, run=run,
                                            max_tensor_bytes=self.core.max_tensor_bytes))

    def Classify(self, request, context):
        return _guarded(self.core, context, request.model_spec.name, "Classify",
                        lambda: api.classify(self._servable(request), request, _deadline(context)))

    def Regress(self, request, context):
        return _guarded(self.core, context, request.model_spec.name, "Regress",
                        lambda: api.regress(self._servable(request), request, _deadline(context)))

    def MultiInference(self, request, context):
        name = request.tasks[0].model_spec.name if request.tasks else ""
        return _guarded(self.core, context, name, "MultiInference",
                        lambda: api.multi_inference(self.core.manager, request))

    def GetModelMetadata(self, request, context):
        return _guarded(self.core, context, request.model_spec.name, "GetModelMetadata",
                        lambda: api.model_metadata(self._servable(request), request))


class ReloadPolicy:
    """Whether clients may change the served models with HandleReloadConfigRequest, and from where.

    Off by default: the RPC replaces every model the server serves, from paths the client names. When `enabled`, a
    model's base path (resolved as the manager resolves it, links followed) must lie inside `allowed_root`
    (None: any local path).
    """

    def __init__(self, enabled=False, allowed_root=None, config_dir=None):
        self.enabled = enabled
        self.allowed_root = os.path.realpath(allowed_root) if allowed_root else None
        self.config_dir = config_dir

    def check(self, config):
        if not self.enabled:
            raise ServingError(
                "PERMISSION_DENIED",
                "HandleReloadConfigRequest is turned off on this server (start it with --enable_reload_config_rpc "
                "to let clients change the served models)",
            )
        for model in config.model_config_list.config:
            if "://" in model.base_path:
                raise invalid_argument(f"Model {model.name}: this server loads models from local paths only")
            if self.allowed_root is None:
                continue
            path = os.path.realpath(resolve_base_path(model.base_path, self.config_dir) or ".")
            if os.path.commonpath([self.allowed_root, path]) != self.allowed_root:
                raise ServingError(
                    "PERMISSION_DENIED",
                    f"Model {model.name}: its base_path is outside the directory this server may load models from "
                    "(--reload_config_allowed_root)",
                )


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core, reload_policy=None):
        self.core = core
        self.reload_policy = reload_policy or ReloadPolicy()

    def GetModelStatus(self, request, context):
        return _guarded(self.core, context, request.model_spec.name, "GetModelStatus",
                        lambda: api.model_status(self.core.manager, request))

    def HandleReloadConfigRequest(self, request, context):
        def reload():
            self.reload_policy.check(request.config)
            # TF Serving waits for the models the config adds and answers UNKNOWN if one did not become available;
            # the client's deadline bounds the wait.
            self.core.manager.reload(request.config, timeout=_deadline(context))
            return model_management_pb2.ReloadConfigResponse(status=status_pb2.StatusProto(error_code=0))

        return _guarded(self.core, context, "", "HandleReloadConfigRequest", reload)


def add_services(server, core, health_check=False, reload_policy=None):
    """Registers the services on a `grpc.Server`; with `health_check`, grpc.health.v1 reports them SERVING;
    `reload_policy` (a ReloadPolicy) says whether HandleReloadConfigRequest may change the models (default: no)."""
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(core), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(core, reload_policy), server)
    if health_check:
        servicer = health.HealthServicer()
        for name in ("", "ModelService", "PredictionService", "tensorflow.serving.ModelService",
                     "tensorflow.serving.PredictionService"):
            servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        return servicer
    return None
