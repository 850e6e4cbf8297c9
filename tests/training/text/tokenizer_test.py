import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers.saved_model import load_with_session
from training.text.tokenizer import Tokenizer

WORDPIECES = ["[UNK]", "the", "cat", "un", "##aff", "##able", "##s", "sat"]


def texts(tensor):
    """A (ragged) tf.string tensor as nested lists of str."""
    values = tensor.to_list() if isinstance(tensor, tf.RaggedTensor) else np.asarray(tensor).tolist()
    decode = lambda v: v.decode("utf-8") if isinstance(v, bytes) else [decode(x) for x in v]  # noqa: E731
    return decode(values)


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def test_words_split_at_whitespace_and_join_with_one_space():
    tokenizer = Tokenizer()
    tokens = tokenizer.tokenize(tf.constant(["The cat\tsat  down.", "", " x "]))
    assert isinstance(tokens, tf.RaggedTensor)
    assert texts(tokens) == [["The", "cat", "sat", "down."], [], ["x"]]
    assert texts(tokenizer.detokenize(tokens)) == ["The cat sat down.", "", "x"]
    # One string (an unbatched tf.data element) gives dense tokens, and back.
    one = tokenizer.tokenize(tf.constant("a  b"))
    assert not isinstance(one, tf.RaggedTensor) and texts(one) == ["a", "b"]
    assert texts(tokenizer.detokenize(one)) == "a b"


def test_unicode_script_split_and_lowercase():
    tokenizer = Tokenizer(split="unicode_script", lowercase=True)
    tokens = tokenizer.tokenize(tf.constant(["Hello, WORLD! ÄB 42x", "Straße"]))
    assert texts(tokens) == [["hello", ",", "world", "!", "äb", "42", "x"], ["straße"]]
    # Lowercasing, not case folding: "ß" stays (case_fold_utf8 would make "ss").
    assert texts(Tokenizer(lowercase=True).tokenize(tf.constant(["ÀÉ ß"]))) == [["àé", "ß"]]


def test_characters_keep_spaces_so_detokenization_is_exact():
    tokenizer = Tokenizer(level="char")
    strings = ["a  b\tç", "日本 語", ""]
    tokens = tokenizer.tokenize(tf.constant(strings))
    assert texts(tokens) == [["a", " ", " ", "b", "\t", "ç"], ["日", "本", " ", "語"], []]
    assert texts(tokenizer.detokenize(tokens)) == strings
    # Dense tokens padded with "" (a signature's output) detokenize to the same strings.
    assert texts(tokenizer.detokenize(tokens.to_tensor(""))) == strings


def test_unspaced_scripts_are_split_into_characters_and_spaced_text_into_words():
    tokenizer = Tokenizer(split="unspaced_scripts")
    strings = ["我爱你。", "机器学习很有趣！", "I love you.", "我用Python写代码，好吗？", "東京はきれいです", "สวัสดี"]
    tokens = texts(tokenizer.tokenize(tf.constant(strings)))
    assert tokens[0] == ["我", "爱", "你", "。"]
    assert tokens[1] == ["机", "器", "学", "习", "很", "有", "趣", "！"]
    assert tokens[2] == ["I", "love", "you."]
    assert tokens[3] == ["我", "用", "Python", "写", "代", "码", "，", "好", "吗", "？"]
    assert tokens[4] == list("東京はきれいです") and tokens[5] == list("สวัสดี")
    # Back to the same strings: no space next to a character of an unspaced script, one space between words.
    assert texts(tokenizer.detokenize(tokenizer.tokenize(tf.constant(strings)))) == strings
    # Whitespace of any kind (the ideographic space too) only separates; spaces next to Chinese do not come back.
    spaced = tokenizer.tokenize(tf.constant(["a\u3000b  c ", "我 爱 你", ""]))
    assert texts(spaced) == [["a", "b", "c"], ["我", "爱", "你"], []]
    assert texts(tokenizer.detokenize(tf.ragged.constant([["Hi", "我", "x", "y"]]))) == ["Hi我x y"]


def test_wordpieces_from_a_list_and_from_a_file_agree(tmp_path):
    strings = tf.constant(["the cats sat", "unaffable dog"])
    expected = [["the", "cat", "##s", "sat"], ["un", "##aff", "##able", "[UNK]"]]
    from_list = Tokenizer(wordpiece_vocabulary=WORDPIECES)
    from_file = Tokenizer(wordpiece_vocabulary=write_lines(tmp_path / "wordpieces.txt", WORDPIECES))
    for tokenizer in (from_list, from_file):
        tokens = tokenizer.tokenize(strings)
        assert texts(tokens) == expected
        # "##" pieces join the piece before them; an unknown word stays "[UNK]".
        assert texts(tokenizer.detokenize(tokens)) == ["the cats sat", "unaffable [UNK]"]
        assert texts(tokenizer.detokenize(tokens.to_tensor(""))) == ["the cats sat", "unaffable [UNK]"]


@pytest.mark.parametrize(
    "options",
    [{"level": "char"}, {"wordpiece_vocabulary": WORDPIECES, "lowercase": True}, {"split": "unspaced_scripts"}],
)
def test_tokenize_inside_tf_data_matches_eager(options):
    tokenizer = Tokenizer(**options)
    strings = ["The cats sat", "unaffable", "x y", "我爱你。"]
    data = tf.data.Dataset.from_tensor_slices(strings)
    per_element = [texts(tokens) for tokens in data.map(tokenizer.tokenize)]
    batched = next(iter(data.batch(4).map(tokenizer.tokenize)))
    eager = texts(tokenizer.tokenize(tf.constant(strings)))
    assert per_element == eager and texts(batched) == eager
    round_trip = data.batch(4).map(lambda s: tokenizer.detokenize(tokenizer.tokenize(s)))
    assert texts(next(iter(round_trip))) == texts(tokenizer.detokenize(tokenizer.tokenize(tf.constant(strings))))


def test_config_is_plain_json_and_round_trips(tmp_path):
    path = write_lines(tmp_path / "wordpieces.txt", WORDPIECES)
    strings = tf.constant(["The cats sat 在家"])
    for tokenizer in (
        Tokenizer(),
        Tokenizer(level="char", lowercase=True),
        Tokenizer(split="unicode_script", wordpiece_vocabulary=WORDPIECES),
        Tokenizer(wordpiece_vocabulary=path),
        Tokenizer(split="unspaced_scripts", lowercase=True),
    ):
        config = tokenizer.get_config()
        assert json.loads(json.dumps(config)) == config
        copy = Tokenizer.from_config(json.loads(json.dumps(config)))
        assert copy.get_config() == config
        assert texts(copy.tokenize(strings)) == texts(tokenizer.tokenize(strings))
    assert Tokenizer(wordpiece_vocabulary=WORDPIECES).get_config() == {
        "level": "word",
        "split": "whitespace",
        "lowercase": False,
        "wordpiece_vocabulary": WORDPIECES,
    }


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"level must be one of \('word', 'char'\), got 'byte'"):
        Tokenizer(level="byte")
    with pytest.raises(ValueError, match=r"split must be one of .*, got 'comma'"):
        Tokenizer(split="comma")
    with pytest.raises(ValueError, match=r"split only applies to level 'word'; got split='unicode_script'"):
        Tokenizer(level="char", split="unicode_script")
    with pytest.raises(ValueError, match=r"lowercase must be a bool, got 'yes'"):
        Tokenizer(lowercase="yes")
    with pytest.raises(ValueError, match=r"a wordpiece_vocabulary needs level 'word', got level='char'"):
        Tokenizer(level="char", wordpiece_vocabulary=WORDPIECES)
    missing = str(tmp_path / "missing.txt")
    with pytest.raises(FileNotFoundError, match=r"no wordpiece vocabulary file at .*missing\.txt"):
        Tokenizer(wordpiece_vocabulary=missing)
    with pytest.raises(ValueError, match=r"wordpiece_vocabulary\[2\] repeats 'a'"):
        Tokenizer(wordpiece_vocabulary=["a", "b", "a"])
    with pytest.raises(ValueError, match=r"wordpiece_vocabulary\[1\] must be a non-empty string on one line"):
        Tokenizer(wordpiece_vocabulary=["a", ""])
    with pytest.raises(ValueError, match=r"unknown Tokenizer config keys \['case'\]"):
        Tokenizer.from_config({"level": "word", "case": True})
    with pytest.raises(ValueError, match=r"tokenize takes a scalar or a \[batch\] vector of strings, got shape \(1, 2"):
        Tokenizer().tokenize(tf.constant([["a", "b"]]))
    with pytest.raises(ValueError, match=r"detokenize takes tf.string tokens, got int32"):
        Tokenizer().detokenize(tf.constant([[1, 2]]))


class TokenizerExport(tf.Module):
    """Strings in, dense tokens and lengths out; dense (padded) tokens in, strings out."""

    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="strings")])
    def tokenize(self, strings):
        tokens = self.tokenizer.tokenize(strings)
        return {"tokens": tokens.to_tensor(""), "lengths": tokens.row_lengths()}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="tokens")])
    def detokenize(self, tokens):
        return {"strings": self.tokenizer.detokenize(tokens)}


@pytest.mark.parametrize("level", ["char", "wordpiece", "unspaced_scripts"])
def test_saved_model_runs_in_both_loaders_without_the_original_files(tmp_path, level):
    vocabulary_path = write_lines(tmp_path / "wordpieces.txt", WORDPIECES)
    if level == "char":
        tokenizer = Tokenizer(level="char")
    elif level == "unspaced_scripts":
        tokenizer = Tokenizer(split="unspaced_scripts")
    else:
        tokenizer = Tokenizer(wordpiece_vocabulary=vocabulary_path, lowercase=True)
    module = TokenizerExport(tokenizer)
    export = str(tmp_path / "export")
    tf.saved_model.save(
        module, export, signatures={"serving_default": module.tokenize, "detokenize": module.detokenize}
    )
    os.remove(vocabulary_path)

    batches = [["The cats sat", "unaffable dog", ""], ["çat  ##s"], ["我爱你。", "机器学习 is fun"]]
    expected = {}
    for batch in batches:
        tokens = tokenizer.tokenize(tf.constant(batch))
        expected[tuple(batch)] = (texts(tokens), tokenizer.detokenize(tokens).numpy().tolist())
    reloaded = tf.saved_model.load(export)
    for batch in batches:
        want_tokens, want_strings = expected[tuple(batch)]
        for outputs in (
            {k: v.numpy() for k, v in reloaded.signatures["serving_default"](strings=tf.constant(batch)).items()},
            load_with_session(export, {"strings": np.array(batch, object)}),
        ):
            got = [row[:n].tolist() for row, n in zip(outputs["tokens"], outputs["lengths"])]
            assert [[t.decode("utf-8") for t in row] for row in got] == want_tokens
            # Padding never reaches the strings: the detokenize signature takes the padded tokens back.
            back = load_with_session(export, {"tokens": outputs["tokens"]}, signature="detokenize")
            assert back["strings"].tolist() == want_strings
            detokenize = reloaded.signatures["detokenize"]
            assert detokenize(tokens=tf.constant(outputs["tokens"]))["strings"].numpy().tolist() == want_strings
