"""The Keras peer of the attention experiment: its step-by-step greedy decoding is the argmax of its teacher-forced
logits, source padding changes nothing, and the comparison trains both sides and writes their rows."""

import re

import keras
import numpy as np
import pytest

from training.experiments import keras_peer

BOS, EOS = 2, 3


def small_peer(seed=0):
    keras.utils.set_random_seed(seed)
    return keras_peer.build_peer(source_vocab_size=20, target_vocab_size=12, units=8, embedding_dim=6)


def padded_sources(lengths, width, seed=0):
    rng = np.random.default_rng(seed)
    source = np.zeros((len(lengths), width), "int32")
    for row, length in enumerate(lengths):
        source[row, :length] = rng.integers(4, 20, size=length)
    return source


def test_greedy_decoding_step_by_step_is_the_argmax_of_the_teacher_forced_logits():
    peer = small_peer()
    # Larger logits, so that the random model's greedy choices are not near-ties.
    readout = peer.model.get_layer("readout")
    readout.kernel.assign(readout.kernel * 20.0)
    source = padded_sources([7, 3, 5, 1], width=9)
    tokens = keras_peer.greedy_ids(peer, source, decode_length=10, bos_id=BOS, eos_id=EOS, banned_ids=(0, BOS))
    target_in = np.concatenate([np.full((4, 1), BOS, "int32"), tokens[:, :-1]], axis=1)
    logits = np.array(peer.model((source, target_in), training=False))
    logits[..., [0, BOS]] = -np.inf
    expected = np.argmax(logits, axis=-1)
    assert len(set(tokens[:, :4].ravel())) > 2  # the rows differ: the decoder reads its source
    for row in range(4):
        ended = np.flatnonzero(tokens[row] == EOS)
        length = ended[0] + 1 if len(ended) else tokens.shape[1]
        np.testing.assert_array_equal(tokens[row, :length], expected[row, :length])
        assert np.all(tokens[row, length:] == 0)  # <pad> after <eos>


def test_source_padding_changes_neither_the_logits_nor_the_translation():
    peer = small_peer(1)
    source = padded_sources([6, 2, 4], width=6, seed=1)
    wider = np.concatenate([source, np.zeros((3, 5), "int32")], axis=1)
    target_in = np.array([[BOS, 5, 6, 7], [BOS, 8, 0, 0], [BOS, 4, 9, 0]], "int32")
    np.testing.assert_allclose(peer.model((source, target_in)), peer.model((wider, target_in)), atol=1e-6)
    np.testing.assert_array_equal(keras_peer.greedy_ids(peer, source, 8, BOS, EOS),
                                  keras_peer.greedy_ids(peer, wider, 8, BOS, EOS))


def test_the_peer_has_the_documented_layers_and_sizes():
    peer = small_peer()
    # Embeddings 20*6 + 12*6; encoder 2 * 4*8*(6+8+1); decoder 4*16*(6+16+1); attention scale 16; readout (32+1)*12.
    assert peer.model.count_params() == 20 * 6 + 12 * 6 + 2 * 4 * 8 * 15 + 4 * 16 * 23 + 16 + 33 * 12
    assert isinstance(peer.model.get_layer("attention"), keras.layers.AdditiveAttention)


@pytest.mark.slow
def test_the_comparison_trains_both_sides_and_writes_a_row_each(tmp_path):
    text = keras_peer.compare(str(tmp_path), seeds=(0,), epochs=1, tiny=True)
    lines = text.splitlines()
    assert lines[0] == "## Against the Keras peer at equal epochs"
    rows = [line.split(" | ") for line in lines if line.startswith("| ") and not line.startswith("| data")]
    assert [(row[0][2:].split(" (")[0], row[1].split(" ")[0]) for row in rows] == [
        ("dates", "Keras"), ("dates", "zoo"),
        ("synthetic language pair", "Keras"), ("synthetic language pair", "zoo"), ("synthetic language pair", "zoo")]
    assert "attention_layer_size 16)" in rows[3][1] and "attention_layer_size 8)" in rows[4][1]
    for row in rows:
        parameters, epochs = int(row[2].replace(",", "")), int(row[3])
        assert parameters > 1000 and epochs == 1
        scores = row[6:10]
        scores[-1] = scores[-1].rstrip(" |")
        if row[1].startswith("Keras"):
            assert scores[1] == scores[3] == "—"  # no beam search
            scores = [scores[0], scores[2]]
        for value in scores:
            assert re.fullmatch(r"\d+\.\d", value) and 0.0 <= float(value) <= 100.0, row
    # The runs are kept: a second call reads them instead of training again.
    assert keras_peer.compare(str(tmp_path), seeds=(0,), epochs=1, tiny=True) == text
