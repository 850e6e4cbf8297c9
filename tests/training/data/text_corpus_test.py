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
