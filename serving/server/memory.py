"""Handing freed heap memory back to the system, for a server whose large requests come and go.

glibc's malloc keeps what a request frees: in the arena of the thread that freed it (one arena per thread, up to
8 x CPUs of them), as free chunks it does not return unless they sit at the very top of the heap. A gRPC thread that
has handled a 50 MB request (gRPC's receive buffers, the message's bytes, its parsed proto, the decoded tensor)
keeps hundreds of MB "free" but resident, and each further thread does the same, so a run of large requests, even
rejected ones, ratchets the process's RSS up although nothing is alive (measured: malloc's in-use bytes stay flat
while its free bytes grow).

- `release_free_memory(request_bytes=None)`: asks a background thread to call `malloc_trim(0)`, which returns the
  free pages of every arena (not only the heap tops). The thread waits until asks stop for `quiet` seconds (after
  a burst, memory is back about a second after its last request) or, under a steady stream of them, `max_delay`
  seconds: each trim costs the next requests the page faults of taking memory again, so trimming after every
  request would cost CPU on a stream of large ones. Asking only records the time: call it at the end of every
  request. Give `request_bytes` only where the size is known for free (an HTTP body's length): below `min_bytes`
  nothing is asked. Not a protobuf's ByteSize(), which serializes the whole message.

tests/serving/server/bounded_memory_test.py sends 48 refused 50 MB gRPC messages from 8 threads and holds the
server's RSS growth under 150 MiB; without the trim it fails. (Fewer malloc arenas, MALLOC_ARENA_MAX=2, only slow
the growth down.)

All are no-ops (False, or None for `trim`) where the C library is not glibc (musl, macOS, Windows).
"""

import ctypes
import threading
import time

DEFAULT_MIN_BYTES = 1 << 20
DEFAULT_QUIET = 1.0
DEFAULT_MAX_DELAY = 10.0

_glibc_lock = threading.Lock()
_glibc_cache = []


def glibc():
    """The process's glibc (a ctypes.CDLL with malloc_trim), or None where the C library is another."""
    with _glibc_lock:
        if not _glibc_cache:
            try:
                libc = ctypes.CDLL(None)
                libc.gnu_get_libc_version.restype = ctypes.c_char_p
                libc.gnu_get_libc_version()
                libc.malloc_trim.argtypes = [ctypes.c_size_t]
                libc.malloc_trim.restype = ctypes.c_int
            except (OSError, AttributeError, TypeError):  # not glibc, or no dlopen(NULL) (Windows)
                libc = None
            _glibc_cache.append(libc)
        return _glibc_cache[0]


def trim():
    """malloc_trim(0) now: True if memory went back to the system, None where there is no glibc."""
    libc = glibc()
    if libc is None:
        return None
    return bool(libc.malloc_trim(0))


class _Trimmer:
    """A daemon thread that trims once asks stop for `quiet` seconds, or `max_delay` seconds after the first ask
    since its last trim when they do not stop. An ask only records the time (no wake-up per request: at hundreds of
    requests a second, waking a thread for each cost a tenth of a millisecond of each request's latency); the thread
    looks every eighth of the shorter delay."""

    def __init__(self, quiet, max_delay):
        self.quiet = quiet
        self.max_delay = max_delay
        self.first = None  # time.monotonic() of the first ask since the last trim
        self.last = None  # of the latest ask
        self.trims = 0
        self.thread = threading.Thread(target=self._run, name="malloc-trim", daemon=True)
        self.thread.start()

    def ask(self):
        now = time.monotonic()
        if self.first is None:
            self.first = now
        self.last = now

    def _run(self):
        while True:
            time.sleep(min(self.quiet, self.max_delay) / 8)
            first, last = self.first, self.last
            now = time.monotonic()
            if first is not None and (now - last >= self.quiet or now - first >= self.max_delay):
                self.first = None  # asks from here on count towards the next trim
                if self.last != last and self.first is None:  # an ask came in between: it still wants a trim
                    self.first = self.last
                trim()
                self.trims += 1


_trimmer_lock = threading.Lock()
_trimmer = None


def release_free_memory(request_bytes=None, min_bytes=DEFAULT_MIN_BYTES, quiet=DEFAULT_QUIET,
                        max_delay=DEFAULT_MAX_DELAY):
    """After a request of `request_bytes` (None: any size), has the free heap memory handed back to the system
    (see the module's notes). Returns True if a trim was asked for, False if not (small request, no glibc). Cheap
    and non-blocking: call it at the end of every request. `quiet` and `max_delay` are the first call's."""
    global _trimmer
    if request_bytes is not None and request_bytes < min_bytes:
        return False
    if glibc() is None:
        return False
    if _trimmer is None:
        with _trimmer_lock:
            if _trimmer is None:
                _trimmer = _Trimmer(quiet, max_delay)
    _trimmer.ask()
    return True
