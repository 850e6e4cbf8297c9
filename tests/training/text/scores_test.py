import collections
import math

import numpy as np
import pytest

from training.text import scores


def reference_bleu(hypotheses, references):
    """Corpus BLEU by hand (Papineni et al.): pooled clipped n-gram counts of whitespace words, n = 1..4, times the
    brevity penalty. Only for cases where every order has a match (no smoothing involved)."""
    matches, totals = np.zeros(4), np.zeros(4)
    hypothesis_length = reference_length = 0
    for hypothesis, reference in zip(hypotheses, references):
        h, r = hypothesis.split(), reference.split()
        hypothesis_length += len(h)
        reference_length += len(r)
        for n in range(1, 5):
            h_grams = collections.Counter(tuple(h[i : i + n]) for i in range(len(h) - n + 1))
            r_grams = collections.Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
            matches[n - 1] += sum(min(count, r_grams[gram]) for gram, count in h_grams.items())
            totals[n - 1] += sum(h_grams.values())
    penalty = 1.0 if hypothesis_length > reference_length else math.exp(1 - reference_length / hypothesis_length)
    return 100 * penalty * math.exp(np.mean(np.log(matches / totals)))


def test_perfect_translations_score_100_everywhere():
    lines = ["the cat sat on the mat .", "2026-11-25", "我爱你。"]
    result = scores.translation_scores(lines, lines)
    assert result["exact_match"] == 100.0
    assert result["bleu"] == pytest.approx(100.0)
    assert result["chrf"] == pytest.approx(100.0)
    assert result["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert "chrF2" in result["chrf_signature"] or "nc:6" in result["chrf_signature"]


def test_bleu_of_one_sentence_by_hand():
    # Precisions 5/6, 3/5, 2/4, 1/3, equal lengths (no brevity penalty): (1/12) ** (1/4) = 0.5373.
    score, _ = scores.corpus_bleu(["the cat sat on the mat"], ["the cat sat on a mat"])
    assert score == pytest.approx(100 * (1 / 12) ** 0.25, abs=1e-6)
    assert score == pytest.approx(53.7284965911771, abs=1e-6)


def test_corpus_bleu_pools_counts_and_penalises_short_output():
    hypotheses = ["the cat sat on the mat", "a dog ran in the park"]
    references = ["the cat sat on a mat", "a dog ran fast in the big park"]
    score, _ = scores.corpus_bleu(hypotheses, references)
    assert score == pytest.approx(reference_bleu(hypotheses, references), abs=1e-6)
    # Corpus BLEU is not the mean of sentence scores: the counts are pooled first.
    mean = np.mean([scores.corpus_bleu([h], [r])[0] for h, r in zip(hypotheses, references)])
    assert abs(score - mean) > 1


def test_chrf_by_hand():
    # Character n-grams of "abc" and "abd": orders 1..3 exist on both sides, with P = R = 2/3, 1/2, 0; averaged
    # over the three orders P = R = 7/18, so F2 = 7/18.
    score, _ = scores.corpus_chrf(["abc"], ["abd"])
    assert score == pytest.approx(100 * 7 / 18, abs=1e-6)
    # Spaces do not count.
    assert scores.corpus_chrf(["a b c"], ["abc"])[0] == pytest.approx(100.0)


def test_chinese_needs_the_zh_tokenizer():
    # "13a" sees each sentence as one word (no spaces): nothing matches. "zh" splits the characters.
    hypotheses, references = ["我爱你们和他们"], ["我爱你们和她们"]
    assert scores.corpus_bleu(hypotheses, references)[0] == pytest.approx(0.0)
    zh, signature = scores.corpus_bleu(hypotheses, references, tokenize="zh")
    # Characters: 7 unigrams with 6 matches, bigrams 4/6, trigrams 3/5, 4-grams 2/4, equal lengths.
    assert zh == pytest.approx(100 * (6 / 7 * 4 / 6 * 3 / 5 * 2 / 4) ** 0.25, abs=1e-6)
    assert zh == pytest.approx(reference_bleu([" ".join(hypotheses[0])], [" ".join(references[0])]), abs=1e-6)
    assert "tok:zh" in signature


def test_exact_match_counts_whole_strings_and_takes_bytes():
    hypotheses = [b"2026-11-25", "2026-11-26", "2026-11-27 ", "\u4f60".encode("utf-8")]
    references = ["2026-11-25", "2026-11-25", "2026-11-27", "你"]
    assert scores.exact_match(hypotheses, references) == 50.0
    assert scores.exact_match([], []) == 0.0


def test_misaligned_or_wrong_inputs_are_clear_errors():
    with pytest.raises(ValueError, match=r"got 2 hypotheses and 1 references; expected one reference per hypothesis"):
        scores.exact_match(["a", "b"], ["a"])
    with pytest.raises(ValueError, match=r"lists of strings, one per sentence, not single strings"):
        scores.corpus_bleu("a b", "a b")
    with pytest.raises(ValueError, match=r"references\[1\] must be a string, got 3 of type int"):
        scores.corpus_chrf(["a", "b"], ["a", 3])
    with pytest.raises(ValueError, match=r"hypotheses\[0\] is not UTF-8 \(byte offset 1\)"):
        scores.exact_match([b"a\xff"], ["a"])
    with pytest.raises(ValueError, match=r"tokenize must be one of .*'zh'.*, got 'spaces'"):
        scores.corpus_bleu(["a"], ["a"], tokenize="spaces")
