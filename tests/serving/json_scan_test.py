"""json_scan measures a JSON text on its bytes exactly as a character-by-character reading does."""

import random

import numpy as np
import pytest

from serving import json_scan


def reference(text):
    """(values, depth, letters) read one character at a time: strings skipped (a quote after an odd run of
    backslashes is escaped), a value or key counted after each [ { , : and the top-level one."""
    values, depth, deepest, in_string, run, letters = 1, 0, 0, False, 0, []
    for index, char in enumerate(text):
        escaped = run % 2 == 1
        run = run + 1 if char == "\\" else 0
        if char == '"' and not escaped:
            in_string = not in_string
        elif in_string:
            continue
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            values += 1
        elif char in "]}":
            depth -= 1
        elif char in ",:":
            values += 1
        elif char in "IN":
            letters.append(index)
    return values, deepest, letters


def test_scan_equals_the_character_by_character_reading_at_every_chunk_size():
    # Random texts over the characters that matter, cut into chunks of every size that splits escapes, strings and
    # runs of backslashes across chunk boundaries.
    rng = random.Random(0)
    alphabet = ["[", "]", "{", "}", ",", ":", '"', "\\", "a", "I", "N", "1", " "]
    for _ in range(1500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 50)))
        for chunk_bytes in (1, 2, 3, 7, json_scan.CHUNK_BYTES):
            extent = json_scan.scan(text.encode(), chunk_bytes)
            assert (extent.values, extent.depth, extent.letters.tolist()) == reference(text), (text, chunk_bytes)


def test_strings_hide_brackets_and_escapes():
    extent = json_scan.scan(b'{"a": "[[[{\\"]]", "b": [[1, 2], [3]], "c": "\\\\"}')
    # the top-level value, then { : , : [ [ , , [ , : (nothing inside the strings)
    assert (extent.depth, extent.values) == (3, 12)


@pytest.mark.parametrize(
    "body, spelled",
    [
        (b"[Inf, -Inf, NaN, -NaN, Infinity, -Infinity]", b"[Infinity, -Infinity, NaN, NaN, Infinity, -Infinity]"),
        (b'{"Inf": "Inf -NaN", "x": Inf}', b'{"Inf": "Inf -NaN", "x": Infinity}'),
        (b"[1, 2]", b"[1, 2]"),
    ],
)
def test_non_finite_spellings(body, spelled):
    assert json_scan.spell_non_finite(body, json_scan.scan(body).letters) == spelled


def test_the_scan_takes_bounded_memory_whatever_the_body():
    import tracemalloc

    body = b"[" + b'"\\"",' * 2_000_000 + b"1]"  # 10 MB of strings full of escapes
    tracemalloc.start()
    extent = json_scan.scan(body)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert (extent.values, extent.depth) == (2_000_002, 1)  # the top-level value, [, 2,000,000 commas
    assert peak < 50 * json_scan.CHUNK_BYTES, peak
    assert np.frombuffer(body, np.uint8).size == len(body)
