import collections
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers.saved_model import load_with_session
from training.text.tokenizer import Tokenizer
from training.text.vocabulary import Vocabulary

SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]
# Counts: the 4, cat 3, sat 2, mat 2, on 1, a 1, dog 1 (and "<unk>", a special, twice).
SENTENCES = [
    "the cat sat on the mat",
    "the cat sat",
    "a cat <unk> the mat dog <unk>",
]


def token_lists():
    return [sentence.split() for sentence in SENTENCES]


def texts(tensor):
    values = tensor.to_list() if isinstance(tensor, tf.RaggedTensor) else np.asarray(tensor).tolist()
    decode = lambda v: v.decode("utf-8") if isinstance(v, bytes) else [decode(x) for x in v]  # noqa: E731
    return decode(values)


def ids(tensor):
    return tensor.to_list() if isinstance(tensor, tf.RaggedTensor) else np.asarray(tensor).tolist()


def test_build_orders_by_count_then_code_point_after_the_specials():
    vocabulary = Vocabulary.build(token_lists())
    # sat and mat tie at 2; a, dog and on tie at 1: code point order decides.
    assert vocabulary.tokens == SPECIALS + ["the", "cat", "mat", "sat", "a", "dog", "on"]
    assert (vocabulary.pad_id, vocabulary.unk_id, vocabulary.bos_id, vocabulary.eos_id) == (0, 1, 2, 3)
    assert vocabulary.size == 11 and vocabulary.specials == tuple(SPECIALS)


def test_min_count_max_size_and_the_input_forms_agree():
    lists = token_lists()
    assert Vocabulary.build(lists, min_count=2).tokens == SPECIALS + ["the", "cat", "mat", "sat"]
    assert Vocabulary.build(lists, max_size=7).tokens == SPECIALS + ["the", "cat", "mat"]
    assert Vocabulary.build(lists, max_size=4).tokens == SPECIALS
    counter = collections.Counter(token for tokens in lists for token in tokens)
    as_bytes = [[token.encode("utf-8") for token in tokens] for tokens in lists]
    ragged = tf.ragged.constant(lists)
    for data in (counter, dict(counter), as_bytes, ragged):
        assert Vocabulary.build(data).tokens == Vocabulary.build(lists).tokens
    custom = Vocabulary.build(lists, max_size=5, specials=("PAD", "UNK", "BOS", "EOS"))
    assert custom.tokens == ["PAD", "UNK", "BOS", "EOS", "the"]


def test_build_from_a_tokenized_tf_data_pipeline():
    tokenizer = Tokenizer(level="char")
    data = tf.data.Dataset.from_tensor_slices(["abba", "cab"]).map(tokenizer.tokenize)
    assert Vocabulary.build(data.as_numpy_iterator()).tokens == SPECIALS + ["a", "b", "c"]


def test_build_errors_name_the_bad_value():
    with pytest.raises(ValueError, match=r"min_count must be a positive int, got 0"):
        Vocabulary.build(token_lists(), min_count=0)
    with pytest.raises(ValueError, match=r"max_size must be None or an int of at least 4 \(the specials\), got 3"):
        Vocabulary.build(token_lists(), max_size=3)
    with pytest.raises(ValueError, match=r"expected token lists, got the string 'the cat' at position 1"):
        Vocabulary.build([["a"], "the cat"])
    with pytest.raises(ValueError, match=r"must be a non-empty string without line breaks .*got 'a\\nb'"):
        Vocabulary.build([["a\nb"]])
    with pytest.raises(ValueError, match=r"got ''"):
        Vocabulary.build([["a", ""]])
    with pytest.raises(ValueError, match=r"specials must be distinct"):
        Vocabulary.build([["a"]], specials=("x", "x", "y", "z"))
    with pytest.raises(ValueError, match=r"the count of 'a' must be a non-negative int, got -1"):
        Vocabulary.build({"a": -1})
    with pytest.raises(ValueError, match=r"tokens\[1\] must be the special '<unk>'"):
        Vocabulary(["<pad>", "cat"])


def test_save_writes_one_token_per_line_and_load_reads_it_back(tmp_path):
    vocabulary = Vocabulary.build([["héllo", "wörld", "a b", "tab\there"]])
    path = tmp_path / "sub" / "vocab.txt"
    vocabulary.save(path)
    assert path.read_bytes() == "".join(t + "\n" for t in vocabulary.tokens).encode("utf-8")
    loaded = Vocabulary.load(path)
    assert loaded.tokens == vocabulary.tokens and loaded.path == str(path)
    # "\r\n" line endings read the same (TensorFlow's file tables drop the "\r" too).
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    loaded = Vocabulary.load(crlf)
    assert loaded.tokens == vocabulary.tokens
    assert ids(loaded.encode(["héllo", "tab\there", "nope"])) == [5, 6, 1]


@pytest.mark.parametrize(
    "content, error, message",
    [
        (None, FileNotFoundError, r"no vocabulary file at '.*vocab\.txt'"),
        (b"", ValueError, r"vocab\.txt' is empty; expected the specials"),
        (b"<pad>\n<unk>\n<bos>\n<eos>\ncat\nmat\ncat\n", ValueError, r"line 7: token 'cat' already appears on line 5"),
        (b"<pad>\n<bos>\n<unk>\n<eos>\n", ValueError, r"line 2: expected the special token '<unk>', found '<bos>'"),
        (b"<pad>\n<unk>\n", ValueError, r"line 3: expected the special token '<bos>', found the end of the file"),
        (b"<pad>\n<unk>\n<bos>\n<eos>\n\ncat\n", ValueError, r"line 5 is empty; expected one token per line"),
        (b"<pad>\n<unk>\n<bos>\n<eos>\nc\xe9\n", ValueError, r"is not UTF-8: byte offset 25"),
    ],
)
def test_load_errors_say_what_and_where(tmp_path, content, error, message):
    path = tmp_path / "vocab.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=message):
        Vocabulary.load(path)


def test_tables_look_up_tokens_and_ids(tmp_path):
    vocabulary = Vocabulary.build(token_lists())
    path = str(tmp_path / "vocab.txt")
    vocabulary.save(path)
    table = vocabulary.lookup_table(path)
    inverse = vocabulary.inverse_table(path)
    assert isinstance(table, tf.lookup.StaticHashTable) and isinstance(inverse, tf.lookup.StaticHashTable)
    assert ids(table.lookup(tf.constant(["the", "on", "zebra", "<eos>"]))) == [4, 10, 1, 3]
    assert texts(inverse.lookup(tf.constant([4, 10, 11, -1, 0], tf.int64))) == ["the", "on", "<unk>", "<unk>", "<pad>"]
    assert table.lookup(tf.constant("cat")).dtype == tf.int64
    # A file holding another vocabulary is refused.
    other = str(tmp_path / "other.txt")
    Vocabulary.build([["dog"]]).save(other)
    with pytest.raises(ValueError, match=r"other\.txt' does not hold this vocabulary: line 5 is 'dog', expected 'the'"):
        vocabulary.lookup_table(other)
    with pytest.raises(FileNotFoundError, match=r"no vocabulary file at"):
        vocabulary.inverse_table(str(tmp_path / "missing.txt"))


def test_encode_and_decode(tmp_path):
    vocabulary = Vocabulary.build(token_lists())
    with pytest.raises(ValueError, match=r"encode needs the vocabulary's tables, made from its file: call save"):
        vocabulary.encode(tf.constant(["the"]))
    vocabulary.save(tmp_path / "vocab.txt")
    tokens = tf.ragged.constant([["the", "zebra", "cat"], []])
    encoded = vocabulary.encode(tokens)
    assert isinstance(encoded, tf.RaggedTensor) and encoded.dtype == tf.int64
    assert ids(encoded) == [[4, 1, 5], []]
    assert ids(vocabulary.encode(tokens, bos=True, eos=True)) == [[2, 4, 1, 5, 3], [2, 3]]
    assert ids(vocabulary.encode(tf.constant(["cat", "mat"]), eos=True)) == [5, 6, 3]
    assert texts(vocabulary.decode(vocabulary.encode(tokens))) == [["the", "<unk>", "cat"], []]
    # A padded batch (e.g. generated ids) loses its padding, bos and eos, and keeps <unk>.
    padded = tf.constant([[2, 4, 1, 3, 0], [2, 5, 0, 0, 0]], tf.int32)
    assert texts(vocabulary.decode(padded)) == [
        ["<bos>", "the", "<unk>", "<eos>", "<pad>"],
        ["<bos>", "cat", "<pad>", "<pad>", "<pad>"],
    ]
    assert texts(vocabulary.decode(padded, drop_specials=True)) == [["the", "<unk>"], ["cat"]]
    with pytest.raises(ValueError, match=r"bos/eos need tokens as ragged \[batch, \(tokens\)\] or dense \[tokens\]"):
        vocabulary.encode(tf.constant([["the", "cat"]]), bos=True)
    with pytest.raises(ValueError, match=r"decode takes integer ids, got float32"):
        vocabulary.decode(tf.constant([1.0]))


def test_encode_and_decode_inside_tf_data(tmp_path):
    tokenizer = Tokenizer()
    vocabulary = Vocabulary.build(token_lists())
    vocabulary.save(tmp_path / "vocab.txt")
    encode = lambda s: vocabulary.encode(tokenizer.tokenize(s), eos=True)  # noqa: E731
    data = tf.data.Dataset.from_tensor_slices(SENTENCES).map(encode)
    expected = [[4, 5, 7, 10, 4, 6, 3], [4, 5, 7, 3], [8, 5, 1, 4, 6, 9, 1, 3]]
    assert [x.tolist() for x in data.as_numpy_iterator()] == expected
    assert ids(encode(tf.constant(SENTENCES))) == expected  # eagerly, batched
    decoded = data.ragged_batch(3).map(lambda x: tokenizer.detokenize(vocabulary.decode(x, drop_specials=True)))
    assert texts(next(iter(decoded))) == ["the cat sat on the mat", "the cat sat", "a cat <unk> the mat dog <unk>"]


class VocabularyExport(tf.Module):
    """Strings in, padded ids and lengths out; ids in, strings out; plus a table of its own, made by lookup_table."""

    def __init__(self, vocabulary, table):
        super().__init__()
        self.tokenizer = Tokenizer()
        self.vocabulary = vocabulary  # tracks its encode/decode tables
        self.table = table  # tracked as an attribute, so saved with its asset

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="strings")])
    def encode(self, strings):
        encoded = self.vocabulary.encode(self.tokenizer.tokenize(strings), bos=True)
        return {"ids": encoded.to_tensor(self.vocabulary.pad_id), "lengths": encoded.row_lengths()}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int64, name="ids")])
    def decode(self, ids):
        return {"strings": self.tokenizer.detokenize(self.vocabulary.decode(ids, drop_specials=True))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="tokens")])
    def lookup(self, tokens):
        return {"ids": self.table.lookup(tokens)}


def test_saved_model_carries_the_file_as_an_asset_and_both_loaders_initialize_the_tables(tmp_path):
    vocabulary = Vocabulary.build(token_lists())
    source = tmp_path / "source"
    vocabulary.save(source / "vocab.txt")
    shutil.copy(source / "vocab.txt", source / "table.txt")
    module = VocabularyExport(vocabulary, vocabulary.lookup_table(source / "table.txt"))
    export = str(tmp_path / "export")
    signatures = {"serving_default": module.encode, "decode": module.decode, "lookup": module.lookup}
    tf.saved_model.save(module, export, signatures=signatures)
    assert sorted(os.listdir(os.path.join(export, "assets"))) == ["table.txt", "vocab.txt"]
    shutil.rmtree(source)  # the export must not need the original files

    strings = np.array(["the cat sat on a zebra", "mat"], object)
    want_ids = [[2, 4, 5, 7, 10, 8, 1], [2, 6, 0, 0, 0, 0, 0]]
    want_strings = [b"the cat sat on a <unk>", b"mat"]
    reloaded = tf.saved_model.load(export)
    encoded = {k: v.numpy() for k, v in reloaded.signatures["serving_default"](strings=tf.constant(strings)).items()}
    session_encoded = load_with_session(export, {"strings": strings})
    for outputs in (encoded, session_encoded):
        assert outputs["ids"].tolist() == want_ids and outputs["lengths"].tolist() == [7, 2]
    decoded = reloaded.signatures["decode"](ids=tf.constant(want_ids, tf.int64))["strings"]
    assert decoded.numpy().tolist() == want_strings
    session_decoded = load_with_session(export, {"ids": np.array(want_ids)}, signature="decode")["strings"]
    assert session_decoded.tolist() == want_strings
    tokens = np.array(["mat", "zebra", "<eos>"], object)
    assert reloaded.signatures["lookup"](tokens=tf.constant(tokens))["ids"].numpy().tolist() == [6, 1, 3]
    assert load_with_session(export, {"tokens": tokens}, signature="lookup")["ids"].tolist() == [6, 1, 3]
