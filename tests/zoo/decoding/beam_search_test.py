import keras
import numpy as np
import pytest

from tests.helpers import backend
from zoo.decoding import beam_search
from zoo.decoding import generate
from zoo.decoding import gnmt_coverage_penalty
from zoo.decoding import gnmt_length_penalty

BOS, EOS, PAD = 1, 3, 0
SOURCE = 5  # source positions of the toy alignments


class Bigram:
    """A toy model: the next token's logits are the row of `table` picked by the token just read. Its state is a
    nest (a dict holding a tuple) with the alignment of the last step, the row of `align_table` picked by the token
    read, and a step counter; `calls` counts the steps run."""

    def __init__(self, table, align_table=None):
        self.table = np.asarray(table, "float32")
        vocab = self.table.shape[0]
        if align_table is None:
            align_table = np.full((vocab, SOURCE), 1.0 / SOURCE)
        self.align_table = np.asarray(align_table, "float32")
        self.calls = 0

    def initial_state(self, batch_size):
        source = self.align_table.shape[1]
        return {"alignment": keras.ops.zeros((batch_size, source)), "extra": (keras.ops.zeros((batch_size,), "int32"),)}

    def step(self, tokens, state):
        self.calls += 1
        logits = keras.ops.take(keras.ops.convert_to_tensor(self.table), tokens, axis=0)
        alignment = keras.ops.take(keras.ops.convert_to_tensor(self.align_table), tokens, axis=0)
        return logits, {"alignment": alignment, "extra": (state["extra"][0] + 1,)}

    @staticmethod
    def alignment_fn(state):
        return state["alignment"]


def random_model(seed, vocab=9, source=SOURCE, eos_logit=None):
    rng = np.random.default_rng(seed)
    table = (2.0 * rng.normal(size=(vocab, vocab))).astype("float32")
    if eos_logit is not None:
        table[:, EOS] = eos_logit
    align = rng.uniform(size=(vocab, source)) ** 3
    align = (align / align.sum(axis=1, keepdims=True)).astype("float32")
    return Bigram(table, align)


def log_softmax(x):
    x = np.asarray(x, "float64")
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def numpy_length_penalty(length, alpha):
    return ((5.0 + length) / 6.0) ** alpha


def numpy_coverage_penalty(coverage, beta, mask):
    return beta * sum(np.log(min(max(c, 1e-10), 1.0)) for c, m in zip(coverage, mask) if m)


def numpy_beam_search(model, start, beam_size, max_length, eos_id=EOS, length_penalty=0.0, coverage_penalty=0.0,
                      min_length=0, banned_ids=(), source_mask=None, pad_id=PAD):
    """Beam search of one row over a Bigram model, written with Python lists: every candidate of every hypothesis,
    sorted by (score desc, beam * V + token), the first `beam_size` kept; finished hypotheses carried unchanged."""
    vocab, source = model.align_table.shape[0], model.align_table.shape[1]
    mask = np.ones(source, bool) if source_mask is None else np.asarray(source_mask, bool)
    beams = [{"tokens": [], "log_prob": 0.0, "score": 0.0, "finished": False, "coverage": np.zeros(source),
              "alignments": [], "last": start}]
    for _ in range(max_length):
        if all(h["finished"] for h in beams):
            break
        candidates = []
        for i, h in enumerate(beams):
            if h["finished"]:
                candidates.append((h["score"], i * vocab + pad_id, h))
                continue
            log_probs = log_softmax(model.table[h["last"]])
            alignment = model.align_table[h["last"]].astype("float64")
            coverage = h["coverage"] + alignment
            length = len(h["tokens"]) + 1
            for token in range(vocab):
                if token in banned_ids or (token == eos_id and length < min_length):
                    continue
                log_prob = h["log_prob"] + log_probs[token]
                finished = token == eos_id or length >= max_length
                score = log_prob / numpy_length_penalty(length, length_penalty)
                if finished:
                    score += numpy_coverage_penalty(coverage, coverage_penalty, mask)
                candidates.append((score, i * vocab + token, {
                    "tokens": h["tokens"] + [token], "log_prob": log_prob, "score": score, "finished": finished,
                    "coverage": coverage, "alignments": h["alignments"] + [alignment], "last": token}))
        candidates.sort(key=lambda c: (-c[0], c[1]))
        beams = [c[2] for c in candidates[:beam_size]]
    return beams


def run(model, start, max_length, beam_size, with_alignments=False, **options):
    start = np.asarray(start, "int32")
    if with_alignments:
        options["alignment_fn"] = Bigram.alignment_fn
    out = beam_search(model.step, model.initial_state(len(start)), start, max_length, EOS, beam_size, **options)
    return {name: keras.ops.convert_to_numpy(value) for name, value in out.items()}


def assert_matches_numpy(out, model, starts, beam_size, max_length, with_alignments=False, source_mask=None,
                         **options):
    """The n-best of each row is the reference's: the same hypotheses (hypotheses of equal score may come in either
    order: a bigram model gives a sequence and a permutation of its transitions the same log-probability), each with
    the reference's length, score, log-probability and alignments, sorted by score."""
    for row, start in enumerate(starts):
        mask = None if source_mask is None else source_mask[row]
        expected = numpy_beam_search(model, start, beam_size, max_length, source_mask=mask, **options)
        by_tokens = {tuple(h["tokens"]): h for h in expected}
        assert len(by_tokens) == len(expected)
        np.testing.assert_allclose(out["scores"][row, : len(expected)], [h["score"] for h in expected], atol=1e-4)
        for k in range(beam_size):
            message = f"row {row}, hypothesis {k}"
            length = out["lengths"][row, k]
            if k >= len(expected):
                assert length == 0 and out["scores"][row, k] == -np.inf, message
                assert out["log_probs"][row, k] == -np.inf and (out["tokens"][row, k] == PAD).all(), message
                continue
            tokens = tuple(int(t) for t in out["tokens"][row, k, :length])
            assert tokens in by_tokens, f"{message}: {tokens} is not among {list(by_tokens)}"
            h = by_tokens.pop(tokens)
            assert (out["tokens"][row, k, length:] == PAD).all(), message
            np.testing.assert_allclose(out["log_probs"][row, k], h["log_prob"], atol=1e-4, err_msg=message)
            np.testing.assert_allclose(out["scores"][row, k], h["score"], atol=1e-4, err_msg=message)
            if with_alignments:
                np.testing.assert_allclose(out["alignments"][row, k, :length], h["alignments"], atol=1e-6)
                assert (out["alignments"][row, k, length:] == 0.0).all()
        assert (np.diff(out["scores"][row][out["lengths"][row] > 0]) <= 0).all(), "n-best not sorted by score"


@pytest.mark.jax
def test_penalties_match_numpy():
    lengths = np.array([[1, 2, 7], [10, 30, 4]])
    for alpha in (0.0, 0.6, 1.0, 2.0):
        expected = numpy_length_penalty(lengths.astype("float64"), alpha)
        actual = keras.ops.convert_to_numpy(gnmt_length_penalty(lengths, alpha))
        np.testing.assert_allclose(actual, expected, rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(gnmt_length_penalty([1], 1.0)), [1.0])
    coverage = np.array([[0.2, 1.7, 0.0, 0.9], [1.0, 0.5, 0.05, 3.0]], "float32")
    mask = np.array([[True, True, False, True], [True, True, True, True]])
    for beta in (0.0, 0.2, 1.0):
        expected = [numpy_coverage_penalty(c, beta, m) for c, m in zip(coverage, mask)]
        actual = keras.ops.convert_to_numpy(gnmt_coverage_penalty(coverage, beta, mask))
        np.testing.assert_allclose(actual, expected, rtol=1e-5)
        unmasked = [numpy_coverage_penalty(c, beta, [True] * 4) for c in coverage]
        np.testing.assert_allclose(keras.ops.convert_to_numpy(gnmt_coverage_penalty(coverage, beta)), unmasked,
                                   rtol=1e-5)
    # Fully covered positions cost nothing; the penalty is never positive.
    assert keras.ops.convert_to_numpy(gnmt_coverage_penalty(np.ones((1, 3)) * 2.0, 1.0))[0] == 0.0


REFERENCE_CASES = {
    "plain": dict(beam_size=3, max_length=6),
    "length_penalty": dict(beam_size=3, max_length=7, length_penalty=0.8),
    "coverage_penalty": dict(beam_size=4, max_length=6, length_penalty=0.6, coverage_penalty=0.5, source_mask=True),
    "min_length": dict(beam_size=3, max_length=7, min_length=4),
    "banned": dict(beam_size=3, max_length=6, banned_ids=(PAD, BOS, 5)),
    "wide_beam": dict(beam_size=12, max_length=4, banned_ids=(PAD, 2)),  # more beams than candidates at step 0
}


# Under JAX two cases: penalties with a source mask, and more beams than candidates.
@pytest.mark.parametrize("case", backend.jax_for(list(REFERENCE_CASES), ("coverage_penalty", "wide_beam")))
def test_matches_numpy_reference(case):
    options = dict(REFERENCE_CASES[case])
    beam_size, max_length = options.pop("beam_size"), options.pop("max_length")
    starts = [BOS, 2, 4, 7]
    source_mask = None
    if options.pop("source_mask", False):
        source_mask = np.arange(SOURCE)[None, :] < np.array([5, 3, 1, 4])[:, None]
        options["source_mask"] = source_mask
    for seed in range(3):
        model = random_model(seed, eos_logit=0.5)
        out = run(model, starts, max_length, beam_size, with_alignments=True, **options)
        reference = {name: value for name, value in options.items() if name != "source_mask"}
        assert_matches_numpy(out, model, starts, beam_size, max_length, with_alignments=True,
                             source_mask=source_mask, **reference)
        if "min_length" in options:
            assert (out["lengths"] >= options["min_length"]).all()
        if "banned_ids" in options:
            written = out["tokens"][np.arange(max_length)[None, None, :] < out["lengths"][:, :, None]]
            assert not np.isin(written, options["banned_ids"]).any()
        if case == "plain":
            # Without alignment_fn: the same hypotheses, no alignments.
            plain = run(model, starts, max_length, beam_size, **options)
            assert "alignments" not in plain
            for name in ("tokens", "lengths", "scores", "log_probs"):
                np.testing.assert_array_equal(plain[name], out[name])


def greedy_tokens(model, starts, max_length, **options):
    out = generate(model.step, model.initial_state(len(starts)), np.asarray(starts, "int32")[:, None],
                   np.ones(len(starts), "int32"), max_length, EOS, **options)
    return {name: keras.ops.convert_to_numpy(value) for name, value in out.items()}


def test_beam_1_is_greedy():  # TensorFlow only: beam search's other tests run under JAX too
    starts = [BOS, 2, 4, 5, 7, 8]
    ended = []
    for seed in range(4):
        model = random_model(seed, vocab=11)
        for options in ({}, {"banned_ids": (PAD, BOS, 2)}):
            greedy = greedy_tokens(model, starts, 8, **options)
            ended.extend(greedy["lengths"] < 8)
            for length_penalty in (0.0, 1.0):
                out = run(model, starts, 8, 1, length_penalty=length_penalty, **options)
                np.testing.assert_array_equal(out["tokens"][:, 0], greedy["tokens"])
                np.testing.assert_array_equal(out["lengths"][:, 0], greedy["lengths"])
                np.testing.assert_allclose(out["log_probs"][:, 0], greedy["log_probs"].sum(axis=1), atol=1e-5)
    assert any(ended) and not all(ended)  # rows that end with eos and rows that run to the maximum length


def test_best_beam_scores_at_least_greedy_on_random_models():
    # Not a theorem (see beam_search's docstring), but what a beam search should do on ordinary models.
    starts = [BOS, 2, 4, 5, 6, 7, 8]
    better = 0
    for seed in range(8):
        model = random_model(seed, vocab=10)
        greedy = greedy_tokens(model, starts, 6)["log_probs"].sum(axis=1)
        for beam_size in (2, 4):
            best = run(model, starts, 6, beam_size)["log_probs"][:, 0]
            assert (best >= greedy - 1e-5).all(), (seed, beam_size, best, greedy)
            better += int((best > greedy + 1e-3).sum())
    assert better > 10  # and strictly better on many rows: the check is not vacuous


@pytest.mark.jax
def test_beam_2_finds_what_greedy_misses():
    # After <bos>: token 4 (p = 0.6) or 5 (p = 0.4). After 4, seven tokens are equally likely (p = 1/7 each) and eos
    # is not among them; after 5, and after every other token, eos is certain. Greedy takes 4 and ends with
    # P = 0.6 / 7 ~ 0.086; beam 2 keeps 5 and finds <bos> 5 eos with P = 0.4.
    vocab = 10
    table = np.full((vocab, vocab), -30.0, "float32")
    table[BOS, 4], table[BOS, 5] = np.log(0.6), np.log(0.4)
    table[2:, EOS] = 0.0
    table[4, EOS] = -30.0
    table[4, [2, 4, 5, 6, 7, 8, 9]] = 0.0
    model = Bigram(table)
    greedy = greedy_tokens(model, [BOS], 5)
    assert greedy["tokens"][0, 0] == 4
    out = run(model, [BOS], 5, 2)
    np.testing.assert_array_equal(out["tokens"][0, 0], [5, EOS, PAD, PAD, PAD])
    np.testing.assert_allclose(out["log_probs"][0, 0], np.log(0.4), atol=1e-4)
    assert out["log_probs"][0, 0] > greedy["log_probs"].sum() + 1.0
    np.testing.assert_array_equal(out["tokens"][0, 1, :1], [4])  # greedy's path is the runner-up


@pytest.mark.jax
def test_min_and_max_length():
    model = random_model(3, vocab=8, eos_logit=9.0)  # eos is every step's favourite
    out = run(model, [BOS, 2], 6, 3)
    assert (out["lengths"][:, 0] == 1).all()
    out = run(model, [BOS, 2], 6, 3, min_length=4)
    assert (out["lengths"] >= 4).all()
    assert (out["tokens"][:, :, :3] != EOS).all()
    never_ends = random_model(3, vocab=8, eos_logit=-50.0)
    out = run(never_ends, [BOS, 2], 6, 3, min_length=9)  # longer than max_length: every hypothesis stops at 6
    np.testing.assert_array_equal(out["lengths"], np.full((2, 3), 6))
    assert (out["tokens"] != PAD).all()


def test_stops_once_every_beam_of_every_row_has_finished():
    # TensorFlow only: its eager while loop runs the Python step once per iteration, so `calls` counts the steps
    # (under JAX the loop body is traced once).
    model = random_model(4, vocab=8, eos_logit=6.0)
    out = run(model, [BOS, 2, 5], 40, 3)
    longest = out["lengths"].max()
    assert longest < 6
    assert model.calls == longest  # not 40: the loop ends when the last beam ends


def test_rows_do_not_depend_on_the_batch():
    # (Under JAX the per-row test below compares rows alone and batched too.) Rows with a short maximum length end
    # long before the others: the loop runs on for the batch, and must leave their hypotheses as they were.
    model = random_model(5, vocab=12, eos_logit=0.0)
    starts = np.array([BOS, 2, 4, 6, 7, 9, 11])
    max_lengths = np.array([3, 10, 5, 10, 2, 7, 10], "int32")
    options = dict(length_penalty=0.6, coverage_penalty=0.3, with_alignments=True)
    batch = run(model, starts, 10, 4, row_max_length=max_lengths, **options)
    for row in range(len(starts)):
        alone = run(model, starts[row : row + 1], 10, 4, row_max_length=max_lengths[row : row + 1], **options)
        for name in ("tokens", "lengths"):
            np.testing.assert_array_equal(batch[name][row], alone[name][0])
        for name in ("scores", "log_probs", "alignments"):
            np.testing.assert_allclose(batch[name][row], alone[name][0], atol=1e-6)
    reversed_rows = run(model, starts[::-1], 10, 4, row_max_length=max_lengths[::-1], **options)
    np.testing.assert_array_equal(reversed_rows["tokens"], batch["tokens"][::-1])


def test_per_row_beam_size_and_max_length():
    # Each row gets exactly what a search with its own static beam size and maximum length gives it alone.
    model = random_model(6, vocab=10, eos_logit=-1.0)
    starts = np.array([BOS, 2, 4, 6, 8])
    beams = np.array([1, 4, 2, 3, 9])  # 9 is clipped to the static 4
    lengths = np.array([6, 2, 5, 1, 20])  # 20 is clipped to the static 6
    options = dict(length_penalty=0.5, with_alignments=True)
    out = run(model, starts, 6, 4, row_beam_size=beams, row_max_length=lengths, **options)
    for row in range(len(starts)):
        beam, length = min(beams[row], 4), min(lengths[row], 6)
        alone = run(model, starts[row : row + 1], length, beam, **options)
        np.testing.assert_array_equal(out["tokens"][row, :beam, :length], alone["tokens"][0])
        assert (out["tokens"][row, :, length:] == PAD).all()
        np.testing.assert_array_equal(out["lengths"][row, :beam], alone["lengths"][0])
        np.testing.assert_allclose(out["scores"][row, :beam], alone["scores"][0], atol=1e-6)
        np.testing.assert_allclose(out["alignments"][row, :beam, :length], alone["alignments"][0], atol=1e-6)
        # the beams the row does not use are absent
        assert (out["lengths"][row, beam:] == 0).all() and (out["scores"][row, beam:] == -np.inf).all()
        assert (out["log_probs"][row, beam:] == -np.inf).all() and (out["tokens"][row, beam:] == PAD).all()
    # A scalar applies to every row.
    scalar = run(model, starts, 6, 4, row_beam_size=np.int32(2), row_max_length=np.int32(3))
    fixed = run(model, starts, 3, 2)
    np.testing.assert_array_equal(scalar["tokens"][:, :2, :3], fixed["tokens"])
    assert (scalar["lengths"][:, 2:] == 0).all()


@pytest.mark.jax
def test_alignments_are_each_hypothesis_own():
    # The toy model's alignment at a step is a function of the token it read: row j of a hypothesis's alignments
    # must be that of its own token j - 1 (<start> for j = 0), whichever beams its prefix went through.
    model = random_model(7, vocab=9, eos_logit=-0.5)
    starts = np.array([BOS, 4, 6])
    out = run(model, starts, 6, 4, with_alignments=True)
    assert out["alignments"].shape == (3, 4, 6, SOURCE)
    for row in range(3):
        for k in range(4):
            length = out["lengths"][row, k]
            read = np.concatenate([[starts[row]], out["tokens"][row, k, : length - 1]])
            np.testing.assert_allclose(out["alignments"][row, k, :length], model.align_table[read], atol=1e-6)
            assert (out["alignments"][row, k, length:] == 0.0).all()


@pytest.mark.jax
def test_under_xla():
    model = random_model(8, vocab=10, eos_logit=0.0)
    starts = np.array([BOS, 2, 5, 7], "int32")
    options = dict(length_penalty=0.6, coverage_penalty=0.2, min_length=2, banned_ids=(PAD,))
    eager = run(model, starts, 6, 3, with_alignments=True, **options)

    def decode(start_ids, beams, lengths):
        return beam_search(model.step, model.initial_state(keras.ops.shape(start_ids)[0]), start_ids, 6, EOS, 3,
                           alignment_fn=Bigram.alignment_fn, row_beam_size=beams, row_max_length=lengths, **options)

    compiled = backend.xla_compiled(decode, input_specs=[((None,), "int32"), ((None,), "int32"), ((None,), "int32")])
    out = compiled(starts, np.full(4, 3, "int32"), np.full(4, 6, "int32"))
    for name in ("tokens", "lengths"):
        np.testing.assert_array_equal(out[name], eager[name])
    for name in ("scores", "log_probs", "alignments"):
        np.testing.assert_allclose(out[name], eager[name], atol=1e-5)
    # another batch size and per-row settings through the same compiled function
    out = compiled(starts[:2], np.array([1, 2], "int32"), np.array([6, 3], "int32"))
    np.testing.assert_array_equal(out["lengths"][0, 1:], [0, 0])
    assert (out["lengths"][1, :2] <= 3).all() and out["lengths"][1, 2] == 0


def test_in_a_graph_with_unknown_batch_size():
    backend.skip_unless_tensorflow("tf.function with an unknown batch size")
    import tensorflow as tf

    model = random_model(9, vocab=10, eos_logit=0.0)
    starts = np.array([BOS, 2, 5], "int32")
    eager = run(model, starts, 5, 3, with_alignments=True, coverage_penalty=0.3)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def decode(start_ids):
        return beam_search(model.step, model.initial_state(tf.shape(start_ids)[0]), start_ids, 5, EOS, 3,
                           alignment_fn=Bigram.alignment_fn, coverage_penalty=0.3)

    traced = decode.get_concrete_function().structured_outputs
    assert traced["tokens"].shape.as_list() == [None, 3, 5]
    assert traced["alignments"].shape.as_list() == [None, 3, 5, SOURCE]
    out = decode(tf.constant(starts))
    for name in ("tokens", "lengths"):
        np.testing.assert_array_equal(out[name].numpy(), eager[name])
    np.testing.assert_allclose(out["alignments"].numpy(), eager["alignments"], atol=1e-6)


def lm_log_prob(model, start, tokens):
    """log P(tokens | start) under a language model's teacher-forced call."""
    inputs = np.array([[start] + list(tokens)], "int32")
    logits = keras.ops.convert_to_numpy(model(inputs))[0, : len(tokens)]
    return log_softmax(logits)[np.arange(len(tokens)), tokens].sum()


@pytest.mark.jax
def test_on_a_zoo_language_model():
    import zoo

    keras.utils.set_random_seed(1)
    model = zoo.models.RNNLM(vocab_size=12, cell="lstm", units=8, num_layers=2)
    model.build((None, None))
    # Sharper logits than the random init gives, so that hypotheses differ and end.
    model.output_projection.kernel.assign(4.0 * model.output_projection.kernel)
    starts = np.array([BOS, 4, 6, 9], "int32")
    banned = (PAD, BOS)
    out = run(model, starts, 7, 4, banned_ids=banned)
    greedy = greedy_tokens(model, starts, 7, banned_ids=banned)
    np.testing.assert_array_equal(run(model, starts, 7, 1, banned_ids=banned)["tokens"][:, 0], greedy["tokens"])
    assert (out["log_probs"][:, 0] >= greedy["log_probs"].sum(axis=1) - 1e-4).all()
    # Each hypothesis's log-probability is the model's own, recomputed by its teacher-forced call: the state was
    # reordered with the beams.
    for row, start in enumerate(starts):
        for k in range(4):
            tokens = out["tokens"][row, k, : out["lengths"][row, k]]
            np.testing.assert_allclose(out["log_probs"][row, k], lm_log_prob(model, start, tokens), atol=1e-4)
    assert len({tuple(t) for t in out["tokens"][0]}) == 4  # distinct hypotheses

    def decode(start_ids):
        return beam_search(model.step, model.initial_state(keras.ops.shape(start_ids)[0]), start_ids, 7, EOS, 4,
                           banned_ids=banned)

    compiled = backend.xla_compiled(decode, model.variables, input_specs=[((None,), "int32")])(starts)
    np.testing.assert_array_equal(compiled["tokens"], out["tokens"])
    np.testing.assert_allclose(compiled["log_probs"], out["log_probs"], atol=1e-4)


def test_bad_arguments():
    model = random_model(0)
    cases = [
        ({"max_length": 0}, r"^max_length must be a positive int, got 0$"),
        ({"beam_size": -2}, r"^beam_size must be a positive int, got -2$"),
        ({"eos_id": -1}, r"^eos_id must be a non-negative int, got -1$"),
        ({"pad_id": 1.5}, r"^pad_id must be a non-negative int, got 1.5$"),
        ({"min_length": -1}, r"^min_length must be a non-negative int, got -1$"),
        ({"length_penalty": -0.1}, r"^length_penalty must be a float >= 0, got -0.1$"),
        ({"coverage_penalty": "x"}, r"^coverage_penalty must be a float >= 0, got 'x'$"),
        ({"banned_ids": (0, EOS)}, r"^eos_id must not be among banned_ids .*got 3 in \(0, 3\)$"),
        ({"banned_ids": 0}, r"^banned_ids must be a list or tuple of token ids"),
        ({"coverage_penalty": 0.5}, r"^coverage_penalty=0.5 needs alignment_fn"),
        ({"alignment_fn": 3}, r"^alignment_fn must be a callable"),
        ({"source_mask": np.ones((1, SOURCE), bool)}, r"^source_mask is used only with alignment_fn"),
    ]
    for override, message in cases:
        arguments = {"max_length": 3, "eos_id": EOS, "beam_size": 2, **override}
        with pytest.raises(ValueError, match=message):
            beam_search(model.step, model.initial_state(1), [BOS], **arguments)


def test_saved_model_round_trip_with_per_row_inputs(tmp_path):
    # What a translation export holds: beam search inside one signature, with per-row beam size and maximum length,
    # run by tf.saved_model.load and by the TF1 session loader TF Serving uses.
    backend.skip_unless_tensorflow("SavedModel export")
    import tensorflow as tf

    from tests.helpers import saved_model

    model = random_model(10, vocab=10, eos_logit=0.0)
    options = dict(length_penalty=0.6, coverage_penalty=0.2, banned_ids=(PAD,))

    class Decoder(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="start_ids"),
                                      tf.TensorSpec([None], tf.int32, name="beam_size"),
                                      tf.TensorSpec([None], tf.int32, name="max_length")])
        def decode(self, start_ids, beam_size, max_length):
            return beam_search(model.step, model.initial_state(tf.shape(start_ids)[0]), start_ids, 6, EOS, 4,
                               alignment_fn=Bigram.alignment_fn, row_beam_size=beam_size, row_max_length=max_length,
                               **options)

    path = str(tmp_path / "beam")
    decoder = Decoder()
    tf.saved_model.save(decoder, path, signatures={"serving_default": decoder.decode})
    reloaded = tf.saved_model.load(path)
    for starts, beams, lengths in [([BOS, 2, 5], [4, 1, 2], [6, 6, 3]), ([7], [3], [5])]:
        inputs = {"start_ids": np.array(starts, "int32"), "beam_size": np.array(beams, "int32"),
                  "max_length": np.array(lengths, "int32")}
        expected = run(model, starts, 6, 4, with_alignments=True, row_beam_size=inputs["beam_size"],
                       row_max_length=inputs["max_length"], **options)
        for out in (reloaded.signatures["serving_default"](**inputs), saved_model.load_with_session(path, inputs)):
            for name in ("tokens", "lengths"):
                np.testing.assert_array_equal(np.asarray(out[name]), expected[name])
            for name in ("scores", "log_probs", "alignments"):
                np.testing.assert_allclose(np.asarray(out[name]), expected[name], atol=1e-5)
