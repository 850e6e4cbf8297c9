"""Errors with TensorFlow Serving's status codes, and their HTTP statuses (REST) and gRPC codes."""

import grpc

# tensorflow.error.Code -> HTTP status, as TF Serving's HTTP server maps them.
_HTTP = {
    "OK": 200,
    "CANCELLED": 499,
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "UNAUTHENTICATED": 401,
}

# gRPC truncates long messages: the first 1024 characters, then "...TRUNCATED".
_GRPC_MESSAGE_LIMIT = 1024


class ServingError(Exception):
    """A request failed with `code` (a tensorflow.error.Code name such as "INVALID_ARGUMENT") and `message`."""

    def __init__(self, code, message, http_status=None):
        if code not in _HTTP and code not in ("UNKNOWN", "INTERNAL", "DATA_LOSS"):
            raise ValueError(f"unknown status code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self._http_status = http_status  # where HTTP has a better word than the code's usual status (413)

    @property
    def http_status(self):
        return self._http_status or _HTTP.get(self.code, 500)

    @property
    def grpc_code(self):
        return getattr(grpc.StatusCode, self.code)

    @property
    def grpc_message(self):
        if len(self.message) > _GRPC_MESSAGE_LIMIT:
            return self.message[:_GRPC_MESSAGE_LIMIT] + "...TRUNCATED"
        return self.message

    def __repr__(self):
        return f"ServingError({self.code}, {self.message!r})"


def invalid_argument(message):
    return ServingError("INVALID_ARGUMENT", message)


def not_found(message):
    return ServingError("NOT_FOUND", message)
