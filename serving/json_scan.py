"""What a JSON text would cost to parse, measured on its bytes without parsing it.

Python's `json` builds a Python object for every value (a list of two floats costs about 130 bytes): a body of
64 MB of `[],` would take 1.5 GB and seconds. `scan` counts, with NumPy over the raw bytes in fixed-size chunks (so
its own memory is bounded whatever the body), an upper bound on the number of values and keys, and the deepest
nesting of arrays and objects, so that a request over the limits is refused before any object is built. It also
finds rapidjson's non-finite tokens that Python's `json` lacks (`Inf`, `-Inf`, `-NaN`) outside strings, so they can
be rewritten to the spellings Python reads.

Strings are skipped exactly: a quote preceded by an odd number of backslashes is part of its string. For a valid
JSON text the counts are exact bounds; an invalid one fails in the parser anyway.
"""

import numpy as np

CHUNK_BYTES = 1 << 18  # the scan's working memory is a small multiple of this (about 40x)

_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPENERS = b"[{"
_CLOSERS = b"]}"
_SEPARATORS = b",:"
_LETTERS = b"IN"  # the first letters of Inf / NaN, for `-NaN` and `Inf` not followed by `inity`

_INTERESTING = np.zeros(256, bool)
_INTERESTING[list(_OPENERS + _CLOSERS + _SEPARATORS + _LETTERS)] = True
_STEP = np.zeros(256, np.int64)
_STEP[list(_OPENERS)] = 1
_STEP[list(_CLOSERS)] = -1
_STARTS_VALUE = np.zeros(256, bool)  # a value or key follows each of these
_STARTS_VALUE[list(_OPENERS + _SEPARATORS)] = True


class Extent:
    """`values`: at most this many values and keys; `depth`: the deepest nesting; `letters`: positions of `I` and
    `N` outside strings (where `Inf`, `-Inf` and `-NaN` may start)."""

    def __init__(self, values, depth, letters):
        self.values = values
        self.depth = depth
        self.letters = letters


def _escaped(quotes, backslashes, carried):
    """Which `quotes` (positions in a chunk) are escaped: preceded by an odd run of backslashes, counting the
    `carried` backslashes that ended the previous chunk."""
    runs = np.zeros(len(quotes), np.int64)
    if len(backslashes):
        # The start of each backslash's run, and for each quote the backslash just before it (if adjacent).
        new_run = np.empty(len(backslashes), bool)
        new_run[0] = True
        new_run[1:] = np.diff(backslashes) != 1
        run_start = backslashes[np.maximum.accumulate(np.where(new_run, np.arange(len(backslashes)), 0))]
        before = np.searchsorted(backslashes, quotes) - 1
        adjacent = (before >= 0) & (backslashes[np.maximum(before, 0)] == quotes - 1)
        ends = backslashes[before[adjacent]]
        starts = run_start[before[adjacent]]
        runs[adjacent] = ends - starts + 1 + np.where(starts == 0, carried, 0)
    runs[quotes == 0] = carried
    return runs % 2 == 1


def _trailing_backslashes(chunk, backslashes, carried):
    """Length of the run of backslashes that ends `chunk` (continuing the carried one if it spans the chunk)."""
    if not len(backslashes) or backslashes[-1] != len(chunk) - 1:
        return 0
    gaps = np.flatnonzero(np.diff(backslashes) != 1)
    start = backslashes[gaps[-1] + 1] if len(gaps) else backslashes[0]
    return len(chunk) - start + (carried if start == 0 else 0)


def scan(body, chunk_bytes=CHUNK_BYTES):
    """The Extent of the JSON text `body` (bytes-like)."""
    data = np.frombuffer(body, np.uint8)
    in_string = False
    carried = 0  # backslashes ending the previous chunk
    depth = deepest = 0
    values = 1  # the top-level value
    letters = []
    for offset in range(0, len(data), chunk_bytes):
        chunk = data[offset : offset + chunk_bytes]
        quotes = np.flatnonzero(chunk == _QUOTE)
        backslashes = np.flatnonzero(chunk == _BACKSLASH) if len(quotes) or chunk[-1] == _BACKSLASH else quotes
        if len(quotes):
            quotes = quotes[~_escaped(quotes, backslashes, carried)]
        carried = _trailing_backslashes(chunk, backslashes, carried)
        marks = np.flatnonzero(_INTERESTING[chunk])
        if len(marks) and (len(quotes) or in_string):
            outside = (np.searchsorted(quotes, marks) + in_string) % 2 == 0
            marks = marks[outside]
        in_string ^= bool(len(quotes) % 2)
        if not len(marks):
            continue
        kinds = chunk[marks]
        values += int(np.count_nonzero(_STARTS_VALUE[kinds]))
        levels = np.cumsum(_STEP[kinds]) + depth
        deepest = max(deepest, int(levels.max()))
        depth = int(levels[-1])
        found = marks[(kinds == _LETTERS[0]) | (kinds == _LETTERS[1])]
        if len(found):
            letters.append(found + offset)
    return Extent(values, deepest, np.concatenate(letters) if letters else np.zeros(0, np.int64))


def spell_non_finite(body, letters):
    """`body` with rapidjson's `Inf` / `-Inf` spelled `Infinity` / `-Infinity` and `-NaN` spelled `NaN` (the sign of
    a NaN means nothing), at `letters` (positions of `I` / `N` outside strings, from `scan`); the spellings Python's
    `json` reads. Returns `body` itself when there is nothing to rewrite."""
    pieces, last = [], 0
    for position in letters.tolist():
        if body[position : position + 3] == b"Inf" and body[position : position + 8] != b"Infinity":
            pieces += [body[last:position], b"Infinity"]
            last = position + 3
        elif body[position : position + 3] == b"NaN" and position and body[position - 1 : position] == b"-":
            pieces += [body[last : position - 1], b"NaN"]
            last = position + 3
    if not pieces:
        return body
    return b"".join(pieces + [body[last:]])
