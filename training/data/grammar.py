"""A probabilistic context-free grammar whose sentences have a known entropy: the synthetic corpus of the LM task.

A language model's validation perplexity cannot go below exp(H), with H the corpus's entropy per predicted token (the
words and the end of sentence); on text nobody knows H, on a grammar's sentences it can be computed. For that the
grammar must be unambiguous, so that a sentence's probability is the probability of its one derivation. `PCFG`
checks a stronger, easily verified property, LL(1): the next word always tells which rule a nonterminal takes, so
no sentence has two derivations.

Exact figures, from the grammar alone (no sampling):

    c = e_S + M^T c                     expected expansions of each nonterminal per sentence
                                        (M[A, B]: expected occurrences of B in one expansion of A)
    H_sentence = sum_A c_A H(rules of A)      the entropy of a sentence (nats)
    E[tokens] = sum_A c_A E[words produced directly by one expansion of A] + 1    (+1: the end of sentence)
    H = H_sentence / E[tokens]          per token; perplexity bound exp(H)

On a finite sample the bound is `sample_perplexity`: exp(sum of -log P(sentence) / tokens) over those sentences.

`agreement_grammar()` is the corpus of the LM task: subject-verb number agreement across relative clauses, so the
verb after "a dog that chases some cats that sleep" depends on a word many tokens back, which a model with a short
fixed context (the feed-forward n-gram LM) cannot see and a recurrent one can.
"""

import math

import numpy as np

END = "</s>"  # FOLLOW marker of the start symbol: the end of the sentence


class PCFG:
    """A probabilistic context-free grammar over words.

    Args:
        rules: {nonterminal: [(probability, [symbol, ...]), ...]}; a symbol that is a key of `rules` is a
            nonterminal, any other string is a word; an empty right-hand side is the empty string. The
            probabilities of each nonterminal's rules sum to 1.
        start: the start symbol.

    Raises ValueError when a probability is out of range or a nonterminal's do not sum to 1, when the grammar is
    not LL(1) (naming the nonterminal and the word that two of its rules can both start with), or when the
    expected sentence length is infinite (recursion that continues with probability >= 1).
    """

    def __init__(self, rules, start="S"):
        if start not in rules:
            raise ValueError(f"the start symbol {start!r} has no rules")
        self.rules = {a: [(float(p), list(rhs)) for p, rhs in options] for a, options in rules.items()}
        self.start = start
        self.nonterminals = sorted(self.rules)
        for a, options in self.rules.items():
            if not options:
                raise ValueError(f"nonterminal {a!r} has no rules")
            if any(not 0.0 < p <= 1.0 for p, _ in options):
                raise ValueError(f"rule probabilities of {a!r} must be in (0, 1], got {[p for p, _ in options]}")
            total = sum(p for p, _ in options)
            if abs(total - 1.0) > 1e-9:
                raise ValueError(f"the rule probabilities of {a!r} sum to {total}, not 1")
        self.words = sorted({s for options in self.rules.values() for _, rhs in options for s in rhs} - set(rules))
        self._first, self._nullable = self._first_sets()
        self._follow = self._follow_sets()
        self._check_ll1()
        self._expected = self._expected_expansions()

    # LL(1): FIRST and FOLLOW sets, and the check that picks exactly one rule per (nonterminal, next word).

    def _first_of(self, symbols, first, nullable):
        result = set()
        for symbol in symbols:
            if symbol not in self.rules:
                result.add(symbol)
                return result, False
            result |= first[symbol]
            if not nullable[symbol]:
                return result, False
        return result, True

    def _first_sets(self):
        first = {a: set() for a in self.rules}
        nullable = {a: False for a in self.rules}
        changed = True
        while changed:
            changed = False
            for a, options in self.rules.items():
                for _, rhs in options:
                    words, empty = self._first_of(rhs, first, nullable)
                    if not words <= first[a] or (empty and not nullable[a]):
                        first[a] |= words
                        nullable[a] = nullable[a] or empty
                        changed = True
        return first, nullable

    def _follow_sets(self):
        follow = {a: set() for a in self.rules}
        follow[self.start].add(END)
        changed = True
        while changed:
            changed = False
            for a, options in self.rules.items():
                for _, rhs in options:
                    for i, symbol in enumerate(rhs):
                        if symbol not in self.rules:
                            continue
                        words, empty = self._first_of(rhs[i + 1 :], self._first, self._nullable)
                        new = words | (follow[a] if empty else set())
                        if not new <= follow[symbol]:
                            follow[symbol] |= new
                            changed = True
        return follow

    def _predict_set(self, a, rhs):
        """The next words (or END) for which nonterminal `a` takes the rule with right-hand side `rhs`."""
        words, empty = self._first_of(rhs, self._first, self._nullable)
        return words | (self._follow[a] if empty else set())

    def _check_ll1(self):
        for a, options in self.rules.items():
            seen = {}
            for index, (_, rhs) in enumerate(options):
                for word in self._predict_set(a, rhs):
                    if word in seen:
                        raise ValueError(
                            f"the grammar is not LL(1): rules {seen[word]} and {index} of {a!r} can both start "
                            f"with {word!r}, so a sentence could have two derivations and its entropy is unknown"
                        )
                    seen[word] = index

    # Exact expectations.

    def _expected_expansions(self):
        index = {a: i for i, a in enumerate(self.nonterminals)}
        n = len(index)
        m = np.zeros((n, n))
        for a, options in self.rules.items():
            for p, rhs in options:
                for symbol in rhs:
                    if symbol in index:
                        m[index[a], index[symbol]] += p
        if n and max(abs(np.linalg.eigvals(m))) >= 1.0:
            raise ValueError("the grammar's recursion continues with probability >= 1: sentences are infinitely long "
                             "on average; lower the probabilities of the recursive rules")
        start = np.zeros(n)
        start[index[self.start]] = 1.0
        counts = np.linalg.solve(np.eye(n) - m.T, start)
        return {a: counts[index[a]] for a in self.nonterminals}

    def sentence_entropy(self):
        """H_sentence, the entropy of a sentence in nats."""
        return sum(self._expected[a] * -sum(p * math.log(p) for p, _ in self.rules[a]) for a in self.rules)

    def expected_tokens(self):
        """The expected number of predicted tokens per sentence: its words and the end of sentence."""
        words = sum(
            self._expected[a] * sum(p * sum(s not in self.rules for s in rhs) for p, rhs in self.rules[a])
            for a in self.rules
        )
        return words + 1.0

    def entropy_per_token(self):
        """H = H_sentence / E[tokens], in nats: the lowest cross-entropy per token a model can expect."""
        return self.sentence_entropy() / self.expected_tokens()

    def perplexity_bound(self):
        """exp(H): the lowest perplexity per token a model can expect on this grammar's sentences."""
        return math.exp(self.entropy_per_token())

    # Sampling and scoring.

    def sample(self, rng, max_words=200, symbol=None):
        """One sentence as a list of words, and its log-probability (nats). Sentences longer than `max_words` are
        drawn again (they are rare when the expected length is small; the caller's bound then holds on what was
        drawn, since `sample_perplexity` scores the sentences actually drawn). With `symbol`, a phrase of that
        nonterminal instead of a sentence."""
        if symbol is not None and symbol not in self.rules:
            raise ValueError(f"unknown nonterminal {symbol!r}; nonterminals: {self.nonterminals}")
        while True:
            words, log_prob = [], 0.0
            stack = [symbol or self.start]
            while stack and len(words) <= max_words:
                symbol = stack.pop()
                if symbol not in self.rules:
                    words.append(symbol)
                    continue
                options = self.rules[symbol]
                choice = rng.choice(len(options), p=[p for p, _ in options])
                probability, rhs = options[choice]
                log_prob += math.log(probability)
                stack.extend(reversed(rhs))
            if not stack:
                return words, log_prob

    def is_prefix(self, words):
        """Whether some sentence of the grammar starts with `words` (an LL(1) parse that runs out of words)."""
        stack, position = [self.start], 0
        while position < len(words):
            if not stack:
                return False
            symbol = stack.pop()
            if symbol not in self.rules:
                if words[position] != symbol:
                    return False
                position += 1
                continue
            for _, rhs in self.rules[symbol]:
                if words[position] in self._predict_set(symbol, rhs):
                    stack.extend(reversed(rhs))
                    break
            else:
                return False
        return True

    def log_probability(self, words):
        """log P(sentence) by an LL(1) parse (nats); -inf when the grammar cannot produce `words`."""
        stack, position, log_prob = [self.start], 0, 0.0
        tokens = list(words) + [END]
        while stack:
            symbol = stack.pop()
            if symbol not in self.rules:
                if tokens[position] != symbol:
                    return -math.inf
                position += 1
                continue
            for p, rhs in self.rules[symbol]:
                if tokens[position] in self._predict_set(symbol, rhs):
                    log_prob += math.log(p)
                    stack.extend(reversed(rhs))
                    break
            else:
                return -math.inf
        return log_prob if tokens[position] == END else -math.inf


def sample_perplexity(log_probs, word_counts):
    """exp(sum of -log P(sentence) / sum of tokens) over a sample, a token being a word or an end of sentence: the
    perplexity of the true distribution on exactly these sentences."""
    tokens = sum(n + 1 for n in word_counts)
    return math.exp(-sum(log_probs) / tokens)


def _choices(words):
    return [(1.0 / len(words), [w]) for w in words]


def agreement_grammar(relative_clause=0.3, adjective=0.3, transitive=0.5):
    """Subject-verb agreement across relative clauses (right-branching, LL(1)).

        S      -> NP_sg VP_sg | NP_pl VP_pl
        NP_sg  -> "a" ADJS N_sg REL_sg          NP_pl -> "some" ADJS N_pl REL_pl
        ADJS   -> ADJ ADJS | (empty)            REL_x -> "that" VP_x | (empty)
        VP_x   -> an intransitive verb of number x | a transitive one of number x followed by OBJ
        OBJ    -> NP_sg | NP_pl

    The number chosen at the start decides the main verb's form, however long the relative clauses in between.
    """
    nouns = {"sg": ["dog", "cat", "bird", "fox"], "pl": ["dogs", "cats", "birds", "foxes"]}
    intransitive = {"sg": ["sleeps", "runs", "sings"], "pl": ["sleep", "run", "sing"]}
    verbs = {"sg": ["chases", "sees", "likes"], "pl": ["chase", "see", "like"]}
    determiner = {"sg": "a", "pl": "some"}
    rules = {
        "S": [(0.5, ["NP_sg", "VP_sg"]), (0.5, ["NP_pl", "VP_pl"])],
        "ADJS": [(adjective, ["ADJ", "ADJS"]), (1.0 - adjective, [])],
        "ADJ": _choices(["big", "small", "old", "young", "red"]),
        "OBJ": [(0.5, ["NP_sg"]), (0.5, ["NP_pl"])],
    }
    for number in ("sg", "pl"):
        rules[f"NP_{number}"] = [(1.0, [determiner[number], "ADJS", f"N_{number}", f"REL_{number}"])]
        rules[f"N_{number}"] = _choices(nouns[number])
        rules[f"REL_{number}"] = [(relative_clause, ["that", f"VP_{number}"]), (1.0 - relative_clause, [])]
        rules[f"VP_{number}"] = [((1.0 - transitive) / len(intransitive[number]), [v]) for v in intransitive[number]]
        rules[f"VP_{number}"] += [(transitive / len(verbs[number]), [v, "OBJ"]) for v in verbs[number]]
    return PCFG(rules)
