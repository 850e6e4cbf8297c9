"""Scores of decoded translations against their references: exact match, corpus BLEU and chrF.

BLEU and chrF come from sacrebleu (Post, "A Call for Clarity in Reporting BLEU Scores", WMT 2018), the field's
reference implementation: it tokenizes the detokenized strings itself, so scores do not depend on this project's
tokenizer, and every score comes with its signature (tokenizer, smoothing, version), which results tables state so
that others can reproduce them.

Every score is on sacrebleu's scale, 0 to 100 (exact match too: the percentage of hypotheses equal to their
reference). Inputs are line-aligned lists of strings, one reference per hypothesis; UTF-8 bytes (the NumPy values of
tf.string tensors) are decoded first.
"""

import sacrebleu

# sacrebleu's BLEU tokenizers that this module accepts: "13a" (its default: words and punctuation, for languages
# written with spaces), "zh" (every Chinese character a token), "char" (every character a token), "intl" (Unicode
# punctuation and symbols split off), "none" (the strings are already tokenized).
BLEU_TOKENIZERS = ("13a", "zh", "char", "intl", "none")


def exact_match(hypotheses, references):
    """The percentage (0 to 100) of hypotheses that equal their reference, character for character."""
    hypotheses, references = _checked(hypotheses, references)
    if not hypotheses:
        return 0.0
    return 100.0 * sum(h == r for h, r in zip(hypotheses, references)) / len(hypotheses)


def corpus_bleu(hypotheses, references, tokenize="13a"):
    """Corpus BLEU (Papineni et al., 2002) through sacrebleu: the geometric mean of the clipped 1- to 4-gram
    precisions over the whole corpus, times the brevity penalty, with sacrebleu's default "exp" smoothing.

    Args:
        hypotheses, references: line-aligned lists of strings.
        tokenize: one of `BLEU_TOKENIZERS`; "zh" for Chinese targets.

    Returns:
        (score, signature): the score (0 to 100) and sacrebleu's signature string, e.g.
        "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0".
    """
    hypotheses, references = _checked(hypotheses, references)
    if tokenize not in BLEU_TOKENIZERS:
        raise ValueError(f"tokenize must be one of {BLEU_TOKENIZERS}, got {tokenize!r}")
    metric = sacrebleu.metrics.BLEU(tokenize=tokenize)
    score = metric.corpus_score(hypotheses, [references])
    return float(score.score), str(metric.get_signature())


def corpus_chrf(hypotheses, references):
    """Corpus chrF (Popović, 2015) through sacrebleu: the character n-gram F-score (n = 1..6, beta = 2, spaces
    ignored), from precision and recall averaged over the n-gram orders that both sides have.

    Returns:
        (score, signature): the score (0 to 100) and sacrebleu's signature string.
    """
    hypotheses, references = _checked(hypotheses, references)
    metric = sacrebleu.metrics.CHRF()
    score = metric.corpus_score(hypotheses, [references])
    return float(score.score), str(metric.get_signature())


def translation_scores(hypotheses, references, tokenize="13a"):
    """All three scores: {"exact_match", "bleu", "chrf" (0 to 100), "bleu_signature", "chrf_signature"}."""
    bleu, bleu_signature = corpus_bleu(hypotheses, references, tokenize=tokenize)
    chrf, chrf_signature = corpus_chrf(hypotheses, references)
    return {
        "exact_match": exact_match(hypotheses, references),
        "bleu": bleu,
        "chrf": chrf,
        "bleu_signature": bleu_signature,
        "chrf_signature": chrf_signature,
    }


def _checked(hypotheses, references):
    """Both lists as str, checked to be line-aligned."""
    if isinstance(hypotheses, (str, bytes)) or isinstance(references, (str, bytes)):
        raise ValueError("hypotheses and references must be lists of strings, one per sentence, not single strings")
    hypotheses = [_text(h, "hypotheses", i) for i, h in enumerate(hypotheses)]
    references = [_text(r, "references", i) for i, r in enumerate(references)]
    if len(hypotheses) != len(references):
        raise ValueError(
            f"got {len(hypotheses)} hypotheses and {len(references)} references; expected one reference per hypothesis"
        )
    return hypotheses, references


def _text(value, name, index):
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"{name}[{index}] is not UTF-8 (byte offset {error.start}): {value!r}") from None
    if isinstance(value, str):
        return value
    raise ValueError(f"{name}[{index}] must be a string, got {value!r} of type {type(value).__name__}")
