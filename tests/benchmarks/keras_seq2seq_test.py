"""The Keras baseline of the encoder-decoder benchmark computes what the zoo's Seq2Seq computes, given its weights."""

import numpy as np
import pytest

import zoo
from benchmarks.keras_seq2seq import KerasSeq2Seq

SOURCE_VOCAB, TARGET_VOCAB = 20, 9


def inputs():
    rng = np.random.default_rng(0)
    source = rng.integers(4, SOURCE_VOCAB, size=(3, 7)).astype("int32")
    source[0, 4:] = 0  # padded rows: the masks must agree
    source[1, 6:] = 0
    target_in = rng.integers(2, TARGET_VOCAB, size=(3, 5)).astype("int32")
    return source, target_in


@pytest.mark.parametrize("preset, attention", [
    ("seq2seq_plain", "none"), ("seq2seq_luong", "luong"), ("seq2seq_bahdanau", "bahdanau"),
])
def test_the_keras_model_with_the_zoo_weights_gives_the_zoo_logits(preset, attention):
    options = {} if attention == "none" else {"input_feeding": False, "attention_layer_size": 5}
    if attention == "bahdanau":
        options["attention_options"] = {"units": 4}
    ours = zoo.models.get(preset, source_vocab_size=SOURCE_VOCAB, target_vocab_size=TARGET_VOCAB, units=8,
                          embedding_dim=6, **options)
    source, target_in = inputs()
    ours((source, target_in))
    # Larger weights than the initializers' make every part of the model move the logits.
    rng = np.random.default_rng(1)
    for variable in ours.weights:
        variable.assign(rng.normal(0.0, 0.5, variable.shape).astype("float32"))
    theirs = KerasSeq2Seq(SOURCE_VOCAB, TARGET_VOCAB, units=8, embedding_dim=6, attention=attention,
                          attention_layer_size=None if attention == "none" else 5,
                          attention_units=4 if attention == "bahdanau" else None)
    theirs((source, target_in))
    assert theirs.count_params() == ours.count_params()
    theirs.copy_weights_from(ours)
    expected = np.asarray(ours((source, target_in)))
    assert np.abs(expected).max() > 0.5  # logits that the weights shape
    np.testing.assert_allclose(np.asarray(theirs((source, target_in))), expected, atol=1e-5)


def test_weights_of_a_model_with_input_feeding_are_refused():
    ours = zoo.models.get("seq2seq_luong", source_vocab_size=SOURCE_VOCAB, target_vocab_size=TARGET_VOCAB, units=8,
                          embedding_dim=6, attention_layer_size=5)
    theirs = KerasSeq2Seq(SOURCE_VOCAB, TARGET_VOCAB, units=8, embedding_dim=6, attention="luong",
                          attention_layer_size=5)
    ours(inputs())
    theirs(inputs())
    with pytest.raises(ValueError, match="no input feeding"):
        theirs.copy_weights_from(ours)


def test_attention_without_an_attention_layer_is_refused():
    with pytest.raises(ValueError, match="attention_layer_size must be set with attention"):
        KerasSeq2Seq(SOURCE_VOCAB, TARGET_VOCAB, units=8, embedding_dim=6, attention="luong")
