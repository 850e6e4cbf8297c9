"""RepeatFilter: a few records of each kind a minute, and the next one says how many were held back."""

import logging

from serving.server.log_limits import RepeatFilter


def test_repeats_are_held_back_and_counted():
    now = [0.0]
    repeat_filter = RepeatFilter(per_window=2, window=60.0, clock=lambda: now[0])
    logger = logging.getLogger("tests.log_limits")
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger.addHandler(Keep())
    logger.addFilter(repeat_filter)
    logger.propagate = False
    try:
        for index in range(100):
            logger.warning("request %d refused", index)
            try:
                raise ValueError(index)
            except ValueError:
                logger.exception("unexpected error")
        logger.warning("another kind")
        now[0] = 61.0
        logger.warning("request %d refused", 100)
    finally:
        logger.removeFilter(repeat_filter)
    assert records == [
        "request 0 refused", "unexpected error", "request 1 refused", "unexpected error", "another kind",
        "request 100 refused [98 more like this held back since the last one logged]",
    ]
