"""TensorFlow start-up without its banner.

The plain `tensorflow` wheel prints a fixed set of lines on import (the absl pre-init notice, the oneDNN notice, the
CUDA probe on machines without a GPU, the CPU-instructions notice), some of them before absl logging starts, so
`TF_CPP_MIN_LOG_LEVEL` cannot hide them. Entry points and tests call `import_tensorflow()` first: it imports
TensorFlow and Keras with file descriptor 2 captured, then writes back every captured line that is not one of those
known banner lines. Real warnings and errors, at import or later, reach stderr unchanged.
"""

import os
import re
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
    # with AVX-512" line therefore still appears at the first boolean transpose, e.g. a masked RNN; it is harmless.)
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
