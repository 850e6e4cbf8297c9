import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers.saved_model import load_with_session
from training.text.text_encoder import TextEncoder
from training.text.tokenizer import Tokenizer
from training.text.vocabulary import Vocabulary

# A few lines of Chinese-English, the lecture's example first.
CHINESE = ["我爱你。", "我爱机器学习。", "你爱我吗？"]
ENGLISH = ["I love you .", "I love machine learning .", "do you love me ?"]


def texts(tensor):
    return [s.decode("utf-8") for s in np.asarray(tensor).tolist()]


@pytest.fixture()
def sides(tmp_path):
    source = TextEncoder.build(CHINESE, {"split": "unspaced_scripts"})
    target = TextEncoder.build(ENGLISH, {"level": "word"})
    source.save_vocabulary(tmp_path / "source.txt")
    target.save_vocabulary(tmp_path / "target.txt")
    return source, target


def test_chinese_source_is_characters_english_target_is_words(sides):
    source, target = sides
    # The specials first, then tokens by count: "我" and "爱" three times, "。" and "你" twice ...
    assert list(source.vocabulary.tokens[:8]) == ["<pad>", "<unk>", "<bos>", "<eos>", "我", "爱", "。", "你"]
    assert set(source.vocabulary.tokens[4:]) == set("".join(CHINESE))
    assert list(target.vocabulary.tokens[4:8]) == ["love", ".", "I", "you"]
    ids = source.encode(tf.constant(["我爱你。"]), eos=True)
    assert ids.to_list() == [[4, 5, 7, 6, 3]]


def test_python_and_graph_encodings_agree_and_unknown_words_become_unk(sides):
    source, target = sides
    lines = ["I love cats .", "you love me", "Zebras !"]
    graph = target.encode(tf.constant(lines), bos=True, eos=True).to_list()
    python = [row.tolist() for row in target.encode_lines(lines, bos=True, eos=True)]
    assert graph == python
    index = {token: i for i, token in enumerate(target.vocabulary.tokens)}
    assert python[0] == [2, index["I"], index["love"], 1, index["."], 3]  # "cats" -> <unk>
    assert python[2] == [2, 1, 1, 3]
    assert all(row.dtype == np.int32 for row in target.encode_lines(lines))
    assert source.encode_lines(["我恨你"])[0].tolist() == [4, 1, 7]  # "恨" was never seen


def test_target_strings_round_trip_and_decoding_stops_at_the_first_end(sides):
    source, target = sides
    ids = target.encode(tf.constant(ENGLISH), bos=True, eos=True)
    assert texts(target.decode(ids)) == ENGLISH
    assert texts(source.decode(source.encode(tf.constant(CHINESE), eos=True))) == CHINESE
    # A decoder's dense output: padding, and whatever it wrote after <eos>, are not part of the string.
    index = {token: i for i, token in enumerate(target.vocabulary.tokens)}
    love, you, me = index["love"], index["you"], index["me"]
    dense = tf.constant([[index["I"], love, you, 3, me, me], [you, 0, 0, 0, 0, 0], [3, love, 0, 0, 0, 0],
                         [2, love, 1, 99, 0, 0]])
    assert texts(target.decode(dense)) == ["I love you", "you", "", "love <unk> <unk>"]
    assert texts(target.decode(tf.cast(dense, tf.int32))) == texts(target.decode(dense))


def test_config_round_trips_as_json(sides, tmp_path):
    _, target = sides
    config = json.loads(json.dumps(target.get_config()))
    copy = TextEncoder.from_config(config)
    assert copy.get_config() == target.get_config()
    copy.save_vocabulary(tmp_path / "copy.txt")
    assert copy.encode(tf.constant(ENGLISH)).to_list() == target.encode(tf.constant(ENGLISH)).to_list()


def test_bad_arguments_are_clear_errors(sides):
    _, target = sides
    with pytest.raises(ValueError, match=r"tokenizer must be a Tokenizer, got 'word'"):
        TextEncoder("word", target.vocabulary)
    with pytest.raises(ValueError, match=r"decode takes integer ids \[batch, max_ids\] or .*, got float32"):
        target.decode(tf.constant([[1.0]]))
    with pytest.raises(ValueError, match=r"encode needs the vocabulary's tables"):
        TextEncoder(Tokenizer(), Vocabulary.build([["a"]])).encode(tf.constant(["a"]))
    with pytest.raises(ValueError, match=r"lines must be a list of strings, got the single string 'I love'"):
        TextEncoder.build("I love", {"level": "word"})


class Translator(tf.Module):
    """Strings in, ids out on the source side; ids in, strings out on the target side (an export's two ends)."""

    def __init__(self, source, target):
        super().__init__()
        self.source, self.target = source, target

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="strings")])
    def encode(self, strings):
        ids = self.source.encode(strings, eos=True)
        return {"ids": ids.to_tensor(0), "lengths": ids.row_lengths()}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int64, name="ids")])
    def decode(self, ids):
        return {"strings": self.target.decode(ids)}


def test_saved_model_tokenizes_and_detokenizes_in_both_loaders(tmp_path):
    files = tmp_path / "vocabularies"
    source = TextEncoder.build(CHINESE, {"split": "unspaced_scripts"})
    target = TextEncoder.build(ENGLISH, {"level": "word"})
    source.save_vocabulary(files / "source.txt")
    target.save_vocabulary(files / "target.txt")
    module = Translator(source, target)
    export = str(tmp_path / "export")
    tf.saved_model.save(module, export, signatures={"serving_default": module.encode, "decode": module.decode})
    assert sorted(os.listdir(os.path.join(export, "assets"))) == ["source.txt", "target.txt"]
    shutil.rmtree(files)

    strings = np.array(["我爱你。", "你爱机器吗？"], object)
    want = source.encode(tf.constant(strings), eos=True)
    ids = target.encode(tf.constant(ENGLISH), eos=True).to_tensor(0)
    reloaded = tf.saved_model.load(export)
    for outputs in (
        {k: v.numpy() for k, v in reloaded.signatures["serving_default"](strings=tf.constant(strings)).items()},
        load_with_session(export, {"strings": strings}),
    ):
        assert outputs["ids"].tolist() == want.to_tensor(0).numpy().tolist()
        assert outputs["lengths"].tolist() == [5, 7]
    assert texts(reloaded.signatures["decode"](ids=ids)["strings"]) == ENGLISH
    assert texts(load_with_session(export, {"ids": ids.numpy()}, signature="decode")["strings"]) == ENGLISH
