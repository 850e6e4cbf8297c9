"""Decoding: turning a language model's step function into sequences, as pure, exportable, XLA-friendly ops.

The step contract. A model exposes `step(tokens, state) -> (logits, new_state)` and `initial_state(batch_size)`:
- `tokens`: int32 [batch], the token just read.
- `state`: any nested structure (tuple, list, dict) of tensors whose leading dimension is the batch. The decoders
  treat it as opaque and only thread it through their loop.
- `logits`: float [batch, vocab], the unnormalised scores of the next token.

`generate` runs greedy decoding or sampling (temperature, top-k, top-p) over a batch of prompts of different lengths
in one in-graph while loop, never choosing the token ids the caller bans (a language model's padding, beginning of
sentence and, unless allowed, unknown token). `samplers` holds the pure functions on logits that it uses, the
banning included. `beam_search` keeps the n best hypotheses of each row on the same step contract, with the GNMT
length and coverage penalties, minimum and maximum length, and per-hypothesis alignments. `ctc` turns an acoustic
model's frames into labels: CTC's best path and beam search, and the collapse of per-frame word tags.
"""

from zoo.decoding import samplers
from zoo.decoding.beam_search import beam_search
from zoo.decoding.beam_search import gnmt_coverage_penalty
from zoo.decoding.beam_search import gnmt_length_penalty
from zoo.decoding.ctc import collapse_word_tags
from zoo.decoding.ctc import ctc_beam_search_decode
from zoo.decoding.ctc import ctc_greedy_decode
from zoo.decoding.generate import generate
from zoo.decoding.samplers import FILTERED_LOGIT
from zoo.decoding.samplers import apply_temperature
from zoo.decoding.samplers import ban_tokens
from zoo.decoding.samplers import greedy
from zoo.decoding.samplers import sample
from zoo.decoding.samplers import top_k_filter
from zoo.decoding.samplers import top_p_filter

__all__ = [
    "FILTERED_LOGIT",
    "apply_temperature",
    "ban_tokens",
    "beam_search",
    "collapse_word_tags",
    "ctc_beam_search_decode",
    "ctc_greedy_decode",
    "generate",
    "gnmt_coverage_penalty",
    "gnmt_length_penalty",
    "greedy",
    "sample",
    "samplers",
    "top_k_filter",
    "top_p_filter",
]
