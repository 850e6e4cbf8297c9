"""Logs that a flood of requests cannot flood.

`RepeatFilter` lets through at most a few records of each kind a minute (a kind: the logger, the message template
and, for an exception, its type and the line that raised it); the next record of that kind to pass says how many
were held back meanwhile. `python -m serving.server` puts it on the server's logger and on uvicorn's, which logs a
warning for every malformed HTTP request (a program that embeds ModelServer keeps its own logging setup).

TensorFlow's C++ runtime logs a warning for many failed model runs ("Local rendezvous is aborting with status:
INVALID_ARGUMENT ..."), one per refused request; the server therefore starts TensorFlow with C++ logging at ERROR
(`TF_CPP_MIN_LOG_LEVEL=2`, unless the variable is set).
"""

import logging
import threading
import time

SERVER_LOGGERS = ("serving.server", "uvicorn.error")


class RepeatFilter(logging.Filter):
    """At most `per_window` records per kind per `window` seconds (see the module docstring)."""

    def __init__(self, per_window=5, window=60.0, clock=time.monotonic):
        super().__init__()
        self.per_window = per_window
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._kinds = {}  # kind -> [window start, records passed in it, records held back since the last passed]

    def filter(self, record):
        where = None
        if record.exc_info and record.exc_info[2] is not None:
            trace = record.exc_info[2]
            while trace.tb_next is not None:
                trace = trace.tb_next
            where = (record.exc_info[0].__name__, trace.tb_frame.f_code.co_filename, trace.tb_lineno)
        kind = (record.name, str(record.msg), where)
        with self._lock:
            now = self.clock()
            entry = self._kinds.get(kind)
            if entry is None:
                if len(self._kinds) >= 10_000:  # kinds come from code, but the table stays bounded whatever happens
                    self._kinds.clear()
                entry = self._kinds[kind] = [now, 0, 0]
            if now - entry[0] >= self.window:
                entry[0], entry[1] = now, 0
            if entry[1] >= self.per_window:
                entry[2] += 1
                return False
            entry[1] += 1
            held_back, entry[2] = entry[2], 0
        if held_back:
            record.msg = f"{record.msg} [{held_back} more like this held back since the last one logged]"
        return True


def limit_server_logs(filter_=None):
    """Puts one RepeatFilter (or `filter_`) on the server's loggers; calling it again changes nothing."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RepeatFilter) for existing in logger.filters):
            logger.addFilter(filter_ or _SHARED)


_SHARED = RepeatFilter()
