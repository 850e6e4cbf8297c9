"""generate: autoregressive decoding of a batch of prompts, by greedy choice or by sampling (temperature, top-k,
top-p), in one in-graph while loop."""

import numbers

import keras
import numpy as np
from keras import ops

from zoo import arguments
from zoo.decoding import samplers

METHODS = ("greedy", "sample")


def choose_tokens(logits, step_index, method, temperature, top_k, top_p, seed, banned_ids=()):
    """The next token of each row under `method`, never one of `banned_ids`. The arguments must already be validated
    (see `generate`).

    Args:
        logits: [batch, vocab] float32, the raw scores of the step.
        step_index: int32 scalar, the loop step. It is mixed into the seed, so each step draws fresh numbers.
        method: "greedy" or "sample". temperature, top_k, top_p and seed are ignored for "greedy".
        temperature: float > 0 or a float tensor [] or [batch].   top_k: int >= 0 (0 = off) or an int tensor [] or
        [batch] (<= 0 = off).   top_p: float in (0, 1] (1 = off) or a tensor [] or [batch] (>= 1 = off).
        seed: int, an int tensor [], or an int tensor [batch] (one seed per row).
        banned_ids: tuple of token ids that are never chosen (`samplers.ban_tokens`).

    Returns:
        int32 [batch].
    """
    if method == "greedy":
        return samplers.greedy(samplers.ban_tokens(logits, banned_ids))
    if ops.is_tensor(temperature) or temperature != 1.0:
        logits = samplers.apply_temperature(logits, temperature)
    logits = samplers.ban_tokens(logits, banned_ids)  # after the temperature, which would scale FILTERED_LOGIT
    if ops.is_tensor(top_k) or top_k > 0:
        logits = samplers.top_k_filter(logits, top_k)
    if ops.is_tensor(top_p) or top_p < 1.0:
        logits = samplers.top_p_filter(logits, top_p)
    if ops.is_tensor(seed) and len(seed.shape) == 1:  # one seed per row
        seeds = ops.cast(seed, "uint32")
        steps = ops.broadcast_to(ops.cast(step_index, "uint32"), ops.shape(seeds))
        return samplers.sample(logits, ops.stack([seeds, steps], axis=1))
    if ops.is_tensor(seed):
        seed_word = ops.cast(ops.reshape(seed, ()), "uint32")
    else:
        seed_word = ops.convert_to_tensor(np.uint32(seed % 2**32))
    return samplers.sample(logits, ops.stack([seed_word, ops.cast(step_index, "uint32")]))


def generate(
    step,
    initial_state,
    prompt,
    prompt_lengths,
    max_new_tokens,
    eos_id,
    *,
    pad_id=0,
    method="greedy",
    temperature=1.0,
    top_k=0,
    top_p=1.0,
    seed=0,
    banned_ids=(),
    return_state=False,
):
    """Continues each prompt of a batch with up to `max_new_tokens` tokens, all rows in one `ops.while_loop`.

    At loop step t, every row feeds its token t to `step`. If t + 1 < the row's prompt length, the row's next token
    is the prompt's token t + 1 (forced). Otherwise the sampler chooses it from the step's logits and writes it to
    output position t + 1 - prompt_length. So rows with prompts of different lengths decode together. The loop runs
    at most P - 1 + max_new_tokens steps and stops early once every row has finished. A row finishes when it emits
    `eos_id` (the eos is written and counted in `lengths`) or after `max_new_tokens` tokens. After that its tokens
    are `pad_id` and its log-probabilities 0. The model is still stepped for finished rows, fed `pad_id`, and
    those outputs are discarded.

    With `return_state`, the state after each row's last token is returned too: a finished row's state is kept as
    it was (not stepped with `pad_id`), and once the loop ends each row reads its last generated token in one more
    step. The state is then the state after the row's prompt and every token it generated (the eos included when
    it was generated), exactly as stepping the model over those tokens gives it, so a caller can go on with the same
    text later (a stateless server hands it to its client and takes it back with the next prompt).

    Banned tokens: no method ever chooses a token of `banned_ids`. A language model's caller bans the ids that are
    not words: the padding and the beginning of sentence, and the unknown token unless its output may hold it.
    `generate` does not know the vocabulary, so it bans nothing by default (and it does not ban `pad_id`, which may
    be a real token of a model without padding).

    Methods:
        "greedy": the argmax of the logits of the tokens that are not banned. A tie goes to the lowest token id.
        "sample": the logits are divided by `temperature`. If set, `top_k` keeps the k best tokens, then `top_p`
            keeps the nucleus of mass top_p, among the tokens that are not banned. A token is then drawn from the
            softmax of what is left. The draw is stateless and seeded: the same `seed` gives the same tokens,
            eagerly, in a graph, under XLA and in a SavedModel. Each step mixes the step index into the seed, so
            steps draw independent numbers.

    `log_probs` are the log-probabilities of the chosen tokens under the model's own distribution: log_softmax of
    the raw logits, before temperature, banned tokens, top-k and top-p. Summed over a row, they give the sequence's
    log-likelihood under the model, the score a caller ranks or rescores by. They are not the probabilities with
    which the sampler drew the tokens.

    Args:
        step: the model's step, `step(tokens, state) -> (logits, new_state)`. `tokens` is int32 [batch], the tokens
            just read. `state` is any nested structure of tensors with a leading batch dimension, passed through
            unchanged in structure. `logits` is float [batch, vocab], the unnormalised scores of the next token.
        initial_state: the state before the first token, e.g. `model.initial_state(batch_size)`.
        prompt: int [batch, P], right-padded with `pad_id`. Each row starts with the model's <bos> (or, when
            `initial_state` carries text read before, with whatever token comes next in that text).
        prompt_lengths: int [batch], each in [1, P].
        max_new_tokens: positive int, the width of the outputs.
        eos_id: int >= 0, the token that ends a row.
        pad_id: int >= 0, what fills the outputs after a row ends (default 0).
        method: "greedy" (default) or "sample".
        temperature: float > 0 (default 1.0), or a float32 tensor [] or [batch] (one per row).
        top_k: int >= 0 (default 0 = off), or an int32 tensor [] or [batch] (<= 0 = off).
        top_p: float in (0, 1] (default 1.0 = off), or a float32 tensor [] or [batch] (>= 1 = off).
        seed: int (default 0), or an int tensor [], taken modulo 2^32; or an int tensor [batch], one seed per row:
            then a row's draws depend only on its own seed, prompt and model, not on the other rows of the batch
            (so a server that batches requests together gives each the tokens it would get alone).
        Tensor values for temperature, top_k, top_p and seed let an exported signature take them as inputs; per-row
        values let every input of the signature have a batch dimension, as TF Serving's batching requires. Python
        values are validated here. Tensor values are not.
        banned_ids: list or tuple of token ids (ints in [0, vocab)) that are never generated (default none). The
            prompt may hold them: prompt tokens are read, not generated.
        return_state: also return "state", the state after each row's prompt and generated tokens (default False).
            Every leaf of the state must have the batch as its leading dimension.

    Returns:
        {"tokens": int32 [batch, max_new_tokens], "log_probs": float32 [batch, max_new_tokens],
         "lengths": int32 [batch]}: the generated tokens (eos included) and how many there are in each row; with
        `return_state`, also "state", in the structure of `initial_state`.

    Example:
        ```python
        # seqzoo's vocabularies: <pad> 0, <unk> 1, <bos> 2, <eos> 3.
        out = zoo.decoding.generate(model.step, model.initial_state(2), prompt, prompt_lengths, 20, eos_id=3,
                                    method="sample", temperature=0.8, top_p=0.9, seed=7, banned_ids=(0, 1, 2))
        ```

    References: A. Fan, M. Lewis, Y. Dauphin, "Hierarchical neural story generation", ACL 2018 (top-k);
    A. Holtzman, J. Buys, L. Du, M. Forbes, Y. Choi, "The curious case of neural text degeneration", ICLR 2020 (top-p).
    """
    max_new_tokens = arguments.positive_int("max_new_tokens", max_new_tokens)
    eos_id = _token_id("eos_id", eos_id)
    pad_id = _token_id("pad_id", pad_id)
    method = arguments.one_of("method", method, METHODS)
    if not ops.is_tensor(temperature):
        temperature = samplers.positive_float("temperature", temperature)
    if not ops.is_tensor(top_k) and (
        isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 0
    ):
        raise ValueError(f"top_k must be a non-negative int (0 = off), got {top_k!r}")
    if not ops.is_tensor(top_p):
        top_p = samplers.probability_mass("top_p", top_p)
    if not ops.is_tensor(seed) and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise ValueError(f"seed must be an int or an int tensor, got {seed!r}")
    banned_ids = samplers.checked_token_ids("banned_ids", banned_ids)
    if not isinstance(return_state, bool):
        raise ValueError(f"return_state must be True or False, got {return_state!r}")

    prompt = ops.cast(prompt, "int32")
    prompt_lengths = ops.cast(prompt_lengths, "int32")
    batch, prompt_width = ops.shape(prompt)[0], ops.shape(prompt)[1]
    max_steps = prompt_width - 1 + max_new_tokens
    positions = ops.arange(max_new_tokens, dtype="int32")[None, :]

    def running(t, tokens, state, out_tokens, out_log_probs, lengths, finished):
        return ops.logical_and(t < max_steps, ops.logical_not(ops.all(finished)))

    def advance(t, tokens, state, out_tokens, out_log_probs, lengths, finished):
        logits, stepped = step(tokens, state)
        # A finished row's state stays the state before its last token (read after the loop), if it is returned.
        state = _keep_rows(finished, state, stepped) if return_state else stepped
        logits = ops.cast(logits, "float32")
        chosen = choose_tokens(logits, t, method, temperature, top_k, top_p, seed, banned_ids)
        log_prob = ops.take_along_axis(ops.log_softmax(logits, axis=-1), chosen[:, None], axis=-1)
        forced = t + 1 < prompt_lengths
        writing = ops.logical_and(ops.logical_not(forced), ops.logical_not(finished))
        write_here = ops.logical_and(ops.equal(positions, lengths[:, None]), writing[:, None])
        out_tokens = ops.where(write_here, chosen[:, None], out_tokens)
        out_log_probs = ops.where(write_here, log_prob, out_log_probs)
        lengths = lengths + ops.cast(writing, "int32")
        ended = ops.logical_or(ops.logical_and(writing, ops.equal(chosen, eos_id)), lengths >= max_new_tokens)
        finished = ops.logical_or(finished, ended)
        prompt_next = ops.take(prompt, ops.minimum(t + 1, prompt_width - 1), axis=1)
        tokens = ops.where(forced, prompt_next, ops.where(finished, pad_id, chosen))
        return t + 1, tokens, state, out_tokens, out_log_probs, lengths, finished

    loop_state = (
        ops.convert_to_tensor(0, "int32"),
        prompt[:, 0],
        initial_state,
        ops.full((batch, max_new_tokens), pad_id, dtype="int32"),
        ops.zeros((batch, max_new_tokens), dtype="float32"),
        ops.zeros_like(prompt_lengths),
        ops.zeros_like(prompt_lengths, dtype="bool"),
    )
    _, _, state, out_tokens, out_log_probs, lengths, _ = ops.while_loop(running, advance, loop_state)
    result = {"tokens": out_tokens, "log_probs": out_log_probs, "lengths": lengths}
    if return_state:
        # Every row generated at least one token; its last one is read here.
        last = ops.take_along_axis(out_tokens, ops.maximum(lengths - 1, 0)[:, None], axis=1)[:, 0]
        _, result["state"] = step(last, state)
    return result


def _keep_rows(keep, old, new):
    """`new`, with the rows where `keep` [batch] is true taken from `old` (nested structures of [batch, ...])."""

    def select(old_leaf, new_leaf):
        mask = ops.reshape(keep, (-1,) + (1,) * (len(new_leaf.shape) - 1))
        return ops.where(mask, old_leaf, new_leaf)

    return keras.tree.map_structure(select, old, new)


def _token_id(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)
