"""The gRPC front end: PredictionService and ModelService on the official tensorflow-serving-api protos, and the
standard grpc.health.v1 service."""

import logging

import grpc
from grpc_health.v1 import health
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.apis import status_pb2

from serving.server import api
from serving.server.errors import ServingError

log = logging.getLogger("serving.server")


def _guarded(core, context, model_name, api_name, function):
    """Runs a request; a ServingError becomes its gRPC code and (truncated) message, anything else INTERNAL."""
    try:
        return core.call(model_name, api_name, "GRPC", function)
    except ServingError as error:
        context.abort(error.grpc_code, error.grpc_message)
    except Exception:  # noqa: BLE001 (a request never takes the server down, nor shows it a traceback)
        log.exception("unexpected error in %s", api_name)
        context.abort(grpc.StatusCode.INTERNAL, "Internal error")


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
                        lambda: api.predict(self._servable(request), request, run=run))

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


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core):
        self.core = core

    def GetModelStatus(self, request, context):
        return _guarded(self.core, context, request.model_spec.name, "GetModelStatus",
                        lambda: api.model_status(self.core.manager, request))

    def HandleReloadConfigRequest(self, request, context):
        def reload():
            self.core.manager.reload(request.config)
            return model_management_pb2.ReloadConfigResponse(status=status_pb2.StatusProto(error_code=0))

        return _guarded(self.core, context, "", "HandleReloadConfigRequest", reload)


def add_services(server, core, health_check=False):
    """Registers the services on a `grpc.Server`; with `health_check`, grpc.health.v1 reports them SERVING."""
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(core), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(core), server)
    if health_check:
        servicer = health.HealthServicer()
        for name in ("", "ModelService", "PredictionService", "tensorflow.serving.ModelService",
                     "tensorflow.serving.PredictionService"):
            servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        return servicer
    return None
