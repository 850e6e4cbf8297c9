"""beam_search: the n best continuations of each row under a step function, with the GNMT length and coverage
penalties (Wu et al. 2016), minimum and maximum length and per-hypothesis alignments, in one in-graph while loop."""

import numbers

import numpy as np
from keras import ops
from keras import tree

from zoo import arguments
from zoo.decoding import samplers

# The log-probability of a hypothesis that does not exist (a beam a row does not use, or a candidate that is not
# allowed). Far below any real score, also after the length penalty divides it, and finite, so no NaN arises.
ABSENT = -1e30
COVERAGE_FLOOR = 1e-10  # the coverage penalty takes log(max(c, COVERAGE_FLOOR)): a source word never attended to
                         # costs beta * log(1e-10) ~ -23 beta rather than -inf


def gnmt_length_penalty(lengths, alpha):
    """GNMT's length penalty lp(Y) = ((5 + |Y|) / (5 + 1))^alpha.

    Args:
        lengths: int or float tensor of any shape, the hypotheses' lengths |Y| (the end of sentence included).
        alpha: float >= 0. 0 gives lp = 1 (no normalisation); 1 divides by roughly the length.

    Returns:
        float32, the shape of `lengths`.
    """
    lengths = ops.cast(lengths, "float32")
    return ops.power((5.0 + lengths) / 6.0, alpha)


def gnmt_coverage_penalty(coverage, beta, source_mask=None):
    """GNMT's coverage penalty cp(X; Y) = beta * sum_i log(min(sum_j p_ij, 1)), over the source positions i.

    p_ij is the attention that target step j paid to source position i, so sum_j p_ij is how much position i has been
    covered. A position covered once or more costs nothing; one left out costs beta * log of its coverage.

    Args:
        coverage: float [..., S], the coverage sum_j p_ij of each source position.
        beta: float >= 0.
        source_mask: optional bool or 0/1 [..., S] broadcastable to `coverage`: the real (not padded) source
            positions. Padded positions cost nothing.

    Returns:
        float32 [...]. Coverage is floored at `COVERAGE_FLOOR` before the log, so the penalty stays finite.
    """
    coverage = ops.cast(coverage, "float32")
    terms = ops.log(ops.clip(coverage, COVERAGE_FLOOR, 1.0))
    if source_mask is not None:
        terms = ops.where(ops.cast(source_mask, "bool"), terms, 0.0)
    return beta * ops.sum(terms, axis=-1)


def beam_search(
    step,
    initial_state,
    start_ids,
    max_length,
    eos_id,
    beam_size,
    *,
    length_penalty=0.0,
    coverage_penalty=0.0,
    min_length=0,
    banned_ids=(),
    alignment_fn=None,
    source_mask=None,
    pad_id=0,
    row_beam_size=None,
    row_max_length=None,
):
    """The `beam_size` best continuations of each row, found by beam search in one `ops.while_loop`.

    Each row keeps K = `beam_size` hypotheses (beams). At each loop step the model reads every beam's last token,
    every beam is expanded by every token of the vocabulary (K * V candidates per row), each candidate is scored,
    and the K best candidates of the row become its beams; the model's state follows them (every state tensor is
    reordered by the chosen beams' parents). Row b of the batch occupies rows b * K ... b * K + K - 1 of the tiled
    state. At step 0 only one beam per row exists (the others are absent), so the first K candidates are distinct.
    Each step only records what it chose (every new beam's token and parent, and the alignments); the hypotheses'
    tokens and alignments are traced back through the parents once, after the loop, so the cost of a step does not
    grow with the length of the hypotheses.

    Scores (Wu et al. 2016, GNMT, eq. 14):

        s(Y, X) = log P(Y | X) / lp(Y) + cp(X; Y)
        lp(Y) = ((5 + |Y|) / (5 + 1))^alpha                        alpha = `length_penalty`
        cp(X; Y) = beta * sum_i log(min(sum_j p_ij, 1.0))           beta = `coverage_penalty`

    log P(Y | X) = sum_j log p(y_j | y_<j, X) is the model's own log-probability (log_softmax of the raw logits);
    |Y| counts the tokens, the end of sentence included; p_ij is the alignment of target step j on source position i
    (`alignment_fn`), summed only over the real source positions (`source_mask`). As in TensorFlow Addons'
    `BeamSearchDecoder`, the length penalty applies to every candidate and the coverage penalty to finished ones
    only (while a hypothesis is growing its coverage is still incomplete). With both at 0 the score is the model's
    log-probability.

    Finishing: a hypothesis finishes when it emits `eos_id` (written and counted in its length) or reaches its row's
    maximum length. A finished hypothesis stays among the beams with its score fixed, competing with the growing
    ones, and is fed `pad_id` from then on (the model's outputs for it are discarded). The loop stops when every beam
    of every row has finished, at most after `max_length` steps. `eos_id` is banned while a hypothesis is shorter than
    `min_length`, and the tokens of `banned_ids` always (`samplers.ban_tokens`): a candidate with a banned token is
    never kept (with fewer allowed candidates than K beams, the rest of the beams are absent).

    Per-row settings: `row_beam_size` and `row_max_length` (tensors [batch], e.g. inputs of an exported signature)
    give each row its own beam width (at most `beam_size`, the static width of the tensors) and maximum length (at
    most `max_length`). A row with a smaller beam gets exactly what a search with that `beam_size` gives it, its extra
    beams absent; a row's result never depends on the other rows of the batch.

    Beam 1 is greedy decoding (`generate(..., method="greedy")` with the same `banned_ids`) whatever `length_penalty`
    is, since the candidates of one beam share their length. Beam search does not guarantee a higher model score
    than greedy decoding: greedy's prefix can be pushed out of the beams by K prefixes that later fare worse.

    Args:
        step: the model's step, `step(tokens, state) -> (logits, new_state)`: tokens int32 [N], state any nest
            (tuple, list, dict) of tensors with leading dimension N, logits float [N, V]. Called with N = batch * K.
        initial_state: the state before the first token, leading dimension batch (e.g. `model.initial_state(batch)`
            or an encoder's bridge). Tiled to batch * K inside.
        start_ids: int [batch], the first token each row reads (e.g. <bos>).
        max_length: positive int, the static maximum number of tokens of a hypothesis (the width of `tokens`).
        eos_id: int >= 0, the token that ends a hypothesis. It may not be banned.
        beam_size: positive int, K, the beams kept per row and the number of hypotheses returned.
        length_penalty: float >= 0 (default 0), alpha.
        coverage_penalty: float >= 0 (default 0), beta. Needs `alignment_fn`.
        min_length: int >= 0 (default 0): `eos_id` is banned for the first `min_length - 1` tokens, so a finished
            hypothesis has at least `min_length` tokens (eos included).
        banned_ids: list or tuple of token ids never emitted (default none).
        alignment_fn: optional `alignment_fn(state) -> [N, S]`, the alignment over the S source positions of the
            step that produced the state (for an attention-wrapper cell, the latest alignment it keeps in its state).
            It is called on the tiled initial state too, for S. Gives `alignments` and the coverage.
        source_mask: optional bool [batch, S], the real source positions (default: all), for the coverage penalty.
        pad_id: int >= 0 (default 0), what fills `tokens` after a hypothesis ends and what finished beams read.
        row_beam_size: optional int tensor [batch] (or []), each row's beam width, clipped to [1, beam_size].
        row_max_length: optional int tensor [batch] (or []), each row's maximum length, clipped to [1, max_length].
        Python values are validated here; tensor values are not.

    Returns:
        A dict, hypotheses sorted by score, best first, in each row:
        - "tokens": int32 [batch, K, max_length], `pad_id` after the end;
        - "lengths": int32 [batch, K], tokens of each hypothesis (eos included), 0 for an absent hypothesis;
        - "scores": float32 [batch, K], s(Y, X) (-inf for an absent hypothesis);
        - "log_probs": float32 [batch, K], log P(Y | X) without penalties (-inf for an absent hypothesis);
        - "alignments": float32 [batch, K, max_length, S], with `alignment_fn` only: row j of a hypothesis is the
          alignment of the step that produced its token j, zeros after its end.

    Example:
        ```python
        out = zoo.decoding.beam_search(model.step, model.initial_state(batch), start_ids, 40, eos_id=3,
                                       beam_size=4, length_penalty=0.6, banned_ids=(0, 1, 2))
        best = out["tokens"][:, 0]  # [batch, 40]
        ```

    Reference: Y. Wu et al., "Google's neural machine translation system: bridging the gap between human and machine
    translation", arXiv:1609.08144, 2016, §7.
    """
    max_length = arguments.positive_int("max_length", max_length)
    beam_size = arguments.positive_int("beam_size", beam_size)
    eos_id = _non_negative_int("eos_id", eos_id)
    pad_id = _non_negative_int("pad_id", pad_id)
    min_length = _non_negative_int("min_length", min_length)
    alpha = _non_negative_float("length_penalty", length_penalty)
    beta = _non_negative_float("coverage_penalty", coverage_penalty)
    banned_ids = samplers.checked_token_ids("banned_ids", banned_ids)
    if eos_id in banned_ids:
        raise ValueError(f"eos_id must not be among banned_ids (no hypothesis could end), got {eos_id} in {banned_ids}")
    if alignment_fn is not None and not callable(alignment_fn):
        raise ValueError(f"alignment_fn must be a callable state -> alignment [N, S] or None, got {alignment_fn!r}")
    if beta > 0.0 and alignment_fn is None:
        raise ValueError(f"coverage_penalty={beta} needs alignment_fn (the coverage sums the alignments)")
    if source_mask is not None and alignment_fn is None:
        raise ValueError("source_mask is used only with alignment_fn (for the coverage penalty), which is None")

    k = beam_size
    start_ids = ops.cast(ops.convert_to_tensor(start_ids), "int32")
    batch = ops.shape(start_ids)[0]
    n = batch * k
    beam_index = ops.arange(k, dtype="int32")[None, :]
    row_offsets = ops.arange(batch, dtype="int32")[:, None] * k  # [batch, 1]
    usable = None  # [N], the beams each row uses (None: all)
    if row_beam_size is not None:
        row_beams = _per_row(row_beam_size, batch, 1, k)
        usable = ops.reshape(ops.broadcast_to(beam_index < row_beams, (batch, k)), (n,))
    if row_max_length is None:
        row_max = max_length
    else:
        row_max = ops.reshape(ops.repeat(_per_row(row_max_length, batch, 1, max_length), k, axis=1), (n,))
    penalties = gnmt_length_penalty(ops.arange(max_length + 1, dtype="int32"), alpha) if alpha > 0.0 else None

    state = tree.map_structure(lambda s: ops.repeat(s, k, axis=0), initial_state)
    first_beam = ops.reshape(ops.broadcast_to(ops.equal(beam_index, 0), (batch, k)), (n,))
    beams = {
        "log_probs": ops.where(first_beam, 0.0, ops.full((n,), ABSENT, "float32")),  # [N]
        "scores": ops.where(first_beam, 0.0, ops.full((n,), ABSENT, "float32")),  # [N]
        "growing": first_beam,  # [N], not finished (an absent beam counts as finished)
    }
    # What each step chose, time major, traced back once at the end: the token each new beam wrote (-1 where its
    # parent had finished, so nothing was written), its parent (an index into the step's N beams) and the alignment of
    # each beam before the choice. A growing beam has t tokens before step t, so lengths need no bookkeeping.
    history = {
        "tokens": ops.full((max_length, n), -1, dtype="int32"),
        "parents": ops.broadcast_to(ops.arange(n, dtype="int32")[None, :], (max_length, n)),
    }
    mask = None
    if alignment_fn is not None:
        source_length = ops.shape(alignment_fn(state))[-1]
        beams["coverage"] = ops.zeros((n, source_length), "float32")
        history["alignments"] = ops.zeros((max_length, n, source_length), "float32")
        if source_mask is not None:
            mask = ops.repeat(ops.cast(source_mask, "bool"), k, axis=0)  # [N, S]

    def running(t, tokens, state, beams, history):
        # No step count needed: a growing beam has t tokens before step t and finishes when it reaches its row's
        # maximum length (at most max_length), so every beam has finished after max_length steps at the latest.
        return ops.any(beams["growing"])

    def advance(t, tokens, state, beams, history):
        logits, state = step(tokens, state)
        step_log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)  # [N, V], the model's own
        vocab = ops.shape(step_log_probs)[-1]
        token_ids = ops.arange(vocab, dtype="int32")
        # A candidate that is not allowed gets ABSENT added: its sum rounds to ABSENT or below (and is cut to ABSENT
        # below), an allowed one gets 0 added, which leaves it as it was.
        if banned_ids:
            banned = ops.equal(samplers.ban_tokens(ops.zeros((vocab,), "float32"), banned_ids), samplers.FILTERED_LOGIT)
            step_log_probs = step_log_probs + ops.where(banned, ABSENT, 0.0)
        if min_length > 1:
            too_short = ops.logical_and(ops.equal(token_ids, eos_id), t + 1 < min_length)
            step_log_probs = step_log_probs + ops.where(too_short, ABSENT, 0.0)
        growing = beams["growing"]  # [N]
        only_pad = ops.where(ops.equal(token_ids, pad_id), 0.0, ABSENT)  # a finished beam only keeps itself
        candidate_log_probs = beams["log_probs"][:, None] + ops.where(growing[:, None], step_log_probs, only_pad)
        real = candidate_log_probs > ABSENT / 2  # [N, V]
        # A growing beam's candidates have t + 1 tokens: it goes on below its row's maximum length, unless the
        # candidate's own token is eos.
        below_max = t + 1 < row_max  # [] or [N], the same for the K beams of a row
        scores = candidate_log_probs
        if alpha > 0.0:
            scores = scores / penalties[t + 1]
        if alignment_fn is not None:
            alignment = ops.cast(alignment_fn(state), "float32")  # [N, S], of the step just run
            alignment = ops.where(growing[:, None], alignment, 0.0)
            coverage = beams["coverage"] + alignment
            if beta > 0.0:
                continuing = ops.logical_and(growing, below_max)  # [N]
                ends = ops.logical_or(ops.logical_not(continuing)[:, None], ops.equal(token_ids, eos_id))  # [N, V]
                scores = scores + ops.where(ends, gnmt_coverage_penalty(coverage, beta, mask)[:, None], 0.0)
        if alpha > 0.0 or beta > 0.0:
            # A finished beam keeps the score it finished with (its log-probability, length and coverage no longer
            # change, so that is what the penalties would give again).
            scores = ops.where(growing[:, None], scores, beams["scores"][:, None] + only_pad)
        scores = ops.where(real, scores, ABSENT)

        top_scores, chosen = ops.top_k(ops.reshape(scores, (batch, k * vocab)), k, sorted=True)  # [batch, K]
        parents = ops.reshape(row_offsets + chosen // vocab, (n,))
        new_tokens = ops.reshape(chosen % vocab, (n,))
        log_probs = ops.take(ops.reshape(candidate_log_probs, (-1,)), parents * vocab + new_tokens)
        present = log_probs > ABSENT / 2
        if usable is not None:
            present = ops.logical_and(present, usable)
        wrote = ops.take(growing, parents)  # [N], whether the new beam's parent was growing
        new = {
            "log_probs": ops.where(present, log_probs, ABSENT),
            "scores": ops.reshape(top_scores, (n,)),  # of a beam that is not present: never used
            "growing": ops.logical_and(
                ops.logical_and(ops.logical_and(wrote, below_max), ops.not_equal(new_tokens, eos_id)), present),
        }
        at_t = ops.reshape(t, (1, 1))
        recorded = {"tokens": ops.where(wrote, new_tokens, -1), "parents": parents}
        if alignment_fn is not None:
            new["coverage"] = ops.take(coverage, parents, axis=0)
            recorded["alignments"] = alignment
        history = {name: ops.scatter_update(history[name], at_t, recorded[name][None]) for name in history}
        state = tree.map_structure(lambda s: ops.take(s, parents, axis=0), state)
        tokens = ops.where(new["growing"], new_tokens, pad_id)
        return t + 1, tokens, state, new, history

    loop_state = (ops.convert_to_tensor(0, "int32"), ops.repeat(start_ids, k, axis=0), state, beams, history)
    _, _, _, beams, history = ops.while_loop(running, advance, loop_state)

    # Trace each final beam back through its parents, all steps at once by pointer doubling: after the rounds with
    # shifts 1, 2, 4, ..., ancestors[t] = parents[t] o parents[t + 1] o ... o parents[T - 1] maps a final beam to the
    # beam it came from before step t (steps not run have identity parents).
    identity = ops.arange(n, dtype="int32")
    offsets = ops.arange(max_length, dtype="int32")[:, None] * n  # [T, 1], where step t starts in a flat history
    ancestors = history["parents"]  # [T, N]
    shift = 1
    while shift < max_length:
        later = ops.concatenate([ancestors[shift:], ops.broadcast_to(identity[None, :], (shift, n))], axis=0)
        ancestors = ops.take(ops.reshape(ancestors, (-1,)), later + offsets)
        shift *= 2
    beam_at = ops.concatenate([ancestors[1:], identity[None, :]], axis=0)  # [T, N], the beam at step t itself
    written = ops.transpose(ops.take(ops.reshape(history["tokens"], (-1,)), beam_at + offsets))  # [N, T], -1: none

    present = beams["log_probs"] > ABSENT / 2
    minus_inf = ops.full_like(beams["scores"], -np.inf)
    out = {
        "tokens": ops.where(ops.logical_and(present[:, None], written >= 0), written, pad_id),
        "lengths": ops.where(present, ops.sum(ops.cast(written >= 0, "int32"), axis=1), 0),
        "scores": ops.where(present, beams["scores"], minus_inf),
        "log_probs": ops.where(present, beams["log_probs"], minus_inf),
    }
    if alignment_fn is not None:
        alignments = ops.take(ops.reshape(history["alignments"], (-1, source_length)), ancestors + offsets, axis=0)
        out["alignments"] = ops.where(present[:, None, None], ops.transpose(alignments, (1, 0, 2)), 0.0)  # [N, T, S]
    return {name: ops.reshape(value, (batch, k) + tuple(ops.shape(value)[1:])) for name, value in out.items()}


def _per_row(value, batch, low, high):
    """An int tensor [] or [batch] as int32 [batch, 1], clipped to [low, high]."""
    value = ops.cast(ops.convert_to_tensor(value), "int32")
    value = ops.broadcast_to(ops.reshape(value, (-1, 1)), (batch, 1))
    return ops.clip(value, low, high)


def _non_negative_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def _non_negative_float(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0.0:
        raise ValueError(f"{name} must be a float >= 0, got {value!r}")
    return float(value)
