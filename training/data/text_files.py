"""Reading UTF-8 text files line by line: the one reader behind the corpus, parallel-corpus and bAbI readers, so
that they agree on what a line is and say the same thing about a file that is not UTF-8.

Rules:
- The file is read whole and decoded as UTF-8; a leading byte-order mark is dropped. A file whose name ends in
  ".gz" is gzip-decompressed first (its line numbers and byte offsets are then those of the decompressed text).
- Lines end at "\\n" only; a "\\r" before it (a "\\r\\n" ending) goes with the ending, and a "\\r" at the end of a
  last line without "\\n" is dropped too. Other Unicode line separators stay inside a line (`str.splitlines` would
  split at them, so that line numbers would no longer match what `wc -l`, editors and the error messages count).
- The final newline ends the last line; it does not start another. Blank lines are kept (as lines), so that the
  index of a line is its line number less one.
- Bytes that are not UTF-8 are a `ValueError` naming the file, the line (from 1), the byte offset in the file (from
  0, the byte-order mark included) and the byte, e.g. "'valid.en' is not UTF-8: line 2, byte offset 20 (byte
  0xe9): invalid continuation byte".
"""

import gzip
import os
import zlib


def read_text(path):
    """The text of the UTF-8 file at `path`, without a leading byte-order mark.

    Args:
        path: a file path (str or os.PathLike).

    Returns:
        str: the whole file, decoded.

    Raises:
        FileNotFoundError (or another OSError): the file cannot be opened.
        ValueError: a byte is not UTF-8 (the message names the file, line, byte offset and byte), or a ".gz" file
            is not gzip data or is cut short.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        data = file.read()
    if path.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:
            raise ValueError(f"{path!r} is not a valid gzip file (its name ends in .gz): {error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(
            f"{path!r} is not UTF-8: line {line}, byte offset {error.start} (byte 0x{data[error.start]:02x}): "
            f"{error.reason}"
        ) from None
    return text.removeprefix("\ufeff")


def read_lines(path):
    """Every line of the UTF-8 file at `path`, without its line ending, blank lines kept: item i is line i + 1.

    Args:
        path: a file path (str or os.PathLike).

    Returns:
        list of str: the lines, by the rules in the module docstring (an empty file, or one holding only a
        byte-order mark, has none). Whitespace other than the line endings is kept: callers strip as their format
        asks.

    Raises:
        FileNotFoundError (or another OSError): the file cannot be opened.
        ValueError: a byte is not UTF-8 (the message names the file, line, byte offset and byte).
    """
    return split_lines(read_text(path))


def split_lines(text):
    """The lines of `text` by the rules in the module docstring (what `read_lines` returns for a file of that text,
    without its byte-order mark)."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start another
    return [line[:-1] if line.endswith("\r") else line for line in lines]
