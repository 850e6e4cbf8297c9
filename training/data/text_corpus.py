"""Plain-text corpora in the Penn Treebank layout: one sentence per line, one UTF-8 file per split.

The language-model PTB (Mikolov's preprocessing) ships `ptb.train.txt`, `ptb.valid.txt` and `ptb.test.txt`, with
words already lowercased, numbers as "N" and rare words as "<unk>"; other corpora in the same layout are often named
`train.txt`, `valid.txt`, `test.txt`.
"""

import os

import tensorflow as tf

from training.data import text_files

# {split: file names looked for, in order; the first that exists is read}.
SPLIT_FILES = {
    "train": ("ptb.train.txt", "train.txt"),
    "validation": ("ptb.valid.txt", "valid.txt"),
    "test": ("ptb.test.txt", "test.txt"),
}


def read_corpus(data_dir, files=None):
    """The sentences of every split.

    Args:
        data_dir: the corpus directory.
        files: {split: file name, or a list of names tried in order}, relative to `data_dir`; only these splits
            are read. Default: `SPLIT_FILES`, the train, validation and test files of PTB (`ptb.train.txt` ...),
            or `train.txt`, `valid.txt`, `test.txt`.

    Returns:
        {split: [sentence str]}: each line stripped of surrounding whitespace, blank lines left out, in file order.

    Raises:
        FileNotFoundError: no directory `data_dir`, or no file for a split (the message names the files looked for).
        ValueError: a file holds no sentence, or is not UTF-8 (the message names the file, line, byte offset and byte).
    """
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        what = "is not a directory" if os.path.exists(data_dir) else "does not exist"
        raise FileNotFoundError(f"corpus directory {data_dir!r} {what}")
    files = SPLIT_FILES if files is None else files
    if not isinstance(files, dict) or not files:
        raise ValueError(f"files must be a non-empty dict {{split: file name or list of names}}, got {files!r}")
    corpus = {}
    for split, names in files.items():
        names = (names,) if isinstance(names, (str, os.PathLike)) else tuple(names)
        if not names:
            raise ValueError(f"files[{split!r}] names no file")
        paths = [os.path.join(data_dir, os.fspath(name)) for name in names]
        found = [path for path in paths if os.path.isfile(path)]
        if not found:
            raise FileNotFoundError(
                f"no {split} file in corpus directory {data_dir!r}: looked for {', '.join(map(os.fspath, names))}"
            )
        corpus[split] = read_lines(found[0])
    return corpus


def read_lines(path):
    """The non-blank lines of the UTF-8 text file at `path`, stripped (a leading byte-order mark is dropped).

    Lines end at "\\n" only, as `training.data.text_files` reads them ("\\r\\n" endings lose their "\\r"); other
    Unicode line separators stay inside a sentence. A file without a sentence, or with bytes that are not UTF-8, is a
    `ValueError`.
    """
    all_lines = text_files.read_lines(path)
    lines = [line.strip() for line in all_lines]
    lines = [line for line in lines if line]
    if not lines:
        state = "empty" if not all_lines else "blank (whitespace only)"
        raise ValueError(f"corpus file {path!r} is {state}; expected one sentence per line")
    return lines


def sentences_dataset(lines):
    """A `tf.data.Dataset` of the sentences, in order: scalar tf.string elements (tokenize them with
    `training.text.Tokenizer`, element by element or after `.batch`).

    Args:
        lines: a list of str (e.g. one split of `read_corpus`).
    """
    if isinstance(lines, (str, bytes)):
        raise ValueError(f"lines must be a list of strings, got the single string {lines[:40]!r}")
    lines = list(lines)
    for index, line in enumerate(lines):
        if not isinstance(line, (str, bytes)):
            raise ValueError(f"lines[{index}] must be a string, got {line!r} of type {type(line).__name__}")
    return tf.data.Dataset.from_tensor_slices(tf.constant(lines, dtype=tf.string, shape=[len(lines)]))
