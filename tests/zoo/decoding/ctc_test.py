import itertools

import keras
import numpy as np
import pytest

from zoo.decoding.ctc import collapse_word_tags
from zoo.decoding.ctc import ctc_beam_search_decode
from zoo.decoding.ctc import ctc_greedy_decode


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def collapse(path, blank=0):
    """CTC's many-to-one map: merge repeats, then remove blanks."""
    merged = [label for index, label in enumerate(path) if index == 0 or label != path[index - 1]]
    return tuple(label for label in merged if label != blank)


def rows(labels, lengths):
    return [tuple(int(v) for v in row[:n]) for row, n in zip(numpy(labels), numpy(lengths))]


@pytest.mark.jax
def test_best_path_is_the_frames_argmax_collapsed():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 9, 5)).astype("float32") * 3
    lengths = np.array([9, 5, 1, 7])
    labels, counts = ctc_greedy_decode(logits, lengths)
    expected = [collapse(list(np.argmax(logits[b, :n], axis=-1))) for b, n in enumerate(lengths)]
    assert rows(labels, counts) == expected
    assert np.all(numpy(labels)[np.arange(9)[None, :] >= numpy(counts)[:, None]] == -1)
    # Another blank index.
    labels, counts = ctc_greedy_decode(logits, lengths, blank=4)
    assert rows(labels, counts) == [collapse(list(np.argmax(logits[b, :n], axis=-1)), blank=4)
                                    for b, n in enumerate(lengths)]


def test_beam_search_finds_the_most_probable_labelling_summed_over_its_alignments():
    # Every path of 5 frames over 3 classes, summed by the labelling it collapses to: the exact answer. Logits
    # chosen so that the best path (one alignment) and the best labelling (all of them) differ in some rows.
    rng = np.random.default_rng(3)
    frames, classes = 5, 3
    logits = rng.normal(size=(6, frames, classes)).astype("float32")
    logits[:, :, 0] += 0.8  # a likely blank spreads a labelling's probability over many alignments
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    lengths = np.full(6, frames)
    labels, counts, log_probability = ctc_beam_search_decode(logits, lengths, beam_width=64)
    differs = 0
    for b in range(6):
        totals = {}
        for path in itertools.product(range(classes), repeat=frames):
            p = np.prod(probabilities[b, np.arange(frames), path])
            totals[collapse(path)] = totals.get(collapse(path), 0.0) + p
        best = max(totals, key=totals.get)
        assert rows(labels, counts)[b] == best
        np.testing.assert_allclose(numpy(log_probability)[b], np.log(totals[best]), rtol=1e-4)
        differs += best != collapse(list(np.argmax(logits[b], -1)))
    assert differs > 0, "no row where the beam's answer differs from the best path: the test shows nothing"


@pytest.mark.jax
def test_word_tags_collapse_into_words():
    # 0 silence; 1 + 2w begins word w, 2 + 2w continues it.
    b = lambda w: 1 + 2 * w  # noqa: E731
    i = lambda w: 2 + 2 * w  # noqa: E731
    tags = np.array([
        [0, b(3), i(3), i(3), 0, b(1), i(1), 0, 0],     # two words with silence between
        [b(2), i(2), b(2), i(2), i(2), 0, 0, 0, 0],     # the same word twice, a begin between
        [i(4), i(4), i(5), 0, i(5), 0, 0, 0, 0],        # begins missed: a word from its first frame
        [b(1), i(1), i(1), b(7), i(7), i(7), i(7), 0, 0],
    ])
    lengths = np.array([9, 5, 5, 6])  # row 3 stops inside word 7
    words, counts = collapse_word_tags(tags, lengths)
    assert rows(words, counts) == [(3, 1), (2, 2), (4, 5, 5), (1, 7)]
    assert np.all(numpy(words)[np.arange(9)[None, :] >= numpy(counts)[:, None]] == -1)
