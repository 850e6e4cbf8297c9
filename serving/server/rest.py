"""The REST front end: TensorFlow Serving's URLs, JSON bodies, status codes and error strings, as an ASGI app.

Paths are matched on the raw (still percent-encoded) path with TF Serving's own regular expressions, and the model
name and label are decoded afterwards, so `%2F` in a name is part of the name. A body larger than the limit is
refused before it is read whole.

The server runs this app on several event loops, one per REST thread (`ModelServer`), as TF Serving runs a request
on one of its `--rest_api_num_threads` threads: a request is handled on its loop from start to end, without a hop
to another thread, and its model run carries the request deadline as its RunOptions timeout. With batching, the
loop instead waits for the batch without blocking, so that one loop can put many requests into the same batch.
"""

import json
import logging
import re
import threading
import zlib
from urllib.parse import unquote

from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2

from serving.server import api
from serving import json_tensor
from serving.server import memory
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
_GZIP_LIMIT = 100 * 1024 * 1024  # TF Serving's limit on a decompressed body (ours is also the body limit)
_CLOSE = [(b"connection", b"close")]
_API_NAMES = {"predict": "Predict", "classify": "Classify", "regress": "Regress"}


class RestOptions:
    """The REST front end's limits (the server's flags give their defaults and meaning)."""

    def __init__(self, timeout_seconds=30.0, max_body_bytes=64 * 1024 * 1024, monitoring_path=None, enable_cors=False,
                 max_json_values=json_tensor.DEFAULT_MAX_VALUES, max_inflight_body_bytes=None):
        self.timeout_seconds = timeout_seconds
        self.max_body_bytes = max_body_bytes
        self.monitoring_path = monitoring_path
        self.enable_cors = enable_cors
        self.max_json_values = max_json_values
        self.max_inflight_body_bytes = max_inflight_body_bytes or 4 * max_body_bytes


SMALL_BODY_BYTES = 1 << 16  # bodies up to this size are always accepted: the in-flight budget counts larger ones


class _BodyBudget:
    """The bytes of request bodies (larger than SMALL_BODY_BYTES) being received or parsed, across every REST loop,
    against a limit: without it, slow clients each sending a body near the size limit could hold any amount of
    memory."""

    def __init__(self, limit):
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self, size):
        with self._lock:
            if self.used + size > self.limit:
                return False
            self.used += size
            return True

    def give(self, size):
        with self._lock:
            self.used -= size


class _Body:
    """A request body and its share of the in-flight budget, given back (`done`) once the body is parsed."""

    __slots__ = ("data", "_budget", "_reserved")

    def __init__(self, budget):
        self.data = b""
        self._budget = budget
        self._reserved = 0

    def reserve(self, size):
        """Counts the body as `size` bytes (when large); UNAVAILABLE (503) if the budget has no room."""
        extra = size - self._reserved if size > SMALL_BODY_BYTES else 0
        if extra > 0:
            if not self._budget.take(extra):
                raise _body_error("UNAVAILABLE", "The server is receiving as many request bytes as it may hold at "
                                                 "once; try again later")
            self._reserved += extra

    def done(self):
        """Lets the body go; after a large one, the heap memory its parse freed goes back to the system soon."""
        if len(self.data) >= memory.DEFAULT_MIN_BYTES:
            memory.release_free_memory()
        self.data = b""
        if self._reserved:
            self._budget.give(self._reserved)
            self._reserved = 0


def _too_large(limit):
    return _body_error("RESOURCE_EXHAUSTED", f"Request body is larger than the limit of {limit} bytes", 413)


def _body_error(code, message, http_status=None):
    """An error raised while a body is still arriving: the answer closes the connection (what is left of the body
    would otherwise be read as the next request)."""
    error = ServingError(code, message, http_status=http_status)
    error.close_connection = True
    return error


_JSON = b"application/json"
_CORS_HEADERS = [(b"access-control-allow-origin", b"*")]
_PREFLIGHT_HEADERS = _CORS_HEADERS + [(b"access-control-allow-methods", b"POST, GET"),
                                      (b"access-control-allow-headers", b"Content-Type")]


class RestApp:
    """The ASGI application of the REST API; `core` is the ServerCore shared with gRPC.

    Plain ASGI, without a framework's request and response objects: per request they are a visible share of the
    0.5 ms overhead budget that benchmarks/serving.py holds the server to.
    """

    def __init__(self, core, options=None):
        self.core = core
        self.options = options or RestOptions()
        self._budget = _BodyBudget(self.options.max_inflight_body_bytes)

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
        status, content_type, body, extra_headers = await self.respond(scope, receive)
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers + extra_headers})
        await send({"type": "http.response.body", "body": body})

    async def respond(self, scope, receive):
        """(HTTP status, content type, body, extra headers) of one request."""
        path = scope.get("raw_path") or scope["path"].encode("utf-8")
        path = path.decode("latin-1").split("?", 1)[0]
        method = scope["method"]
        headers = dict(scope["headers"])
        cors = _CORS_HEADERS if self.options.enable_cors else []
        if self.options.monitoring_path and path == self.options.monitoring_path and method == "GET":
            return 200, b"text/plain; version=0.0.4", self.core.metrics.exposition(), []
        if not _V1.fullmatch(path):
            return 404, b"text/plain", b"Not Found\n", []
        if method == "OPTIONS":
            origin = headers.get(b"origin", b"").decode("latin-1")
            if not re.match(r"https?://", origin):
                return 400, _JSON, json_tensor.error_body("Origin header is missing in CORS preflight"), []
            return 200, _JSON, b"", _PREFLIGHT_HEADERS if self.options.enable_cors else []
        body = _Body(self._budget)
        try:
            if method == "POST":
                await self._receive_body(headers, receive, body)
            return 200, _JSON, await self._dispatch(method, path, body), cors
        except ServingError as error:
            close = _CLOSE if getattr(error, "close_connection", False) else []
            return error.http_status, _JSON, json_tensor.error_body(error.message), cors + close
        except Exception:  # noqa: BLE001 (a request never takes the server down, nor shows it a traceback)
            log.exception("unexpected error serving %s %s", method, path)
            return 500, _JSON, json_tensor.error_body("Internal error"), cors
        finally:
            body.done()

    async def _receive_body(self, headers, receive, body):
        """Reads the request body into `body`: within the size limit and the in-flight budget (the connection
        guard times the body's arrival); a gzip body is inflated, within the same limit."""
        limit = self.options.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit():
            if len(declared) > 20 or int(declared) > limit:
                raise _too_large(limit)
            body.reserve(int(declared))
        data = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ServingError("CANCELLED", "The client closed the connection")
            data += message.get("body", b"")
            if len(data) > limit:
                raise _too_large(limit)
            body.reserve(len(data))
            if not message.get("more_body", False):
                break
        if headers.get(b"content-encoding", b"").lower() == b"gzip":
            inflate_limit = min(limit, _GZIP_LIMIT)
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                data = inflater.decompress(data, inflate_limit + 1)
            except zlib.error as error:
                raise invalid_argument(f"Failed to decompress the gzip request body: {error}") from None
            if len(data) > inflate_limit or inflater.unconsumed_tail:
                raise ServingError("RESOURCE_EXHAUSTED",
                                   f"The decompressed request body is larger than the limit of {inflate_limit} bytes",
                                   http_status=413)
            body.reserve(len(data))
        body.data = data

    async def _dispatch(self, method, path, body):
        malformed = invalid_argument(f"Malformed request: {method} {path}")
        if method == "POST":
            match = _POST.fullmatch(path)
            if not match or match.group(4) not in _API_NAMES:
                raise malformed
            name, version, label, verb = match.groups()
            model, version = unquote(name), _version(version)
            label = unquote(label) if label is not None else None
            with self.core.request(model, _API_NAMES[verb], "REST"):
                if verb == "predict":
                    return await self._predict(model, version, label, body)
                if verb == "classify":
                    return self._classify(model, version, label, body)
                return self._regress(model, version, label, body)
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
                return self.core.call(model, "GetModelMetadata", "REST", lambda: self._metadata(model, version, label))
            return self.core.call(model, "GetModelStatus", "REST", lambda: self._status(model, version))
        raise malformed

    # The handlers.

    async def _predict(self, model, version, label, body):
        document = json_tensor.parse_json(body.data, self.options.max_json_values)
        signature_name = json_tensor.predict_signature_name(document)
        servable = self.core.manager.servable(model, version, label)
        signature = servable.signature(signature_name)
        if signature is None:
            raise invalid_argument(
                f'Serving signature name: "{json_tensor.shorten(signature_name or DEFAULT_SIGNATURE)}" not found in '
                "signature def"
            )
        if not signature.inputs:
            raise invalid_argument(f"Failed to get input map for signature: {signature_name or 'DEFAULT'}")
        booleans = b"true" in body.data or b"false" in body.data
        inputs, row_format = json_tensor.predict_inputs(document, servable.input_dtypes(signature_name), booleans)
        del document
        body.done()  # the tensors are made: the body and its parse need not outlive the run
        outputs = await self.core.run_predict_async(
            servable, signature_name or DEFAULT_SIGNATURE, inputs, timeout=self.options.timeout_seconds
        )
        return json_tensor.predict_response(outputs, row_format)

    def _examples(self, model, version, label, body):
        document = json_tensor.parse_json(body.data, self.options.max_json_values)
        signature_name = json_tensor.predict_signature_name(document)
        examples, context = json_tensor.examples_from_json(document)
        del document
        body.done()
        prefix = context.SerializeToString() if context is not None else b""
        serialized = [prefix + example.SerializeToString() for example in examples]
        return self.core.manager.servable(model, version, label), signature_name, serialized

    def _classify(self, model, version, label, body):
        servable, signature_name, serialized = self._examples(model, version, label, body)
        return json_tensor.classify_response(servable.classify(signature_name, serialized, self.options.timeout_seconds))

    def _regress(self, model, version, label, body):
        servable, signature_name, serialized = self._examples(model, version, label, body)
        return json_tensor.regress_response(servable.regress(signature_name, serialized, self.options.timeout_seconds))

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
    if len(text) > 19 or int(text) > 2**63 - 1:  # (the length first: Python refuses to read 4,300+ digits)
        raise invalid_argument(f"Failed to convert version: {json_tensor.shorten(text)} to numeric.")
    return int(text)
