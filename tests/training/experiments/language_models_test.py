"""The language-model experiment's agreement measure, on models whose behaviour is known."""

import numpy as np

from training.experiments import language_models
from training.text.vocabulary import Vocabulary
from training.data.grammar import agreement_grammar


def vocabulary():
    return Vocabulary.build([agreement_grammar().words])


class NumberModel:
    """Logits that favour the verbs of the subject's number, read from its determiner ("a" or "some") when the whole
    phrase is within the last `context` tokens (always, for None); otherwise singular."""

    def __init__(self, vocab, context=None):
        self.vocab, self.context = vocab, context

    def __call__(self, ids, training=False):
        tokens = [self.vocab.tokens[i] for i in np.asarray(ids)[0]]  # <bos>, the determiner, ...
        visible = self.context is None or len(tokens) - 1 <= self.context
        plural = visible and tokens[1] == "some"
        logits = np.zeros((1, len(tokens), self.vocab.size), "float32")
        for singular, plural_verb in language_models.VERB_PAIRS:
            logits[0, -1, self.vocab.tokens.index(plural_verb if plural else singular)] = 1.0
        return logits


def test_agreement_distances_are_counted_from_the_subjects_noun():
    phrases = language_models.agreement_set(count=200, seed=1)
    for words, number, distance in phrases:
        assert words[0] == ("a" if number == "sg" else "some")
        assert 1 <= distance <= len(words) - 1
        if "that" not in words:
            assert distance == 1  # "a big dog" -> the verb follows the noun
    assert {number for _, number, _ in phrases} == {"sg", "pl"}
    assert max(distance for *_, distance in phrases) >= 9


def test_a_model_that_knows_the_number_agrees_at_every_distance_and_a_short_sighted_one_does_not():
    vocab = vocabulary()
    phrases = language_models.agreement_set(count=400, seed=2)
    knowing = language_models.agreement_accuracy(NumberModel(vocab), vocab, phrases)
    assert all(accuracy == 1.0 for accuracy, count in knowing.values() if count)
    short = language_models.agreement_accuracy(NumberModel(vocab, context=3), vocab, phrases)
    # It sees the determiner only in phrases of at most 3 words: beyond, it says singular, right half the time.
    near, far = short[(1, 1)], short[(9, 1000)]
    assert far[1] > 10 and 0.2 < far[0] < 0.8
    assert near[0] > 0.75
