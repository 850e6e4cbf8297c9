"""TensorFlow start-up without its noise, and the launcher of every entry point.

The plain `tensorflow` wheel prints a fixed set of lines on import (the absl pre-init notice, the oneDNN notice, the
CUDA probe on machines without a GPU, the CPU-instructions notice), some of them before absl logging starts, so
`TF_CPP_MIN_LOG_LEVEL` cannot hide them. Entry points and tests call `import_tensorflow()` first: it imports
TensorFlow and Keras with file descriptor 2 captured, then writes back every captured line that is not one of those
known banner lines. Real warnings and errors, at import or later, reach stderr unchanged.

Entry points then hand their absl `main` to `run()`, which gives them the documented exit codes and keeps filtering
for the rest of the process, since some noise comes later: oneDNN's "supports DT_BOOL only on platforms with
AVX-512" at the first boolean transpose, for one.
"""

import atexit
import os
import re
import subprocess
import sys
import threading

_BANNER = re.compile(
    "|".join(
        [
            r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
            r"oneDNN custom operations are on",
            r"Could not find cuda drivers on your machine",
            r"failed call to cuInit",
            r"cpu_feature_guard\.cc",
            r"To enable the following instructions: .*rebuild TensorFlow",
            r"Unable to register cu(DNN|FFT|BLAS) factory",
            r"computation placer already registered",
            # Printed once per process and type, where oneDNN lacks a kernel for the CPU and TensorFlow's own is used:
            # DT_BOOL at the first boolean transpose (a masked RNN) without AVX-512, DT_HALF with --mixed_precision
            # without AVX-512 FP16.
            r"oneDNN supports DT_[A-Z0-9]+ only on platforms with AVX-512",
        ]
    )
)


def _drain(fd, chunks):
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        chunks.append(chunk)


def import_tensorflow():
    """Imports `tensorflow` (and `keras`) with the start-up banner filtered out; returns the `tensorflow` module."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    # INFO-level C++ logs off; WARNING and ERROR stay visible.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    saved_stderr = os.dup(2)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    chunks = []
    reader = threading.Thread(target=_drain, args=(read_fd, chunks), daemon=True)
    reader.start()
    try:
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe logs here (without starting the runtime)
        import keras  # noqa: F401
    finally:
        sys.stderr.flush()
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        reader.join()
        os.close(read_fd)
    # No TensorFlow op may run here: the runtime must still be unstarted when this returns, so that callers can
    # split devices or create a MultiWorkerMirroredStrategy. (oneDNN's one-time "supports DT_BOOL only on platforms
    # with AVX-512" line therefore comes later, at the first boolean transpose; `run()` filters it.)
    text = b"".join(chunks).decode("utf-8", errors="replace")
    # The CPU-instructions notice spans two lines; join them so one pattern matches it.
    text = text.replace("operations.\nTo enable the following", "operations. To enable the following")
    for line in text.splitlines(keepends=True):
        if not _BANNER.search(line):
            sys.stderr.write(line)
    return tf


def absl_warnings_only():
    """Call first in an absl `main`: show absl logs from WARNING up, unless --verbosity was given.

    absl raises its verbosity to INFO once flags are parsed, which turns TensorFlow's per-checkpoint INFO lines
    ("Sharding callback duration ...") into output; `--verbosity=0` brings them back.
    """
    from absl import flags
    from absl import logging

    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)


def run(main):
    """Runs an entry point: `run(main)` in place of absl's `app.run(main)`, with the documented exit status.

    - 0: done; also after --help, --helpshort and --helpfull (absl's own exit 1 there);
    - 1: the run failed (`main` returned 1, or raised);
    - 2: a usage error: an unknown or malformed flag, a required flag left out, or `app.UsageError` raised by `main`
      (absl's own exit 1 there too); `main` returns 2 for the usage errors it finds itself.

    From here to the end of the process, file descriptor 2 goes through a filter that drops the lines of `_BANNER`
    (see `_filter_stderr`).
    """
    from absl import app

    def main_with_usage_status(argv):
        try:
            return main(argv)
        except app.UsageError as error:
            error.exitcode = 2  # absl prints the usage and the error, then exits with this
            raise

    _filter_stderr()
    app.run(main_with_usage_status, flags_parser=_parse_flags)


def _parse_flags(argv):
    """absl's flag parsing (app.parse_flags_with_usage) with exit status 2 for a bad flag and 0 after the help."""
    from absl import flags

    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        sys.stderr.write(f"error: {error}\nPass --help to see the flags.\n")
        sys.exit(2)
    except SystemExit as exited:
        # While flags are parsed only absl's help flags (--help, --helpshort, --helpfull, --helpxml) exit: they print
        # the help and exit 1. Help that was asked for is no failure.
        sys.exit(0 if exited.code == 1 else exited.code)


# The filter is a process of its own rather than a thread of the entry point's: when the entry point dies (an uncaught
# exception, a C++ check that aborts, kill -9), what it wrote last is still in the pipe, and the filter forwards it
# before it sees the end of its input. It forwards whole lines; a partial line (a prompt) goes out as it is once
# nothing follows it for 50 ms. It runs isolated (-I -S: standard library only, no current directory on the path).
_FORWARD = r"""
import os, re, select, sys

noise = re.compile(sys.argv[1].encode())
reader_gone = False


def put(data):
    global reader_gone
    while data and not reader_gone:
        try:
            data = data[os.write(1, data):]
        except OSError:
            reader_gone = True  # keep reading, so that the writers never block or fail on a full pipe


pending = b""
while True:
    if pending and not select.select([0], [], [], 0.05)[0]:
        put(pending)
        pending = b""
        continue
    chunk = os.read(0, 65536)
    if not chunk:
        break
    *lines, pending = (pending + chunk).split(b"\n")
    put(b"".join(line + b"\n" for line in lines if not noise.search(line)))
put(pending)
"""

_filter = None


def _filter_stderr():
    """Sends everything written to file descriptor 2 from now on (by Python, TensorFlow's C++ runtime or a child
    process, which inherits the descriptor) through the `_FORWARD` filter to the real stderr, for the rest of the
    process. Does nothing where it cannot (no stderr, not POSIX)."""
    global _filter
    if _filter is not None or os.name != "posix" or not sys.executable:
        return
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
        real_stderr = os.dup(2)
    except (OSError, ValueError):
        return
    read_fd, write_fd = os.pipe()
    try:
        # Its own session: Ctrl-C in a terminal interrupts the entry point, not the filter that shows its last words.
        _filter = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _FORWARD, _BANNER.pattern],
            stdin=read_fd, stdout=real_stderr, stderr=real_stderr, start_new_session=True,
        )
    except OSError:
        os.close(write_fd)
        os.close(real_stderr)
        return
    finally:
        os.close(read_fd)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    atexit.register(_stop_filter, real_stderr)


def _stop_filter(real_stderr):
    """At a normal exit: gives file descriptor 2 back to the real stderr, which ends the filter's input, and waits for
    the filter to forward what it still holds, so that the last lines come before the shell's next prompt. (A child
    process that outlives this one keeps the filter going until it ends too; it is not waited for.)"""
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os.dup2(real_stderr, 2)
    try:
        _filter.wait(timeout=2)
    except subprocess.TimeoutExpired:
        pass
