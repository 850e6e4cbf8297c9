"""The synthetic language pair: seeded, disjoint splits, a deterministic translation with its reordering and
agreement, and files that the parallel-corpus reader and the translation task read."""

import numpy as np
import pytest

from tests.training.tasks import runs
from training.data import parallel_corpus
from training.data import synthetic_parallel as sp

SMALL = {"train": 600, "validation": 50, "test": 80}


def test_the_same_seed_draws_the_same_corpus_and_another_seed_another():
    first, again, other = sp.generate(SMALL, seed=3), sp.generate(SMALL, seed=3), sp.generate(SMALL, seed=4)
    assert first == again
    assert first["test"][0] != other["test"][0]
    assert [len(first[s][0]) for s in ("train", "validation", "test")] == [600, 50, 80]


def test_splits_hold_distinct_sentences_and_the_test_split_depends_only_on_the_seed():
    corpus = sp.generate(SMALL, seed=0)
    sources = {split: corpus[split][0] for split in corpus}
    for split, lines in sources.items():
        assert len(set(lines)) == len(lines), split
    assert not set(sources["train"]) & set(sources["test"])
    assert not set(sources["train"]) & set(sources["validation"])
    assert not set(sources["validation"]) & set(sources["test"])
    # A bigger training split does not change the held-out sentences (they are drawn first).
    assert sp.generate({**SMALL, "train": 1200}, seed=0)["test"] == corpus["test"]


def test_a_sentence_drawn_twice_is_kept_once_in_one_split(monkeypatch):
    # A language of 300 sentences: drawing 230 distinct ones needs many repeats, which must be dropped.
    monkeypatch.setattr(sp, "sentence_pair", lambda rng: (f"s{(k := int(rng.integers(300)))}", f"t{k}"))
    corpus = sp.generate({"train": 100, "validation": 50, "test": 80}, seed=0)
    sources = [line for split in corpus.values() for line in split[0]]
    assert len(sources) == len(set(sources)) == 230
    assert all(target == "t" + source[1:] for split in corpus.values() for source, target in zip(*split))


def test_the_translation_is_a_function_of_the_source_of_5_to_25_words():
    rng = np.random.default_rng(1)
    translations = {}
    for _ in range(5000):
        source, target = sp.sentence_pair(rng)
        assert translations.setdefault(source, target) == target  # one translation per source sentence
        assert sp.MIN_LENGTH <= len(source.split()) <= sp.MAX_LENGTH
        assert len(target.split()) == len(source.split())  # word for word, reordered and inflected
        assert set(target.split()) <= sp.LEXICON.words()


def test_the_target_puts_the_verb_last_agreeing_with_the_subject_even_where_english_does_not_show_it():
    plural_nouns = {plural for _, plural in sp.NOUNS}
    singular_nouns = {singular for singular, _ in sp.NOUNS}
    verb_number = {form: plural for forms in sp.LEXICON.verb.values() for (_, plural), form in forms.items()}
    rng = np.random.default_rng(2)
    checked = past = 0
    for _ in range(2000):
        source, target = (line.split() for line in sp.sentence_pair(rng))
        if sp.AND in source or sp.RELATIVE in source:
            continue  # one clause: its subject's noun is the first noun
        subject = next(w for w in source if w in plural_nouns or w in singular_nouns)
        assert target[-1] in verb_number, (source, target)
        assert verb_number[target[-1]] == (subject in plural_nouns), (source, target)
        past += any(w == forms[2] for w in source for forms in sp.TRANSITIVE_VERBS + sp.INTRANSITIVE_VERBS)
        checked += 1
    assert checked > 1000 and past > 300  # English past tense has one form for both numbers: the target has two


def test_adjectives_follow_the_noun_and_agree_with_it():
    gender, number = {}, {}
    for g, singular, plural in sp.LEXICON.noun.values():
        gender[singular], number[singular] = g, False
        gender[plural], number[plural] = g, True
    adjective = {form: key for forms in sp.LEXICON.adjective.values() for key, form in forms.items()}
    rng = np.random.default_rng(3)
    seen = 0
    for _ in range(500):
        _, target = sp.sentence_pair(rng)
        words = target.split()
        for i, word in enumerate(words):
            if word in adjective:
                j = i - 1
                while words[j] in adjective:
                    j -= 1
                noun = words[j]
                assert noun in gender, (target, word)  # after its noun
                if number[noun]:
                    assert adjective[word][1], (target, word)  # plural (one form for every gender)
                else:
                    assert adjective[word] == (gender[noun], False), (target, word)
                seen += 1
    assert seen > 200


def test_written_files_are_read_back_by_the_parallel_corpus_reader_and_the_files_preset(tmp_path):
    sp.write_corpus(tmp_path, SMALL, seed=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{stem}.{language}" for stem in ("train", "valid", "test") for language in ("src", "tgt"))
    assert parallel_corpus.read_parallel_corpus(tmp_path, "src", "tgt") == sp.generate(SMALL, seed=5)
    task, config = runs.make_config("translation", "files", data_dir=str(tmp_path))
    corpus = task.corpus(config)
    assert 150 < corpus.source.vocabulary.size < 400 and 150 < corpus.target.vocabulary.size < 600
    assert corpus.lines["test"] == sp.generate(SMALL, seed=5)["test"]


def test_bad_sizes_are_errors_naming_them():
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        sp.generate({"dev": 3})
    with pytest.raises(ValueError, match=r"sizes\['train'\] must be a non-negative int, got -1"):
        sp.generate({"train": -1})


def test_the_full_vocabularies_have_a_few_hundred_words():
    corpus = sp.generate({"train": 20000}, seed=0)["train"]
    source = {w for line in corpus[0] for w in line.split()}
    target = {w for line in corpus[1] for w in line.split()}
    assert 250 <= len(source) <= 400 and 350 <= len(target) <= 600
