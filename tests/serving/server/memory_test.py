"""Handing freed heap memory back: the glibc calls, their no-op elsewhere, the rate limit, and RSS really released."""

import subprocess
import sys
import textwrap

import pytest

from serving.server import memory

HAS_GLIBC = memory.glibc() is not None
needs_glibc = pytest.mark.skipif(not HAS_GLIBC, reason="glibc only")


def run_python(code, timeout=60):
    """Runs `code` in a fresh interpreter (its malloc state and the trimmer thread are its own); its stdout."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def no_glibc(monkeypatch):
    """A C library without glibc's functions, as on musl or macOS."""

    class OtherLibc:
        def __getattr__(self, name):
            raise AttributeError(name)

    monkeypatch.setattr(memory, "_glibc_cache", [])
    monkeypatch.setattr(memory.ctypes, "CDLL", lambda *_: OtherLibc())
    monkeypatch.setattr(memory, "_trimmer", None)
    yield
    assert memory._trimmer is None  # nothing was started


def test_everything_is_a_no_op_without_glibc(no_glibc):
    assert memory.glibc() is None
    assert memory.trim() is None
    assert memory.release_free_memory(10**9) is False
    assert memory.release_free_memory() is False


def test_no_dlopen_is_no_glibc_either(monkeypatch):
    def refuse(*_):
        raise OSError("no dlopen(NULL) here")

    monkeypatch.setattr(memory, "_glibc_cache", [])
    monkeypatch.setattr(memory.ctypes, "CDLL", refuse)
    assert memory.glibc() is None and memory.trim() is None


def test_small_requests_ask_for_nothing():
    assert memory.release_free_memory(0) is False
    assert memory.release_free_memory(memory.DEFAULT_MIN_BYTES - 1) is False
    assert memory.release_free_memory(5000, min_bytes=10**4) is False


@needs_glibc
def test_the_trim_runs():
    assert memory.trim() in (True, False)


@needs_glibc
def test_a_trim_waits_for_quiet_or_its_max_delay():
    # Bounded waits rather than exact moments: a busy machine may run the trim thread late, never early.
    out = run_python("""
        import time
        from serving.server import memory

        def trims_within(count, seconds):  # waits until `count` trims have happened; False after `seconds`
            deadline = time.monotonic() + seconds
            while memory._trimmer.trims < count and time.monotonic() < deadline:
                time.sleep(0.01)
            return memory._trimmer.trims >= count

        first = memory.release_free_memory(2**20, quiet=0.4, max_delay=1.0)
        time.sleep(0.2)
        not_at_once = memory._trimmer.trims == 0  # the trim waits for 0.4 s without asks
        after_quiet = trims_within(1, 10)
        start = time.monotonic()
        while True:  # a steady stream of asks, never quiet: a trim per max_delay anyway
            memory.release_free_memory(2**20)
            if time.monotonic() >= start + 2.5:
                break
            time.sleep(0.05)
        during_stream = memory._trimmer.trims - 1  # read at once after the last ask, which is still pending
        at_the_end = trims_within(2 + during_stream, 10)  # the asks at the stream's end get their trim
        time.sleep(1.5)
        print(first, not_at_once, after_quiet, during_stream, at_the_end,
              memory._trimmer.trims == 2 + during_stream)  # and nothing more without asks
    """)
    first, not_at_once, after_quiet, during_stream, at_the_end, no_more = out.split()
    assert (first, not_at_once, after_quiet, at_the_end, no_more) == ("True",) * 5, out
    assert 1 <= int(during_stream) <= 3, out


@needs_glibc
def test_free_heap_memory_really_goes_back():
    """Every other one of 6400 32 KB chunks freed: 100 MB of holes between live chunks stay resident (glibc returns
    only a heap's top by itself) until the trim hands their pages back."""
    out = run_python("""
        import ctypes, os, time
        from serving.server import memory
        libc = ctypes.CDLL(None)
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]
        libc.free.argtypes = [ctypes.c_void_p]
        page = os.sysconf("SC_PAGESIZE")
        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * page
        size = 32 << 10
        chunks = [libc.malloc(size) for _ in range(6400)]
        for chunk in chunks:
            ctypes.memset(chunk, 1, size)
        base = rss()
        for chunk in chunks[::2]:
            libc.free(chunk)
        freed = rss()
        assert memory.release_free_memory(100 << 20)
        deadline = time.monotonic() + 10
        while memory._trimmer.trims < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        print(base >> 20, freed >> 20, rss() >> 20)
    """)
    base, freed, trimmed = map(int, out.split())
    assert freed > base - 20, (base, freed, trimmed)  # freeing alone gave (almost) nothing back
    assert trimmed < freed - 80, (base, freed, trimmed)  # the trim gave back most of the 100 MB
