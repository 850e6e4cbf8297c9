import gzip
import hashlib

import pytest
import tensorflow as tf

from training.data import text_corpus
from training.text.tokenizer import Tokenizer


def write_corpus(directory, names=("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")):
    directory.mkdir(exist_ok=True)
    contents = [
        " the cat sat \n\n on the mat\n",
        "a <unk> N dog\n",
        "\ufeffthe end\r\nreally  the end\r\n\r\n",
    ]
    for name, content in zip(names, contents):
        (directory / name).write_bytes(content.encode("utf-8"))
    return directory


EXPECTED = {
    "train": ["the cat sat", "on the mat"],
    "validation": ["a <unk> N dog"],
    "test": ["the end", "really  the end"],
}


def test_reads_the_ptb_files_stripped_without_blank_lines(tmp_path):
    corpus = text_corpus.read_corpus(write_corpus(tmp_path / "ptb"))
    # Order and content: surrounding whitespace, "\r" and the byte-order mark go; inner spaces stay.
    assert corpus == EXPECTED and list(corpus) == ["train", "validation", "test"]


def test_reads_the_plain_names_and_prefers_the_ptb_names(tmp_path):
    directory = write_corpus(tmp_path / "plain", names=("train.txt", "valid.txt", "test.txt"))
    assert text_corpus.read_corpus(str(directory)) == EXPECTED
    (directory / "ptb.train.txt").write_text("from ptb\n", encoding="utf-8")
    assert text_corpus.read_corpus(directory)["train"] == ["from ptb"]


def test_files_choose_the_splits_and_their_names(tmp_path):
    directory = write_corpus(tmp_path / "c", names=("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"))
    corpus = text_corpus.read_corpus(directory, files={"train": "wiki.train.tokens", "test": ["x", "wiki.test.tokens"]})
    assert corpus == {"train": EXPECTED["train"], "test": EXPECTED["test"]}


def test_a_missing_directory_or_split_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"corpus directory '.*nowhere' does not exist"):
        text_corpus.read_corpus(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match=r"corpus directory '.*file' is not a directory"):
        text_corpus.read_corpus(tmp_path / "file")
    directory = write_corpus(tmp_path / "ptb")
    (directory / "ptb.valid.txt").unlink()
    looked_for = r"no validation file in corpus directory .*: looked for ptb\.valid\.txt, valid\.txt"
    with pytest.raises(FileNotFoundError, match=looked_for):
        text_corpus.read_corpus(directory)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", r"ptb\.test\.txt' is empty; expected one sentence per line"),
        (b" \n\t\n\n", r"ptb\.test\.txt' is blank \(whitespace only\)"),
        (b"fine\nbad \xff byte\n", r"ptb\.test\.txt' is not UTF-8: line 2, byte offset 9 \(byte 0xff\)"),
        (b"ok \xc3", r"ptb\.test\.txt' is not UTF-8: line 1, byte offset 3 \(byte 0xc3\)"),
    ],
)
def test_empty_blank_or_non_utf8_files_are_clear_errors(tmp_path, content, message):
    directory = write_corpus(tmp_path / "ptb")
    (directory / "ptb.test.txt").write_bytes(content)
    with pytest.raises(ValueError, match=message):
        text_corpus.read_corpus(directory)


def test_sentences_dataset_feeds_a_tokenizer(tmp_path):
    lines = text_corpus.read_corpus(write_corpus(tmp_path / "ptb"))["train"]
    data = text_corpus.sentences_dataset(lines)
    assert data.element_spec == tf.TensorSpec([], tf.string)
    assert [s.decode("utf-8") for s in data.as_numpy_iterator()] == lines
    tokens = next(iter(data.batch(2).map(Tokenizer().tokenize)))
    assert tokens.to_list() == [[b"the", b"cat", b"sat"], [b"on", b"the", b"mat"]]
    with pytest.raises(ValueError, match=r"lines must be a list of strings, got the single string 'the cat'"):
        text_corpus.sentences_dataset("the cat")
    with pytest.raises(ValueError, match=r"lines\[1\] must be a string, got 3 of type int"):
        text_corpus.sentences_dataset(["a", 3])


def test_the_bundled_tiny_shakespeare_decompresses_to_its_published_text():
    with open(text_corpus.TINY_SHAKESPEARE, "rb") as file:
        data = gzip.decompress(file.read())
    # The char-rnn file's SHA-256 and size (corpora/README.md): the bundled copy is that text, byte for byte.
    assert hashlib.sha256(data).hexdigest() == text_corpus.TINY_SHAKESPEARE_SHA256
    assert len(data) == text_corpus.TINY_SHAKESPEARE_CHARACTERS == 1115394


def test_split_text_cuts_at_the_line_boundaries_nearest_the_fractions():
    # 10 lines of 10 characters: 90/5/5 of 100 aims at 90 and 95, but the last boundary (90) must be left for the
    # second cut, so that every split holds a line: 80, then 90.
    text = "".join(f"line {i:04d}\n" for i in range(10))
    parts = text_corpus.split_text(text)
    assert list(parts) == ["train", "validation", "test"] and "".join(parts.values()) == text
    assert [len(p) for p in parts.values()] == [80, 10, 10]
    # A tie goes to the earlier boundary: 50 is 10 from 40 and from 60.
    text = "a" * 39 + "\n" + "b" * 19 + "\n" + "c" * 39 + "\n"
    assert [len(p) for p in text_corpus.split_text(text, {"train": 0.5, "rest": 0.5}).values()] == [40, 60]
    # Unequal lines: the cut goes to the nearest boundary, on either side of the target.
    text = "a" * 49 + "\n" + "b" * 9 + "\n" + "c" * 39 + "\n" + "d\n"  # boundaries at 50, 60, 100
    parts = text_corpus.split_text(text, {"train": 0.52, "validation": 0.43, "test": 0.05})
    assert [len(p) for p in parts.values()] == [50, 50, 2]  # of 102: 53.04 -> 50 (not 60); 96.9 -> 100
    parts = text_corpus.split_text(text, {"train": 0.58, "validation": 0.42})
    assert [len(p) for p in parts.values()] == [60, 42]  # 59.16 -> 60
    # Without a final newline the last line still counts as one; every split gets a whole line.
    assert text_corpus.split_text("a\nb\nc") == {"train": "a\n", "validation": "b\n", "test": "c"}


@pytest.mark.parametrize(
    "text, fractions, message",
    [
        ("a\nb\n", None, r"2 line\(s\) cannot be split into 3 parts \(train, validation, test\)"),
        ("one line", None, r"1 line\(s\) cannot be split into 3 parts"),
        ("a\nb\nc\n", {"train": 0.9, "test": 0.2}, r"fractions must be a dict \{split: fraction > 0\} summing to 1"),
        ("a\nb\nc\n", {"train": 1.0, "test": 0.0}, r"fractions must be a dict"),
    ],
)
def test_split_text_errors(text, fractions, message):
    with pytest.raises(ValueError, match=message):
        text_corpus.split_text(text, fractions)


def write_text(path, text):
    path.write_bytes(text.encode("utf-8"))
    return path


def test_a_text_file_is_read_verbatim_and_split_by_position(tmp_path):
    # 20 lines: blank lines, surrounding spaces and tabs stay; "\r\n" loses its "\r".
    lines = [f"  Line {i}:\tsome words " if i % 3 else "" for i in range(20)]
    text = "\n".join(lines) + "\n"
    path = write_text(tmp_path / "play.txt", text.replace("\n", "\r\n", 1))
    corpus = text_corpus.read_text_corpus(path)
    assert list(corpus) == ["train", "validation", "test"]
    parts = text_corpus.split_text(text)
    for split, part in parts.items():
        assert "\n".join(corpus[split]) + "\n" == part  # the split's lines, each ending in "\n", are its text
    assert sum(corpus.values(), []) == lines
    # gzip-compressed, the same corpus.
    with gzip.open(tmp_path / "play.txt.gz", "wb") as file:
        file.write(text.encode("utf-8"))
    assert text_corpus.read_text_corpus(str(tmp_path / "play.txt.gz")) == corpus


def test_a_text_corpus_directory_is_read_verbatim(tmp_path):
    directory = write_corpus(tmp_path / "ptb")
    corpus = text_corpus.read_text_corpus(directory)
    # Nothing stripped, blank lines kept; the line endings and the byte-order mark go as text_files reads them.
    assert corpus == {"train": [" the cat sat ", "", " on the mat"], "validation": ["a <unk> N dog"],
                      "test": ["the end", "really  the end", ""]}


def test_text_corpus_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"text corpus '.*nowhere\.txt' does not exist; expected a UTF-8"):
        text_corpus.read_text_corpus(tmp_path / "nowhere.txt")
    with pytest.raises(ValueError, match=r"text file '.*empty\.txt' is empty"):
        text_corpus.read_text_corpus(write_text(tmp_path / "empty.txt", ""))
    (tmp_path / "latin1.txt").write_bytes(b"ok\ncaf\xe9\nx\n")
    with pytest.raises(ValueError, match=r"latin1\.txt' is not UTF-8: line 2, byte offset 6 \(byte 0xe9\)"):
        text_corpus.read_text_corpus(tmp_path / "latin1.txt")
    with pytest.raises(ValueError, match=r"text file '.*short\.txt': 2 line\(s\) cannot be split into 3 parts"):
        text_corpus.read_text_corpus(write_text(tmp_path / "short.txt", "to be\nor not\n"))
    (tmp_path / "fake.txt.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match=r"fake\.txt\.gz' is not a valid gzip file"):
        text_corpus.read_text_corpus(tmp_path / "fake.txt.gz")
    directory = write_corpus(tmp_path / "ptb")
    (directory / "ptb.valid.txt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"text file '.*ptb\.valid\.txt' is empty"):
        text_corpus.read_text_corpus(directory)


def test_without_a_path_the_text_corpus_is_tiny_shakespeare_split_90_5_5():
    corpus = text_corpus.read_text_corpus()
    # Characters per split, every newline counted (the split's lines each end in one): 90.0001 / 5.0009 / 4.9990%.
    sizes = {split: sum(len(line) + 1 for line in lines) for split, lines in corpus.items()}
    assert sizes == {"train": 1003856, "validation": 55780, "test": 55758}
    assert sum(len(lines) for lines in corpus.values()) == 40000  # the text's lines, blank ones (6,284) included
    # In order, by position: the play's first line opens train, its last closes test; validation starts with the
    # blank line after a speech.
    assert corpus["train"][:2] == ["First Citizen:", "Before we proceed any further, hear me speak."]
    assert corpus["validation"][:2] == ["", "GREMIO:"]
    assert corpus["test"][-1] == "Whiles thou art waking."
