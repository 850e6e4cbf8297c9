"""REST connections: how many may be open at once, and how long each may keep the server waiting.

uvicorn (like TF Serving's libevent front end) keeps a connection as long as its client does: an idle connection, or
one that sends its request a byte at a time, is never closed, and enough of them use up the process's file
descriptors, locking every new client out. `ConnectionGuard` gives the REST loops an HTTP protocol (uvicorn's
httptools protocol, subclassed) that:

- closes a connection that has sent nothing for `idle_timeout` seconds (before its first request, or since its
  last response);
- closes one whose request line and headers have not all arrived `header_timeout` seconds after their first byte,
  and answers 431 to a request whose line and headers exceed `max_header_bytes` (uvicorn would hold any amount);
- answers 408 (and closes) when a request's body has not all arrived `body_timeout` seconds after its headers;
- keeps at most `max_connections` open across all loops. A connection over the cap first makes room by closing a
  connection that has had no request in progress (idle, or still sending its headers) for at least half a second,
  on its own loop if it has one, else the longest-waiting; when there is none, it is answered at once with 503 and
  closed. A connection with a request in progress
  is never closed for another.

Phases of a connection: "idle" (no request in progress), "headers" (a request has begun, its headers are not all
in), "body" (its headers are in, its body is not), "active" (the app has the whole request, until its response is
sent). A phase change only records the time (no timer, no lock: it happens several times per request); each loop
sweeps its own connections for expired phases a few times per shortest timeout, so a timeout acts up to a quarter
of it late.
"""

import collections
import json
import resource
import threading

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_LINGER_SECONDS = 1.0  # how long a refused connection may still send before it is closed
_MAX_LINGERING = 8  # refused connections lingering at once, per loop; beyond, they are closed at once
_RESERVED_DESCRIPTORS = 64  # kept for model files, logs and the gRPC listener
_MAX_SWEEP_SECONDS = 1.0
_MIN_WAIT_SECONDS = 0.5  # a connection is closed for a new one only after waiting this long
DEFAULT_MAX_HEADER_BYTES = 64 * 1024  # a request line and headers; TF Serving's API needs a few hundred bytes
_WAITING = ("idle", "headers")  # phases without a request in progress: these connections may be closed for others


class _HeadersTooLarge(Exception):
    pass


def default_max_connections(limit=None):
    """A cap that leaves file descriptors to spare: half of the soft RLIMIT_NOFILE beyond a reserve (so that REST
    and gRPC connections together stay under it), at most 1024."""
    if limit is None:
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if limit == resource.RLIM_INFINITY:
        return 1024
    return max(8, min(1024, (limit - _RESERVED_DESCRIPTORS) // 2))


class ConnectionGuard:
    """The connection limits of one server, shared by its REST loops (see the module docstring)."""

    def __init__(self, max_connections, idle_timeout, header_timeout, body_timeout=60.0,
                 max_header_bytes=DEFAULT_MAX_HEADER_BYTES):
        if min(max_connections, idle_timeout, header_timeout, body_timeout, max_header_bytes) <= 0:
            raise ValueError(
                "max_connections, idle_timeout, header_timeout, body_timeout and max_header_bytes must be positive, "
                f"got {max_connections}, {idle_timeout}, {header_timeout}, {body_timeout}, {max_header_bytes}"
            )
        self.max_connections = max_connections
        self.timeouts = {"idle": idle_timeout, "headers": header_timeout, "body": body_timeout}
        self.idle_timeout = idle_timeout
        self.max_header_bytes = max_header_bytes
        self._sweep_seconds = min(_MAX_SWEEP_SECONDS, min(self.timeouts.values()) / 4)
        self._lock = threading.Lock()
        self._open = 0
        self._loops = {}  # event loop -> set of its connections (changed only on that loop's thread)
        self._lingering = collections.Counter()  # event loop -> refused connections not yet closed
        self.counts = collections.Counter()  # refused, evicted, <phase>_timeout, headers_too_large (see `_count`)
        self._refusal = _canned(503, "Service Unavailable",
                                f"The server has {max_connections} open connections, its limit; try again later")
        self._too_large = _canned(431, "Request Header Fields Too Large",
                                  f"The request line and headers are larger than the limit of {max_header_bytes} bytes")
        self._body_late = _canned(408, "Request Timeout",
                                  f"The request body did not arrive within {body_timeout:g} s of its headers")

    def protocol_class(self):
        """The HTTP protocol class to give uvicorn (`uvicorn.Config(http=...)`)."""
        guard = self

        class GuardedHttpToolsProtocol(HttpToolsProtocol):
            __doc__ = f"uvicorn's httptools protocol under the limits of a ConnectionGuard. {__doc__}"

            def connection_made(self, transport):
                super().connection_made(transport)
                self._counted = guard._admit(self)
                if self._counted:
                    self._enter("idle")
                    guard._track(self)
                else:
                    guard._refuse(self)

            def connection_lost(self, exc):
                if self._phase == "refused":
                    guard._lingering[self.loop] -= 1
                else:
                    guard._untrack(self)
                guard._release(self)
                self._phase = "closed"
                super().connection_lost(exc)

            def data_received(self, data):
                if self._phase != "refused":
                    super().data_received(data)

            def eof_received(self):
                if self._phase == "refused":
                    self.transport.close()

            def _enter(self, phase):
                self._phase = phase
                self._since = self.loop.time()

            def on_message_begin(self):
                super().on_message_begin()
                self._header_bytes = 0
                if self._phase == "idle":
                    self._enter("headers")

            def on_url(self, url):
                self._count_header_bytes(len(url))
                super().on_url(url)

            def on_header(self, name, value):
                self._count_header_bytes(len(name) + len(value) + 4)
                super().on_header(name, value)

            def _count_header_bytes(self, size):
                self._header_bytes += size
                if self._header_bytes > guard.max_header_bytes:
                    self._headers_too_large = True
                    raise _HeadersTooLarge()  # the parser stops; uvicorn answers through send_400_response

            def send_400_response(self, msg):
                if not getattr(self, "_headers_too_large", False):
                    return super().send_400_response(msg)
                guard._count("headers_too_large")
                self.transport.write(guard._too_large)
                self.transport.close()

            def on_headers_complete(self):
                if self._phase in _WAITING:
                    self._enter("body")
                super().on_headers_complete()

            def on_message_complete(self):
                if self._phase == "body":
                    self._enter("active")
                super().on_message_complete()

            def on_response_complete(self):
                super().on_response_complete()
                if not self.pipeline and not self.transport.is_closing():
                    self._enter("idle")

            def _expire(self):
                """Called by the sweep when the current phase has lasted past its timeout."""
                guard._count(f"{self._phase}_timeout")
                if self._phase == "body":
                    self.transport.write(guard._body_late)
                self.transport.close()

            def _evict(self):
                """Closes this connection (on its own loop) for a newer one, which already has its place; if a
                request has begun here meanwhile, it keeps its place after all."""
                if self._phase in _WAITING and not self.transport.is_closing():
                    guard._count("evicted")
                    self.transport.close()
                else:
                    guard._recount(self)

        return GuardedHttpToolsProtocol

    def _track(self, protocol):
        """Adds a connection to its loop's set, and starts that loop's sweep with its first connection."""
        connections = self._loops.get(protocol.loop)
        if connections is None:
            connections = self._loops[protocol.loop] = set()
            protocol.loop.call_later(self._sweep_seconds, self._sweep, protocol.loop)
        connections.add(protocol)

    def _untrack(self, protocol):
        connections = self._loops.get(protocol.loop)
        if connections is not None:
            connections.discard(protocol)

    def _sweep(self, loop):
        """Closes this loop's connections whose phase (idle, headers, body) has outlasted its timeout."""
        now = loop.time()
        for protocol in [p for p in self._loops[loop] if p._phase in self.timeouts]:
            if now - protocol._since >= self.timeouts[protocol._phase] and not protocol.transport.is_closing():
                protocol._expire()
        loop.call_later(self._sweep_seconds, self._sweep, loop)

    def _admit(self, protocol):
        """Counts a new connection in; True if it may stay (possibly in the place of one closed for it)."""
        with self._lock:
            if self._open < self.max_connections:
                self._open += 1
                return True
            # A connection without a request in progress that has waited at least _MIN_WAIT_SECONDS (list() copies
            # a set in one step under the GIL, while its own loop may be changing it): on this loop if it has one,
            # closed at once, so its file descriptor is free before the new connection's is used; else the
            # longest-waiting on any loop, closed by its loop a moment later. A burst of new connections does not
            # close each other (none has waited), and a busy keep-alive client, idle for microseconds between
            # requests, is never closed for a newcomer.
            now = protocol.loop.time()
            waiting = [p for group in list(self._loops.values()) for p in list(group)
                       if p._phase in _WAITING and p._counted and now - p._since >= _MIN_WAIT_SECONDS]
            if not waiting:
                return False
            local = [p for p in waiting if p.loop is protocol.loop]
            victim = min(local or waiting, key=lambda p: p._since)
            victim._counted = False  # its place goes to the new connection
        if victim.loop is protocol.loop:
            victim._evict()
        else:
            victim.loop.call_soon_threadsafe(victim._evict)
        return True

    def _recount(self, protocol):
        """Gives a connection that was to be evicted, but got busy first, its own place again (the count may
        exceed the cap by the few connections this happens to at once)."""
        with self._lock:
            if not protocol._counted and not protocol.transport.is_closing():
                protocol._counted = True
                self._open += 1

    def _release(self, protocol):
        """Gives a closed connection's place back, unless it already went to a connection it was closed for."""
        with self._lock:
            if protocol._counted:
                protocol._counted = False
                self._open -= 1

    def _count(self, event):
        with self._lock:
            self.counts[event] += 1

    def _refuse(self, protocol):
        """Answers 503 at once; the connection may still send for a moment (so the client reads the answer rather
        than a reset), unless too many refused connections linger already."""
        self._count("refused")
        protocol._phase = "refused"
        protocol.transport.write(self._refusal)
        if self._lingering[protocol.loop] >= _MAX_LINGERING or not protocol.transport.can_write_eof():
            protocol._phase = "closed"
            protocol.transport.close()
            return
        self._lingering[protocol.loop] += 1
        protocol.transport.write_eof()
        protocol.loop.call_later(_LINGER_SECONDS, protocol.transport.close)


def _canned(status, reason, message):
    """A whole HTTP response with TF Serving's JSON error body, that closes the connection."""
    body = json.dumps({"error": message}).encode()
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status, reason.encode(), len(body), body))
