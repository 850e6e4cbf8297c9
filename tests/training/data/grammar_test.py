import math

import numpy as np
import pytest

from training.data.grammar import PCFG
from training.data.grammar import agreement_grammar
from training.data.grammar import sample_perplexity


def coin_grammar(p=0.3):
    # S -> "x" S | "y": a geometric number of x's, then y. By hand: each expansion has entropy h(p), there are
    # 1 / (1 - p) expansions and 1 / (1 - p) + 1 tokens (the words and the end) per sentence.
    return PCFG({"S": [(p, ["x", "S"]), (1.0 - p, ["y"])]})


def test_exact_entropy_of_a_grammar_worked_by_hand():
    p = 0.3
    grammar = coin_grammar(p)
    h = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert grammar.sentence_entropy() == pytest.approx(h / (1 - p))
    assert grammar.expected_tokens() == pytest.approx(1 / (1 - p) + 1)
    assert grammar.perplexity_bound() == pytest.approx(math.exp((h / (1 - p)) / (1 / (1 - p) + 1)))


def test_sampled_sentences_match_the_exact_figures_and_the_parser():
    grammar = agreement_grammar()
    rng = np.random.default_rng(0)
    sample = [grammar.sample(rng) for _ in range(20000)]
    log_probs = [lp for _, lp in sample]
    counts = [len(words) for words, _ in sample]
    # Monte Carlo means over 20,000 sentences: standard errors are well under 1% of these values.
    assert -np.mean(log_probs) == pytest.approx(grammar.sentence_entropy(), rel=0.02)
    assert np.mean(counts) + 1 == pytest.approx(grammar.expected_tokens(), rel=0.02)
    assert sample_perplexity(log_probs, counts) == pytest.approx(grammar.perplexity_bound(), rel=0.02)
    # The LL(1) parse gives every sentence the probability of the derivation that drew it (the grammar is
    # unambiguous), and nothing to what the grammar cannot say.
    for words, log_prob in sample[:500]:
        assert grammar.log_probability(words) == pytest.approx(log_prob, abs=1e-9)
    assert grammar.log_probability(["a", "dog", "sleep"]) == -math.inf  # number disagreement
    assert grammar.log_probability(["a", "dog"]) == -math.inf
    # Prefixes: every beginning of a sentence is one; a disagreement or a word after the end is not.
    for words, _ in sample[:200]:
        assert all(grammar.is_prefix(words[:n]) for n in range(len(words) + 1))
        assert not grammar.is_prefix(words + ["a"])
    assert grammar.is_prefix(["a", "dog", "that", "chases", "a", "cat", "that"])
    assert not grammar.is_prefix(["a", "dog", "that", "chase"])


def test_agreement_spans_relative_clauses():
    grammar = agreement_grammar(relative_clause=0.9, transitive=0.5)
    rng = np.random.default_rng(1)
    singular = {"sleeps", "runs", "sings", "chases", "sees", "likes"}
    long_ones = 0
    for _ in range(300):
        words, _ = grammar.sample(rng)
        if "that" in words:
            long_ones += 1
        assert grammar.log_probability(words) > -math.inf
    assert long_ones > 200
    assert grammar.log_probability(["a", "dog", "that", "sees", "some", "cats", "runs"]) > -math.inf
    assert grammar.log_probability(["a", "dog", "that", "sees", "some", "cats", "run"]) == -math.inf
    assert singular < set(grammar.words)


@pytest.mark.parametrize(
    "rules, message",
    [
        ({"S": [(0.5, ["x", "S"]), (0.5, ["x"])]}, r"not LL\(1\): rules 0 and 1 of 'S' can both start with 'x'"),
        ({"S": [(0.6, ["x"]), (0.6, ["y"])]}, r"the rule probabilities of 'S' sum to 1.2, not 1"),
        ({"S": [(0.0, ["x"]), (1.0, ["y"])]}, r"rule probabilities of 'S' must be in \(0, 1\]"),
        ({"S": [(1.0, ["x", "S"])]}, r"recursion continues with probability >= 1"),
        ({"T": [(1.0, ["x"])]}, r"the start symbol 'S' has no rules"),
    ],
)
def test_grammars_whose_entropy_is_unknown_are_refused(rules, message):
    with pytest.raises(ValueError, match=message):
        PCFG(rules)
