"""A synthetic language pair with the structure that makes translation hard, and one right translation per sentence.

The source is English-like (subject–verb–object, adjectives before the noun, prepositions, relative clauses after
the noun, the verb agreeing with its subject in the present tense only); the target is a made-up language that
reorders and inflects:

- verb last (subject–object–verb, as in German subordinate clauses, Japanese or Turkish), the adverb before it;
- adjectives after the noun, agreeing with its gender (three) and number;
- determiners inflected for kind (definite, indefinite, demonstrative, possessive), gender, number and case
  (nominative, accusative, oblique), so a determiner depends on the noun after it and on its role in the clause;
- postpositions: "near the old house" -> "<det.obl> <house> <old> <near>";
- the verb agrees with its subject in number in every tense (English past does not show it: the target's verb form
  depends on a noun that may be a dozen words back);
- relative clauses stay after the noun but put their own object before their verb, behind a relative marker.

Examples (the target words come from a fixed made-up lexicon):

    these roads built my window behind the gardens
    -> sir mapoi dim tomei we man ruko wafetan
       (these.nom road.pl | the.pl.obl garden.pl behind | my.acc window | build.past.pl)
    the forest followed some happy cats after a picture
    -> dar gewe nem kire de nin samae maroai bewota
       (the.nom forest | a.obl picture after | some.acc cat.pl happy.pl | follow.past.sg)

The translation is a function of the source (deterministic), so BLEU can approach 100 once the rules are learned.
Sentences have 5 to 25 source words; the source vocabulary has about 300 words and the target about 480. The
lexicon is the same for every seed; the seed draws the sentences. Splits hold distinct source sentences: the test
sentences are drawn first, then the validation sentences, then the training sentences, each new sentence kept only
if it is in no split yet, so no test or validation sentence is seen in training.

Files: `write_corpus(DIR, ...)` writes `DIR/{train,valid,test}.{src,tgt}` (one sentence per line, words separated
by one space), the layout `training.data.parallel_corpus.read_parallel_corpus` reads and the translation task's
`files` preset trains on (`--data_dir=DIR`, whose default languages are "src" and "tgt").
"""

import os

import numpy as np

from training.data.parallel_corpus import SPLIT_STEMS

SOURCE_LANGUAGE = "src"
TARGET_LANGUAGE = "tgt"
SIZES = {"train": 20000, "validation": 500, "test": 1000}
MIN_LENGTH, MAX_LENGTH = 5, 25  # source words per sentence
_LEXICON_SEED = 11  # the made-up target words: the same language for every corpus seed

# (singular, plural)
NOUNS = (
    ("dog", "dogs"), ("cat", "cats"), ("bird", "birds"), ("horse", "horses"), ("child", "children"), ("man", "men"),
    ("woman", "women"), ("teacher", "teachers"), ("farmer", "farmers"), ("king", "kings"), ("queen", "queens"),
    ("doctor", "doctors"), ("student", "students"), ("friend", "friends"), ("baker", "bakers"),
    ("soldier", "soldiers"), ("sailor", "sailors"), ("pilot", "pilots"), ("judge", "judges"), ("singer", "singers"),
    ("mouse", "mice"), ("fox", "foxes"), ("wolf", "wolves"), ("sheep", "flocks"), ("cow", "cows"), ("girl", "girls"),
    ("boy", "boys"), ("house", "houses"), ("tree", "trees"), ("river", "rivers"), ("garden", "gardens"),
    ("city", "cities"), ("book", "books"), ("letter", "letters"), ("apple", "apples"), ("loaf", "loaves"),
    ("song", "songs"), ("ship", "ships"), ("car", "cars"), ("road", "roads"), ("bridge", "bridges"),
    ("village", "villages"), ("mountain", "mountains"), ("table", "tables"), ("door", "doors"),
    ("window", "windows"), ("box", "boxes"), ("cup", "cups"), ("stone", "stones"), ("flower", "flowers"),
    ("field", "fields"), ("forest", "forests"), ("school", "schools"), ("market", "markets"), ("church", "churches"),
    ("castle", "castles"), ("lake", "lakes"), ("boat", "boats"), ("key", "keys"), ("picture", "pictures"),
)
ADJECTIVES = (
    "big", "small", "old", "young", "red", "green", "blue", "white", "black", "happy", "sad", "tall", "quiet", "loud",
    "brave", "clever", "lazy", "rich", "poor", "strange", "famous", "tired", "hungry", "beautiful", "dark", "bright",
    "heavy", "gentle", "angry", "busy",
)
# (base, third person singular present, past)
TRANSITIVE_VERBS = (
    ("see", "sees", "saw"), ("like", "likes", "liked"), ("find", "finds", "found"), ("help", "helps", "helped"),
    ("follow", "follows", "followed"), ("watch", "watches", "watched"), ("carry", "carries", "carried"),
    ("visit", "visits", "visited"), ("call", "calls", "called"), ("paint", "paints", "painted"),
    ("build", "builds", "built"), ("clean", "cleans", "cleaned"), ("open", "opens", "opened"),
    ("sell", "sells", "sold"), ("buy", "buys", "bought"), ("love", "loves", "loved"), ("hate", "hates", "hated"),
    ("chase", "chases", "chased"), ("hear", "hears", "heard"), ("bring", "brings", "brought"),
    ("take", "takes", "took"), ("draw", "draws", "drew"), ("know", "knows", "knew"), ("feed", "feeds", "fed"),
    ("wash", "washes", "washed"), ("catch", "catches", "caught"), ("push", "pushes", "pushed"),
    ("greet", "greets", "greeted"), ("forget", "forgets", "forgot"), ("choose", "chooses", "chose"),
)
INTRANSITIVE_VERBS = (
    ("sleep", "sleeps", "slept"), ("run", "runs", "ran"), ("sing", "sings", "sang"), ("laugh", "laughs", "laughed"),
    ("dance", "dances", "danced"), ("wait", "waits", "waited"), ("swim", "swims", "swam"), ("cry", "cries", "cried"),
    ("smile", "smiles", "smiled"), ("arrive", "arrives", "arrived"), ("work", "works", "worked"),
    ("fall", "falls", "fell"),
)
ADVERBS = ("quickly", "slowly", "often", "rarely", "today", "again", "quietly", "loudly", "happily", "early",
           "late", "together")
PREPOSITIONS = ("in", "near", "behind", "under", "with", "without", "before", "after")
# Source determiners: {kind: (singular, plural)}.
DETERMINERS = {"definite": ("the", "the"), "indefinite": ("a", "some"), "demonstrative": ("this", "these"),
               "possessive": ("my", "my")}
RELATIVE = "that"
AND = "and"
CASES = ("nominative", "accusative", "oblique")

# How sentences are drawn.
_ADJECTIVE_COUNTS, _ADJECTIVE_WEIGHTS = (0, 1, 2), (0.5, 0.35, 0.15)
_TRANSITIVE = 0.7  # a clause's verb is transitive
_PLURAL = 0.4
_PAST = 0.5
_PP = 0.35  # a clause has a prepositional phrase
_ADVERB = 0.3
_RELATIVE = 0.15  # a top-level noun phrase has a relative clause
_COORDINATION = 0.2  # a sentence is two clauses joined by "and"


class Lexicon:
    """The target language's words: `noun[lemma]` -> (gender, singular, plural); `adjective[lemma]` -> forms by
    (gender, plural); `verb[base]` -> forms by (past, plural); `determiner[(kind, gender, plural, case)]`;
    `postposition[preposition]`; `adverb[adverb]`; `relative`, `conjunction`. Every form is a distinct word."""

    def __init__(self, seed=_LEXICON_SEED):
        rng = np.random.default_rng(seed)
        self._taken = set()
        self.relative, self.conjunction = "ke", "und"
        self._taken.update((self.relative, self.conjunction))
        self.determiner = {}
        starts = {"definite": "d", "indefinite": "n", "demonstrative": "s", "possessive": "m"}
        vowels, endings = ("a", "e", "o", "i"), {"nominative": "r", "accusative": "n", "oblique": "m"}
        for kind, start in starts.items():
            for index, vowel in enumerate(vowels):  # genders 0, 1, 2 in the singular, then the plural
                gender, plural = (index, False) if index < 3 else (None, True)
                for case, ending in endings.items():
                    word = start + vowel + ending
                    self._take([word])
                    for g in (range(3) if plural else (gender,)):
                        self.determiner[(kind, g, plural, case)] = word
        self.noun = {}
        for singular, _ in NOUNS:
            gender = int(rng.integers(3))
            plural_ending = ("en", "e", "i")[gender]
            stem = self._stem(rng, lambda s, e=plural_ending: [s, s + e])
            self.noun[singular] = (gender, stem, stem + plural_ending)
        self.adjective = {}
        for adjective in ADJECTIVES:
            endings_by = {(0, False): "a", (1, False): "e", (2, False): "o", (0, True): "ai", (1, True): "ai",
                          (2, True): "ai"}
            stem = self._stem(rng, lambda s, es=endings_by: sorted({s + e for e in es.values()}))
            self.adjective[adjective] = {key: stem + ending for key, ending in endings_by.items()}
        self.verb = {}
        for base, _, _ in TRANSITIVE_VERBS + INTRANSITIVE_VERBS:
            suffixes = {(False, False): "u", (False, True): "an", (True, False): "ta", (True, True): "tan"}
            stem = self._stem(rng, lambda s, es=suffixes: [s + e for e in es.values()])
            self.verb[base] = {key: stem + suffix for key, suffix in suffixes.items()}
        self.postposition = {p: self._stem(rng, lambda s: [s], syllables=1) for p in PREPOSITIONS}
        self.adverb = {a: self._stem(rng, lambda s: [s + "li"]) + "li" for a in ADVERBS}

    def _take(self, words):
        clash = self._taken.intersection(words)
        if clash or len(set(words)) != len(words):
            raise AssertionError(f"target words {sorted(clash)} are made twice")
        self._taken.update(words)

    def _stem(self, rng, forms, syllables=2):
        """A new stem of `syllables` consonant-vowel syllables whose `forms(stem)` are all new words."""
        consonants, vowels = "bdfgklmprstvwz", "aeiou"
        while True:
            stem = "".join(consonants[rng.integers(len(consonants))] + vowels[rng.integers(len(vowels))]
                           for _ in range(syllables))
            words = forms(stem)
            if not self._taken.intersection(words) and len(set(words)) == len(words):
                self._taken.update(words)
                return stem

    def words(self):
        """Every target word."""
        return set(self._taken)


LEXICON = Lexicon()
_VERB_FORMS = {base: (third, past) for base, third, past in TRANSITIVE_VERBS + INTRANSITIVE_VERBS}


def _noun_phrase(rng, case, relative_allowed):
    """(source words, target words, plural) of a noun phrase in `case`."""
    noun, plural_noun = NOUNS[rng.integers(len(NOUNS))]
    plural = bool(rng.random() < _PLURAL)
    kind = tuple(DETERMINERS)[rng.integers(len(DETERMINERS))]
    count = int(rng.choice(_ADJECTIVE_COUNTS, p=_ADJECTIVE_WEIGHTS))
    adjectives = [ADJECTIVES[i] for i in rng.choice(len(ADJECTIVES), size=count, replace=False)]
    gender, singular_word, plural_word = LEXICON.noun[noun]
    source = [DETERMINERS[kind][plural], *adjectives, plural_noun if plural else noun]
    target = [LEXICON.determiner[(kind, gender, plural, case)], plural_word if plural else singular_word,
              *(LEXICON.adjective[a][(gender, plural)] for a in adjectives)]
    if relative_allowed and rng.random() < _RELATIVE:
        # "the dog that chased a cat" -> <the dog> ke <a cat.acc> <chased.sg>: the clause's subject is the head.
        verb = TRANSITIVE_VERBS[rng.integers(len(TRANSITIVE_VERBS))][0]
        past = bool(rng.random() < _PAST)
        object_source, object_target, _ = _noun_phrase(rng, "accusative", relative_allowed=False)
        source += [RELATIVE, _english_verb(verb, plural, past), *object_source]
        target += [LEXICON.relative, *object_target, LEXICON.verb[verb][(past, plural)]]
    return source, target, plural


def _english_verb(base, plural, past):
    third, past_form = _VERB_FORMS[base]
    return past_form if past else (base if plural else third)


def _clause(rng):
    """(source words, target words) of one clause: subject, verb (and object), optional PP and adverb."""
    subject_source, subject_target, plural = _noun_phrase(rng, "nominative", relative_allowed=True)
    past = bool(rng.random() < _PAST)
    transitive = rng.random() < _TRANSITIVE
    verbs = TRANSITIVE_VERBS if transitive else INTRANSITIVE_VERBS
    verb = verbs[rng.integers(len(verbs))][0]
    source, target = list(subject_source), list(subject_target)
    source.append(_english_verb(verb, plural, past))
    object_target = []
    if transitive:
        object_source, object_target, _ = _noun_phrase(rng, "accusative", relative_allowed=True)
        source += object_source
    if rng.random() < _PP:
        preposition = PREPOSITIONS[rng.integers(len(PREPOSITIONS))]
        pp_source, pp_target, _ = _noun_phrase(rng, "oblique", relative_allowed=False)
        source += [preposition, *pp_source]
        target += [*pp_target, LEXICON.postposition[preposition]]
    target += object_target
    if rng.random() < _ADVERB:
        adverb = ADVERBS[rng.integers(len(ADVERBS))]
        source.append(adverb)
        target.append(LEXICON.adverb[adverb])
    target.append(LEXICON.verb[verb][(past, plural)])
    return source, target


def sentence_pair(rng):
    """One (source, target) pair of str, 5 to 25 source words, drawn with the numpy Generator `rng`."""
    while True:
        source, target = _clause(rng)
        if rng.random() < _COORDINATION:
            second_source, second_target = _clause(rng)
            source += [AND, *second_source]
            target += [LEXICON.conjunction, *second_target]
        if MIN_LENGTH <= len(source) <= MAX_LENGTH:
            return " ".join(source), " ".join(target)


def generate(sizes=None, seed=0):
    """{split: (sources, targets)}: line-aligned lists of str, `sizes` pairs per split (default `SIZES`: 20,000
    train, 500 validation, 1,000 test), no source sentence in two splits (nor twice in one).

    Raises ValueError for an unknown split or a size that is not a non-negative int.
    """
    sizes = dict(SIZES if sizes is None else sizes)
    for split, size in sizes.items():
        if split not in SPLIT_STEMS:
            raise ValueError(f"unknown split {split!r}; expected some of {tuple(SPLIT_STEMS)}")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
            raise ValueError(f"sizes[{split!r}] must be a non-negative int, got {size!r}")
    rng = np.random.default_rng(seed)
    seen, corpus = set(), {}
    for split in ("test", "validation", "train"):  # held-out splits first: they depend only on the seed
        if split not in sizes:
            continue
        sources, targets = [], []
        attempts = 0
        while len(sources) < sizes[split]:
            attempts += 1
            if attempts > 20 * sizes[split] + 1000:
                raise ValueError(f"could not draw {sizes[split]} distinct {split} sentences")
            source, target = sentence_pair(rng)
            if source in seen:
                continue
            seen.add(source)
            sources.append(source)
            targets.append(target)
        corpus[split] = (sources, targets)
    return {split: corpus[split] for split in SPLIT_STEMS if split in corpus}


def write_corpus(directory, sizes=None, seed=0, source_language=SOURCE_LANGUAGE, target_language=TARGET_LANGUAGE):
    """Writes `generate(sizes, seed)` as `directory/{train,valid,test}.{source_language,target_language}` and returns
    the directory. Existing files of those names are replaced."""
    os.makedirs(directory, exist_ok=True)
    for split, (sources, targets) in generate(sizes, seed).items():
        for language, lines in ((source_language, sources), (target_language, targets)):
            path = os.path.join(directory, f"{SPLIT_STEMS[split]}.{language}")
            with open(path, "w", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines))
    return directory
