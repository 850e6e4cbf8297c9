"""The shared checks run on every zoo language model (`zoo.models.*_lm`).

A language model maps int32 tokens [batch, T] to next-token logits [batch, T, vocab_size], and decodes one token at
a time: `initial_state(batch_size)` is its state before the first token, and `step(tokens [batch], state) ->
(logits [batch, vocab_size], state)` reads one more. Every language model goes through:

    assert_step_equals_call                  stepping from `initial_state` gives the logits of `call` (atol 1e-5)
    assert_causal                            changing the tokens from t on leaves the logits before t as they were,
                                             and changes the logits at t
    assert_jit_compiled_call_and_steps_equal_eager
                                             `call` under XLA, and steps under XLA (with a symbolic batch size under
                                             TensorFlow), give the eager logits (atol 1e-5)
    assert_dropout_only_while_training       dropout changes nothing at inference and something in training
    assert_config_and_keras_file_round_trip  config and `.keras` file round trips
    assert_saved_model_round_trip            a SavedModel with an int32 [None, None] signature, loaded by both
                                             TensorFlow loaders, on two batch sizes and lengths (TensorFlow only)
    assert_learns_a_deterministic_cycle      training drives the loss on a zero-entropy token cycle near 0
    assert_carried_state_equals_one_call     (models that carry a state across calls, for truncated BPTT on
                                             streams) windows run one after another, each from the state the
                                             previous returned, give the logits and final state of one call on
                                             their concatenation; a masked (padded) tail leaves the state as after
                                             the last real token; the state equals the one `step` reaches
    assert_state_ends_at_each_row_s_last_real_token
                                             from a carried state, with rows of different numbers of real
                                             tokens (none included), the returned state is the one `step`
                                             reaches after each row's real tokens, eagerly and under XLA

A model's test file builds small models with random weights, calls these on them, and keeps what is particular to
the model: its NumPy reference, weights, context or receptive field, tied embeddings, Keras twins, presets and bad
arguments. The step and XLA checks also run under Keras's JAX backend (the tests that call them are marked `jax`).
"""

import keras
import numpy as np

from tests.helpers import backend
from tests.helpers import saved_model
from tests.helpers import serialization


def numpy(x):
    """A tensor (or array) as a NumPy array."""
    return keras.ops.convert_to_numpy(x)


def tokens(vocab, batch=3, time=7, seed=0):
    """Random token ids in [0, vocab): [batch, time] int32."""
    return np.random.default_rng(seed).integers(0, vocab, size=(batch, time)).astype("int32")


def run_steps(model, x):
    """Feeds `x` [batch, T] to `model.step` one position at a time, from `model.initial_state`.

    Returns:
        the logits of every step, stacked: [batch, T, vocab_size] NumPy.
    """
    state = model.initial_state(x.shape[0])
    logits = []
    for t in range(x.shape[1]):
        step_logits, state = model.step(x[:, t], state)
        logits.append(numpy(step_logits))
    return np.stack(logits, axis=1)


def assert_step_equals_call(model, x, atol=1e-5):
    """Decoding `x` step by step gives the logits that one call on the whole of `x` gives."""
    np.testing.assert_allclose(run_steps(model, x), numpy(model(x)), atol=atol)


def assert_causal(model, x, start):
    """Changes every token of `x` from position `start` on: the logits before `start` must stay as they were
    (atol 1e-6), and the logits at `start` must change (the current token reaches its own logits).

    Returns:
        the logits of `x`, for further checks.
    """
    changed = x.copy()
    changed[:, start:] = (changed[:, start:] + 1) % model.vocab_size
    y, y_changed = numpy(model(x)), numpy(model(changed))
    np.testing.assert_allclose(y_changed[:, :start], y[:, :start], atol=1e-6)
    assert not np.allclose(y_changed[:, start], y[:, start], atol=1e-3), "the current token must reach its own logits"
    return y


def assert_jit_compiled_call_and_steps_equal_eager(model, x, atol=1e-5):
    """`call` compiled with XLA, and a step-by-step decoding of `x` compiled with XLA, both give the eager logits of
    `x`. Under TensorFlow the decoding is compiled for any batch size, so that `initial_state` gets a symbolic batch
    size; JAX compiles for the batch size it is given."""
    time = x.shape[1]
    eager = numpy(model(x))
    compiled_call = backend.xla_compiled(lambda v: model(v), model.variables)
    np.testing.assert_allclose(compiled_call(x), eager, atol=atol)

    def decode(v):
        state = model.initial_state(keras.ops.shape(v)[0])  # symbolic under TensorFlow's signature
        logits = []
        for t in range(time):
            step_logits, state = model.step(v[:, t], state)
            logits.append(step_logits)
        return keras.ops.stack(logits, axis=1)

    compiled_decode = backend.xla_compiled(decode, model.variables, input_specs=[((None, time), "int32")])
    np.testing.assert_allclose(compiled_decode(x), eager, atol=atol)


def assert_dropout_only_while_training(model, plain, x):
    """`model` has dropout, `plain` is the same model without: given `model`'s weights, `plain` gives the same
    logits at inference (atol 1e-6), and different ones from `model` in training."""
    plain.set_weights(model.get_weights())
    np.testing.assert_allclose(numpy(model(x)), numpy(plain(x)), atol=1e-6)
    assert not np.allclose(numpy(model(x, training=True)), numpy(plain(x)))


def assert_config_and_keras_file_round_trip(model, x, path, expected_config=None):
    """Config round trip, then `.keras` file round trip at `path`, comparing the logits of `x`.

    Args:
        expected_config: {key: value} that `model.get_config()` must hold (the non-default arguments the model was
            built with, so that the round trip is shown to carry them).

    Returns:
        the model loaded from the file.
    """
    serialization.assert_config_round_trip(model)
    config = model.get_config()
    for key, value in (expected_config or {}).items():
        assert config[key] == value, (key, config[key], value)
    return serialization.assert_keras_file_round_trip(model, x, path)


def assert_saved_model_round_trip(model, path):
    """Exports `model` with an int32 [None, None] signature and checks both TensorFlow loaders reproduce its logits
    on two batch sizes and two lengths (3 tokens, and 9)."""
    vocab = model.vocab_size
    saved_model.assert_saved_model_round_trip(
        model,
        [tokens(vocab, 2, 3, seed=1), tokens(vocab, 5, 9, seed=2)],
        path,
        input_signature=[keras.InputSpec(shape=(None, None), dtype="int32")],
    )


def cyclic_batch(vocab, time, seed=0):
    """Every window of a fixed cycle through the non-pad tokens: inputs and next-token targets."""
    cycle = np.random.default_rng(seed).permutation(np.arange(1, vocab))
    stream = np.tile(cycle, (time // len(cycle) + 3))
    x = np.stack([stream[o : o + time] for o in range(len(cycle))]).astype("int32")
    y = np.stack([stream[o + 1 : o + time + 1] for o in range(len(cycle))]).astype("int32")
    return x, y


def train_on_cycle(model, x, y, steps):
    """Trains `model` (Adam 0.02, seed 0) for `steps` full batches of (x, y), and returns its loss on them."""
    keras.utils.set_random_seed(0)
    model.compile(
        optimizer=keras.optimizers.Adam(0.02), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    # One epoch of `steps` identical full batches: far less per-epoch overhead than `steps` epochs.
    model.fit(np.tile(x, (steps, 1)), np.tile(y, (steps, 1)), batch_size=len(x), shuffle=False, verbose=0)
    return float(model.evaluate(x, y, verbose=0))


def assert_learns_a_deterministic_cycle(make_model, vocab=8, time=12, steps=100):
    """`make_model(vocab_size)`, built under seed 0, learns the cycles of `cyclic_batch(vocab, time)` in `steps`."""
    # Each token of the cycle has one successor: the sequence has zero entropy, so a model that learnt it has a loss
    # near 0, while an untrained one starts near log(vocab). 10% of log(vocab) leaves room for an unfinished run and
    # fails for a model that cannot use its context (that one stays at log(vocab - 1)).
    keras.utils.set_random_seed(0)
    model = make_model(vocab)
    x, y = cyclic_batch(vocab, time)
    assert train_on_cycle(model, x, y, steps) < 0.1 * np.log(vocab)


def assert_carried_state_equals_one_call(model, x, cuts, atol=1e-5):
    """`model(tokens, initial_state=..., mask=..., return_state=True)` carries a state across calls:

    - the windows x[:, a:b] between consecutive `cuts`, each called from the state the previous call returned (the
      first from `initial_state`), give the logits of one call on the whole of x, and the final state of that call;
    - that state equals the one `step` reaches after feeding x token by token;
    - right-padding a window with masked positions (mask False, arbitrary tokens) leaves its returned state, and its
      logits at the real positions, as without the padding.
    """
    batch, time = x.shape
    whole, whole_state = model(x, initial_state=model.initial_state(batch), return_state=True)
    state, pieces = model.initial_state(batch), []
    bounds = [0, *cuts, time]
    for start, end in zip(bounds[:-1], bounds[1:]):
        logits, state = model(x[:, start:end], initial_state=state, return_state=True)
        pieces.append(numpy(logits))
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), numpy(whole), atol=atol)
    for carried, one_call in zip(state, whole_state):
        np.testing.assert_allclose(numpy(carried), numpy(one_call), atol=atol)
    stepped = model.initial_state(batch)
    for t in range(time):
        _, stepped = model.step(x[:, t], stepped)
    for carried, by_steps in zip(state, stepped):
        np.testing.assert_allclose(numpy(carried), numpy(by_steps), atol=atol)
    # A window padded with 3 masked positions of other tokens.
    head = x[:, : bounds[1]]
    padding = (x[:, :3][:, ::-1] + 1) % model.vocab_size
    padded = np.concatenate([head, padding], axis=1)
    mask = np.arange(padded.shape[1])[None, :] < head.shape[1]
    mask = np.broadcast_to(mask, padded.shape)
    plain_logits, plain_state = model(head, initial_state=model.initial_state(batch), return_state=True)
    padded_logits, padded_state = model(
        padded, initial_state=model.initial_state(batch), mask=mask, return_state=True
    )
    np.testing.assert_allclose(numpy(padded_logits)[:, : head.shape[1]], numpy(plain_logits), atol=atol)
    for a, b in zip(padded_state, plain_state):
        np.testing.assert_allclose(numpy(a), numpy(b), atol=atol)


def assert_state_ends_at_each_row_s_last_real_token(model, x, lengths, atol=1e-5):
    """From the state after `x`'s first 2 tokens, a call on the rest of `x` with row b's first lengths[b] positions
    real (the others masked) returns the state that `step` reaches from there after row b's real tokens (a row of
    0 real tokens keeps the state it came with), and the logits of the real positions; both eagerly and compiled
    with XLA (under TensorFlow for any batch size and length, so that the mask and state are symbolic)."""
    batch = x.shape[0]
    head, rest = x[:, :2], x[:, 2:]
    assert len(lengths) == batch and max(lengths) <= rest.shape[1], (lengths, rest.shape)
    mask = np.arange(rest.shape[1])[None, :] < np.asarray(lengths)[:, None]
    _, start = model(head, initial_state=model.initial_state(batch), return_state=True)
    start = tuple(numpy(s) for s in start)
    stepped, states = start, [start]  # states[t]: after t tokens of `rest`
    step_logits = []
    for t in range(rest.shape[1]):
        logits_t, stepped = model.step(rest[:, t], stepped)
        step_logits.append(numpy(logits_t))
        states.append(tuple(numpy(s) for s in stepped))
    expected = [np.stack([states[n][i][b] for b, n in enumerate(lengths)]) for i in range(len(start))]
    step_logits = np.stack(step_logits, axis=1)

    def call(tokens_, mask_, *state):
        return model(tokens_, initial_state=state, mask=mask_, return_state=True)

    specs = [((None, None), "int32"), ((None, None), "bool")]
    specs += [((None, *s.shape[1:]), keras.backend.standardize_dtype(s.dtype)) for s in start]
    compiled = backend.xla_compiled(call, model.variables, input_specs=specs)
    for logits, state in (call(rest, mask, *start), compiled(rest, mask, *start)):
        np.testing.assert_allclose(numpy(logits)[mask], step_logits[mask], atol=atol)
        assert len(state) == len(expected)
        for got, want in zip(state, expected):
            np.testing.assert_allclose(numpy(got), want, atol=atol)
