"""The REST front end: TensorFlow Serving's URLs, JSON bodies, status codes and error strings, as an ASGI app.

Paths are matched on the raw (still percent-encoded) path with TF Serving's own regular expressions, and the model
name and label are decoded afterwards, so `%2F` in a name is part of the name. Inference runs in a thread pool, off
the event loop, under a per-request deadline; a body larger than the limit is refused before it is read whole.
"""

import asyncio
import json
import logging
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

from google.protobuf import json_format
from starlette.requests import Request
from starlette.responses import Response
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2

from serving.server import api
from serving.server import json_tensor
from serving.server.errors import ServingError
from serving.server.errors import invalid_argument
from serving.server.servable import DEFAULT_SIGNATURE

log = logging.getLogger("serving.server")

_V1 = re.compile(r"/v1/.*", re.IGNORECASE)
_POST = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.IGNORECASE
)
_GET = re.compile(r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
                  re.IGNORECASE)
_GZIP_LIMIT = 100 * 1024 * 1024  # TF Serving's limit on a decompressed body
_API_NAMES = {"predict": "Predict", "classify": "Classify", "regress": "Regress"}


class RestOptions:
    def __init__(self, timeout_seconds=30.0, max_body_bytes=64 * 1024 * 1024, num_threads=8, monitoring_path=None,
                 enable_cors=False):
        self.timeout_seconds = timeout_seconds
        self.max_body_bytes = max_body_bytes
        self.num_threads = num_threads
        self.monitoring_path = monitoring_path
        self.enable_cors = enable_cors


def _json_response(body, status=200, cors=False):
    headers = {"Access-Control-Allow-Origin": "*"} if cors else None
    return Response(body, status_code=status, media_type="application/json", headers=headers)


class RestApp:
    """The ASGI application of the REST API; `core` is the ServerCore shared with gRPC."""

    def __init__(self, core, options=None):
        self.core = core
        self.options = options or RestOptions()
        self.executor = ThreadPoolExecutor(max_workers=self.options.num_threads, thread_name_prefix="rest")

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self.respond(request)
        await response(scope, receive, send)

    async def respond(self, request):
        path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        method = request.method
        cors = self.options.enable_cors
        if self.options.monitoring_path and path == self.options.monitoring_path and method == "GET":
            return Response(self.core.metrics.exposition(), media_type="text/plain; version=0.0.4")
        if not _V1.fullmatch(path):
            return Response("Not Found\n", status_code=404, media_type="text/plain")
        if method == "OPTIONS":
            return self._preflight(request)
        try:
            body = await self._body(request) if method == "POST" else b""
            result = await self._dispatch(method, path, body)
            return _json_response(result, cors=cors)
        except ServingError as error:
            return _json_response(json_tensor.error_body(error.message), error.http_status, cors=cors)
        except Exception:  # noqa: BLE001 (a request never takes the server down, nor shows it a traceback)
            log.exception("unexpected error serving %s %s", method, path)
            return _json_response(json_tensor.error_body("Internal error"), 500, cors=cors)

    def _preflight(self, request):
        origin = request.headers.get("origin", "")
        if not re.match(r"https?://", origin):
            return _json_response(json_tensor.error_body("Origin header is missing in CORS preflight"), 400)
        headers = {}
        if self.options.enable_cors:
            headers = {
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": "POST, GET",
                "Access-Control-Allow-Headers": "Content-Type",
            }
        return Response(b"", status_code=200, headers=headers, media_type="application/json")

    async def _body(self, request):
        limit = self.options.max_body_bytes
        too_large = ServingError(
            "RESOURCE_EXHAUSTED", f"Request body is larger than the limit of {limit} bytes", http_status=413
        )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise too_large
            chunks.append(chunk)
        body = b"".join(chunks)
        if request.headers.get("content-encoding", "").lower() == "gzip":
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                body = inflater.decompress(body, _GZIP_LIMIT + 1)
            except zlib.error as error:
                raise invalid_argument(f"Failed to decompress the gzip request body: {error}") from None
            if len(body) > _GZIP_LIMIT or inflater.unconsumed_tail:
                raise ServingError("RESOURCE_EXHAUSTED", "The decompressed request body exceeds 100 MiB",
                                   http_status=413)
        return body

    async def _dispatch(self, method, path, body):
        malformed = invalid_argument(f"Malformed request: {method} {path}")
        if method == "POST":
            match = _POST.fullmatch(path)
            if not match or match.group(4) not in _API_NAMES:
                raise malformed
            name, version, label, verb = match.groups()
            handler = {"predict": self._predict, "classify": self._classify, "regress": self._regress}[verb]
            model, version = unquote(name), _version(version)
            label = unquote(label) if label is not None else None
            return await self._run(model, _API_NAMES[verb], lambda: handler(model, version, label, body))
        if method == "GET":
            match = _GET.fullmatch(path)
            if not match or (match.group(4) is not None and match.group(4) != "metadata"):
                raise malformed
            name, version, label, metadata = match.groups()
            if name is None:
                raise invalid_argument("Missing model name in request.")
            model, version = unquote(name), _version(version)
            label = unquote(label) if label is not None else None
            if metadata:
                return await self._run(model, "GetModelMetadata", lambda: self._metadata(model, version, label))
            return await self._run(model, "GetModelStatus", lambda: self._status(model, version))
        raise malformed

    async def _run(self, model, api_name, function):
        loop = asyncio.get_running_loop()
        call = lambda: self.core.call(model, api_name, "REST", function)  # noqa: E731
        try:
            return await asyncio.wait_for(loop.run_in_executor(self.executor, call), self.options.timeout_seconds)
        except asyncio.TimeoutError:
            raise ServingError("DEADLINE_EXCEEDED", "Deadline Exceeded") from None

    # The handlers (in the thread pool).

    def _predict(self, model, version, label, body):
        document = json_tensor.parse_json(body)
        signature_name = json_tensor.predict_signature_name(document)
        servable = self.core.manager.servable(model, version, label)
        signature = servable.signature(signature_name)
        if signature is None:
            raise invalid_argument(
                f'Serving signature name: "{signature_name or DEFAULT_SIGNATURE}" not found in signature def'
            )
        if not signature.inputs:
            raise invalid_argument(f"Failed to get input map for signature: {signature_name or 'DEFAULT'}")
        booleans = b"true" in body or b"false" in body
        inputs, row_format = json_tensor.predict_inputs(document, servable.input_dtypes(signature_name), booleans)
        outputs = self.core.run_predict(servable, signature_name or DEFAULT_SIGNATURE, inputs)
        return json_tensor.predict_response(outputs, row_format)

    def _examples(self, model, version, label, body):
        document = json_tensor.parse_json(body)
        signature_name = json_tensor.predict_signature_name(document)
        examples, context = json_tensor.examples_from_json(document)
        prefix = context.SerializeToString() if context is not None else b""
        serialized = [prefix + example.SerializeToString() for example in examples]
        return self.core.manager.servable(model, version, label), signature_name, serialized

    def _classify(self, model, version, label, body):
        servable, signature_name, serialized = self._examples(model, version, label, body)
        return json_tensor.classify_response(servable.classify(signature_name, serialized))

    def _regress(self, model, version, label, body):
        servable, signature_name, serialized = self._examples(model, version, label, body)
        return json_tensor.regress_response(servable.regress(signature_name, serialized))

    def _status(self, model, version):
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = model
        if version is not None:
            request.model_spec.version.value = version
        response = api.model_status(self.core.manager, request)
        return json_format.MessageToJson(
            response, always_print_fields_with_no_presence=True, preserving_proto_field_name=True, indent=1
        )

    def _metadata(self, model, version, label):
        servable = self.core.manager.servable(model, version, label)
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        response = api.model_metadata(servable, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        options = {"always_print_fields_with_no_presence": True, "preserving_proto_field_name": True}
        return json.dumps(
            {
                "model_spec": json_format.MessageToDict(response.model_spec, **options),
                "metadata": {"signature_def": json_format.MessageToDict(signatures, **options)},
            },
            indent=1,
        )


def _version(text):
    if text is None:
        return None
    value = int(text)
    if value > 2**63 - 1:
        raise invalid_argument(f"Failed to convert version: {text} to numeric.")
    return value
