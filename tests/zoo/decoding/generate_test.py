import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import saved_model
from tests.zoo.decoding.samplers_test import assert_counts_match
from tests.zoo.decoding.samplers_test import numpy_top_k
from tests.zoo.decoding.samplers_test import numpy_top_p
from tests.zoo.decoding.samplers_test import softmax
from zoo.decoding import FILTERED_LOGIT
from zoo.decoding import generate

BOS, EOS, PAD = 1, 3, 0
CHAIN = {1: 2, 2: 5, 5: 7, 7: EOS}  # what a greedy chain model emits after each token


class Bigram:
    """A toy language model: the next token's logits are the row of `table` picked by the token just read.

    Its state is nested and counts the steps, so the loop has a dict and a tuple to thread through.
    """

    def __init__(self, table):
        vocab = table.shape[0]
        self.embedding = keras.layers.Embedding(vocab, vocab)
        self.embedding.build((None,))
        self.embedding.set_weights([np.asarray(table, "float32")])
        self.calls = 0

    def initial_state(self, batch_size):
        return {"steps": keras.ops.zeros((batch_size,), "int32"), "extra": (keras.ops.ones((batch_size, 2)),)}

    def step(self, tokens, state):
        self.calls += 1
        return self.embedding(tokens), {"steps": state["steps"] + 1, "extra": state["extra"]}


class Counter(Bigram):
    """A toy model that ignores its input and emits (steps read + 4) mod vocab: only a correctly threaded state and
    correctly aligned prompts give the expected tokens."""

    def step(self, tokens, state):
        vocab = self.embedding.input_dim
        logits = 8.0 * keras.ops.one_hot((state["steps"] + 4) % vocab, vocab)
        return logits, {"steps": state["steps"] + 1, "extra": state["extra"]}


def chain_table(vocab=10):
    """Greedy follows CHAIN; tokens 4 and 6 repeat themselves forever; every row has a distinct runner-up."""
    rng = np.random.default_rng(0)
    table = rng.uniform(-2.0, 0.0, size=(vocab, vocab)).astype("float32")
    for token in range(vocab):
        table[token, CHAIN.get(token, token)] = 3.0
    return table


def log_softmax(x):
    x = np.asarray(x, "float64")
    return x - x.max(axis=-1, keepdims=True) - np.log(np.exp(x - x.max(axis=-1, keepdims=True)).sum(-1, keepdims=True))


def numpy_greedy(table, prompt, prompt_lengths, max_new_tokens, eos_id, pad_id=PAD):
    """Greedy decoding of a bigram table, one row at a time."""
    tokens = np.full((len(prompt), max_new_tokens), pad_id, "int32")
    log_probs = np.zeros((len(prompt), max_new_tokens), "float64")
    lengths = np.zeros(len(prompt), "int32")
    for row, length in enumerate(prompt_lengths):
        current = prompt[row, length - 1]
        for position in range(max_new_tokens):
            chosen = int(np.argmax(table[current]))
            tokens[row, position] = chosen
            log_probs[row, position] = log_softmax(table[current])[chosen]
            current = chosen
            lengths[row] += 1
            if chosen == eos_id:
                break
    return tokens, log_probs, lengths


def run(model, prompt, prompt_lengths, max_new_tokens, eos_id=EOS, **options):
    prompt = np.asarray(prompt, "int32")
    state = model.initial_state(len(prompt))
    out = generate(model.step, state, prompt, prompt_lengths, max_new_tokens, eos_id, **options)
    return keras.tree.map_structure(keras.ops.convert_to_numpy, out)


def random_prompts(rng, batch, width, vocab):
    """Random right-padded prompts starting with <bos>, of every length from 1 to `width` in turn."""
    lengths = (np.arange(batch) % width + 1).astype("int32")
    prompt = rng.integers(0, vocab, size=(batch, width)).astype("int32")
    prompt[:, 0] = BOS
    prompt[np.arange(width)[None, :] >= lengths[:, None]] = PAD
    return prompt, lengths


def test_greedy_follows_the_chain():
    table = chain_table()
    out = run(Bigram(table), [[BOS]], [1], 6)
    np.testing.assert_array_equal(out["tokens"], [[2, 5, 7, EOS, PAD, PAD]])
    np.testing.assert_array_equal(out["lengths"], [4])
    expected = [log_softmax(table[a])[b] for a, b in [(1, 2), (2, 5), (5, 7), (7, EOS)]] + [0.0, 0.0]
    np.testing.assert_allclose(out["log_probs"], [expected], atol=1e-5)
    assert out["tokens"].dtype == np.int32 and out["log_probs"].dtype == np.float32 and out["lengths"].dtype == np.int32


def test_rows_are_forced_through_their_prompts_and_finish_independently():
    prompt = [
        [BOS, 9, 9, 9],  # bos only (9 is padding here): the whole chain
        [BOS, 2, 5, 9],  # joins the chain at 5
        [BOS, 7, 2, 9],  # forced through 7, which greedy would not pick after bos, then back to 2
        [BOS, 4, 9, 9],  # 4 repeats forever: stops at max_new_tokens
        [BOS, 6, 2, 7],  # full width; emits eos at once
    ]
    out = run(Bigram(chain_table()), prompt, [1, 3, 3, 2, 4], 5, pad_id=9)
    np.testing.assert_array_equal(
        out["tokens"],
        [
            [2, 5, 7, EOS, 9],
            [7, EOS, 9, 9, 9],
            [5, 7, EOS, 9, 9],
            [4, 4, 4, 4, 4],
            [EOS, 9, 9, 9, 9],
        ],
    )
    np.testing.assert_array_equal(out["lengths"], [4, 2, 3, 5, 1])
    assert (out["log_probs"][out["tokens"] == 9] == 0.0).all()
    assert (out["log_probs"][out["tokens"] != 9] < 0.0).all()


def test_state_is_threaded_and_prompts_aligned():
    # The Counter emits (t + 4) mod vocab at loop step t, and a row's j-th new token comes at step length - 1 + j.
    prompt, lengths = random_prompts(np.random.default_rng(1), 6, 5, 16)
    out = run(Counter(np.zeros((16, 16))), prompt, lengths, 4)
    expected = (lengths[:, None] - 1 + np.arange(4)[None, :] + 4) % 16
    assert not (expected == EOS).any()
    np.testing.assert_array_equal(out["tokens"], expected)
    np.testing.assert_array_equal(out["lengths"], [4] * 6)


def greedy_case(seed=2, batch=12, width=5, vocab=13, max_new_tokens=7):
    rng = np.random.default_rng(seed)
    table = (2.0 * rng.normal(size=(vocab, vocab))).astype("float32")
    table[4, EOS] = table[6, 6] = 6.0  # 4 leads to eos, 6 repeats itself
    prompt, lengths = random_prompts(rng, batch, width, vocab)
    expected = numpy_greedy(table, prompt, lengths, max_new_tokens, EOS)
    # The case must exercise both ways of finishing.
    assert (expected[2] < max_new_tokens).any() and (expected[2] == max_new_tokens).any()
    return table, prompt, lengths, max_new_tokens, expected


def assert_matches(out, expected):
    tokens, log_probs, lengths = expected
    np.testing.assert_array_equal(np.asarray(out["tokens"]), tokens)
    np.testing.assert_allclose(np.asarray(out["log_probs"]), log_probs, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(out["lengths"]), lengths)


def traced(model, max_new_tokens, jit_compile=False, **options):
    """`generate` as a tf.function over prompts of unknown batch size and width."""

    @tf.function(
        jit_compile=jit_compile,
        input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32)],
    )
    def decode(prompt, prompt_lengths):
        state = model.initial_state(tf.shape(prompt)[0])
        return generate(model.step, state, prompt, prompt_lengths, max_new_tokens, EOS, **options)

    return decode


def test_greedy_matches_numpy_eagerly_in_a_graph_and_under_xla():
    table, prompt, lengths, max_new_tokens, expected = greedy_case()
    model = Bigram(table)
    assert_matches(run(model, prompt, lengths, max_new_tokens), expected)
    for jit_compile in (False, True):
        decode = traced(model, max_new_tokens, jit_compile=jit_compile)
        assert_matches(decode(prompt, lengths), expected)
        # another batch size and prompt width through the same trace
        table_2, prompt_2, lengths_2, _, expected_2 = greedy_case(seed=3, batch=7, width=6, vocab=13)
        model.embedding.set_weights([table_2])
        assert_matches(decode(prompt_2, lengths_2), expected_2)
        model.embedding.set_weights([table])


def test_loop_stops_once_every_row_has_finished():
    model = Bigram(chain_table())
    out = run(model, [[BOS, 0, 0], [BOS, 2, 5]], [1, 3], 50)
    np.testing.assert_array_equal(out["lengths"], [4, 2])
    assert model.calls == 4  # not P - 1 + max_new_tokens = 52: both rows end at loop step 3


SAMPLE_ROW = np.array([1.0, 0.5, 2.0, -1.0, 0.0, 1.5, -3.0, 0.2, 0.7, -0.5], "float32")
SAMPLING_OPTIONS = [
    {"temperature": 1.0},
    {"temperature": 0.5},
    {"top_k": 3},
    {"top_p": 0.8},
    {"temperature": 1.7, "top_k": 6, "top_p": 0.7},
]


def expected_distribution(temperature=1.0, top_k=0, top_p=1.0):
    logits = SAMPLE_ROW[None, :] / np.float32(temperature)
    if top_k:
        logits = numpy_top_k(logits, top_k)
    if top_p < 1.0:
        logits = numpy_top_p(logits, top_p)
    return softmax(logits[0])


@pytest.mark.parametrize("options", SAMPLING_OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_sampling_follows_the_filtered_model_distribution(options):
    rows = 4000
    table = np.zeros((10, 10), "float32")
    table[BOS] = SAMPLE_ROW
    out = run(Bigram(table), np.full((rows, 1), BOS), np.ones(rows, "int32"), 1, method="sample", seed=5, **options)
    tokens = out["tokens"][:, 0]
    probabilities = expected_distribution(**options)
    assert_counts_match(tokens, probabilities)  # and never a token outside the top k or the nucleus
    # log_probs are under the model's own distribution, whatever the filtering.
    np.testing.assert_allclose(out["log_probs"][:, 0], log_softmax(SAMPLE_ROW)[tokens], atol=1e-5)


def test_each_step_draws_fresh_numbers():
    # Uniform logits and no eos: the two tokens of a row must be independent and uniform over the 16 pairs.
    rows, vocab = 4000, 4
    model = Bigram(np.zeros((vocab, vocab)))
    out = run(model, np.full((rows, 1), BOS), np.ones(rows, "int32"), 2, eos_id=vocab, method="sample")
    pairs = np.bincount(out["tokens"][:, 0] * vocab + out["tokens"][:, 1], minlength=vocab**2)
    expected = rows / vocab**2
    dof = vocab**2 - 1
    assert ((pairs - expected) ** 2 / expected).sum() < dof + 5 * np.sqrt(2 * dof)  # mean + 5 sd of chi-square


def sampled(seed, **options):
    rng = np.random.default_rng(4)
    table = rng.normal(size=(12, 12)).astype("float32")
    prompt, lengths = random_prompts(rng, 64, 3, 12)
    options = {"method": "sample", "top_k": 8, "top_p": 0.95, **options}
    return run(Bigram(table), prompt, lengths, 6, seed=seed, **options)["tokens"]


def test_seeds():
    first = sampled(7)
    np.testing.assert_array_equal(sampled(7), first)
    np.testing.assert_array_equal(sampled(tf.constant(7)), first)
    np.testing.assert_array_equal(sampled(tf.constant(7, tf.int64)), first)
    assert (sampled(8) != first).mean() > 0.3


def test_tensor_arguments_match_python_values():
    python = sampled(3, temperature=0.7, top_k=5, top_p=0.9)
    tensors = sampled(
        tf.constant(3), temperature=tf.constant(0.7), top_k=tf.constant(5), top_p=tf.constant(0.9)
    )
    np.testing.assert_array_equal(tensors, python)
    off = sampled(3, top_k=tf.constant(0), top_p=tf.constant(1.0))  # 0 and 1.0 switch the filters off
    np.testing.assert_array_equal(off, sampled(3, top_k=0, top_p=1.0))


def test_per_row_seeds_and_options_make_each_row_independent_of_the_batch():
    # A server that batches requests merges rows from several callers: with one seed (and temperature, top_k, top_p)
    # per row, each row must get exactly the tokens it gets alone, wherever it sits in the batch.
    rng = np.random.default_rng(5)
    table = rng.normal(size=(12, 12)).astype("float32")
    prompt, lengths = random_prompts(rng, 6, 3, 12)
    seeds = np.array([5, 9, 5, 11, 9, 2], "int64")
    temperature = np.array([1.0, 0.7, 1.0, 1.3, 0.7, 1.0], "float32")
    top_k = np.array([0, 5, 0, 3, 5, 8], "int32")
    top_p = np.array([1.0, 0.9, 1.0, 0.8, 0.9, 0.95], "float32")
    options = {"method": "sample", "temperature": tf.constant(temperature), "top_k": tf.constant(top_k),
               "top_p": tf.constant(top_p), "seed": tf.constant(seeds)}
    batch = run(Bigram(table), prompt, lengths, 8, **options)
    for row in range(len(prompt)):
        alone = run(Bigram(table), prompt[row : row + 1], lengths[row : row + 1], 8, method="sample",
                    temperature=tf.constant(temperature[row : row + 1]), top_k=tf.constant(top_k[row : row + 1]),
                    top_p=tf.constant(top_p[row : row + 1]), seed=tf.constant(seeds[row : row + 1]))
        np.testing.assert_array_equal(batch["tokens"][row], alone["tokens"][0])
        np.testing.assert_allclose(batch["log_probs"][row], alone["log_probs"][0], atol=1e-6)
    reversed_rows = run(Bigram(table), prompt[::-1], lengths[::-1], 8, method="sample",
                        **{k: tf.constant(np.asarray(v)[::-1]) for k, v in
                           (("temperature", temperature), ("top_k", top_k), ("top_p", top_p), ("seed", seeds))})
    np.testing.assert_array_equal(reversed_rows["tokens"], batch["tokens"][::-1])
    # Rows with the same prompt, seed and options draw the same tokens; another seed draws others.
    same = np.tile(prompt[:1], (40, 1)), np.tile(lengths[:1], 40)
    drawn = run(Bigram(table), *same, 8, method="sample", seed=tf.constant(np.repeat([4, 4, 6, 7], 10)))["tokens"]
    np.testing.assert_array_equal(drawn[0], drawn[19])
    assert any((drawn[0] != drawn[row]).any() for row in range(20, 40))


def test_sampling_is_the_same_eagerly_in_a_graph_and_under_xla():
    table, prompt, lengths, max_new_tokens, _ = greedy_case()
    model = Bigram(table)
    options = {"method": "sample", "temperature": 0.8, "top_k": 6, "top_p": 0.9, "seed": 12}
    eager = run(model, prompt, lengths, max_new_tokens, **options)
    for jit_compile in (False, True):
        out = traced(model, max_new_tokens, jit_compile=jit_compile, **options)(prompt, lengths)
        np.testing.assert_array_equal(out["tokens"].numpy(), eager["tokens"])
        np.testing.assert_allclose(out["log_probs"].numpy(), eager["log_probs"], atol=1e-5)
        np.testing.assert_array_equal(out["lengths"].numpy(), eager["lengths"])


class Decoder(tf.Module):
    """What an export holds: the model's layer, its raw variables (for the TF1 loader) and two signatures."""

    def __init__(self, model, max_new_tokens):
        super().__init__()
        self.model = model
        self.embedding = model.embedding
        self.raw_variables = [variable.value for variable in model.embedding.variables]
        self.max_new_tokens = max_new_tokens

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.int32, name="prompt"),
            tf.TensorSpec([None], tf.int32, name="prompt_lengths"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int32, name="top_k"),
            tf.TensorSpec([], tf.float32, name="top_p"),
            tf.TensorSpec([], tf.int64, name="seed"),
        ]
    )
    def sample(self, prompt, prompt_lengths, temperature, top_k, top_p, seed):
        state = self.model.initial_state(tf.shape(prompt)[0])
        options = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}
        return generate(
            self.model.step, state, prompt, prompt_lengths, self.max_new_tokens, EOS, method="sample", **options
        )

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.int32, name="prompt"),
            tf.TensorSpec([None], tf.int32, name="prompt_lengths"),
        ]
    )
    def greedy(self, prompt, prompt_lengths):
        state = self.model.initial_state(tf.shape(prompt)[0])
        return generate(self.model.step, state, prompt, prompt_lengths, self.max_new_tokens, EOS)


def test_saved_model_round_trip(tmp_path):
    table, prompt, lengths, max_new_tokens, expected = greedy_case()
    model = Bigram(table)
    path = str(tmp_path / "decoder")
    decoder = Decoder(model, max_new_tokens)
    tf.saved_model.save(decoder, path, signatures={"serving_default": decoder.sample, "greedy": decoder.greedy})
    reloaded = tf.saved_model.load(path)
    settings = {"temperature": 0.9, "top_k": 5, "top_p": 0.8, "seed": 21}
    cases = [(prompt, lengths, expected), (prompt[:3, :2], np.minimum(lengths[:3], 2), None)]
    for case_prompt, case_lengths, case_expected in cases:
        greedy = run(model, case_prompt, case_lengths, max_new_tokens)
        if case_expected is not None:
            assert_matches(greedy, case_expected)
        reloaded_greedy = reloaded.greedy(case_prompt, case_lengths)
        assert_matches(reloaded_greedy, (greedy["tokens"], greedy["log_probs"], greedy["lengths"]))
        drawn = run(model, case_prompt, case_lengths, max_new_tokens, method="sample", **settings)
        inputs = {
            "prompt": case_prompt,
            "prompt_lengths": case_lengths,
            "temperature": np.float32(settings["temperature"]),
            "top_k": np.int32(settings["top_k"]),
            "top_p": np.float32(settings["top_p"]),
            "seed": np.int64(settings["seed"]),
        }
        for out in (reloaded.signatures["serving_default"](**inputs), saved_model.load_with_session(path, inputs)):
            np.testing.assert_array_equal(np.asarray(out["tokens"]), drawn["tokens"])
            np.testing.assert_allclose(np.asarray(out["log_probs"]), drawn["log_probs"], atol=1e-5)
            np.testing.assert_array_equal(np.asarray(out["lengths"]), drawn["lengths"])
        other_seed = reloaded.signatures["serving_default"](**{**inputs, "seed": np.int64(22)})
        assert (other_seed["tokens"].numpy() != drawn["tokens"]).any()


class Recorder(Bigram):
    """The bigram model, whose state also records every token it reads (`read` [batch, 32], in order) and how many
    (`count`): the state after a text tells exactly which tokens were read, pads included."""

    def initial_state(self, batch_size):
        return {"read": keras.ops.full((batch_size, 32), -1, "int32"), "count": keras.ops.zeros((batch_size,), "int32")}

    def step(self, tokens, state):
        logits, _ = super().step(tokens, {"steps": state["count"], "extra": ()})
        here = keras.ops.equal(keras.ops.arange(32, dtype="int32")[None, :], state["count"][:, None])
        read = keras.ops.where(here, keras.ops.cast(tokens, "int32")[:, None], state["read"])
        return logits, {"read": read, "count": state["count"] + 1}


def recorded(state):
    """The tokens a Recorder's state has read, one list per row."""
    read, count = (keras.ops.convert_to_numpy(state[key]) for key in ("read", "count"))
    assert ((read >= 0) == (np.arange(32)[None, :] < count[:, None])).all()
    return [row[:n].tolist() for row, n in zip(read, count)]


def test_the_returned_state_is_the_state_after_the_prompt_and_every_generated_token():
    # Rows that end with eos at different steps (the pads fed to finished rows must not reach the state) and rows
    # cut by max_new_tokens (their last token is read too), eagerly, in a graph and under XLA.
    table, prompt, lengths, max_new_tokens, (tokens, log_probs, generated) = greedy_case()
    expected = [prompt[row, :n].tolist() + tokens[row, :g].tolist()
                for row, (n, g) in enumerate(zip(lengths, generated))]
    assert any(row[-1] == EOS for row in expected) and any(row[-1] != EOS for row in expected)
    eager = run(Recorder(table), prompt, lengths, max_new_tokens, return_state=True)
    assert_matches(eager, (tokens, log_probs, generated))
    assert recorded(eager["state"]) == expected
    for jit_compile in (False, True):
        out = traced(Recorder(table), max_new_tokens, jit_compile=jit_compile, return_state=True)(prompt, lengths)
        assert recorded(out["state"]) == expected
    # The same tokens as without it; and an empty batch.
    assert_matches(run(Recorder(table), prompt, lengths, max_new_tokens), (tokens, log_probs, generated))
    assert "state" not in run(Recorder(table), prompt, lengths, max_new_tokens)
    empty = run(Recorder(table), np.zeros((0, 3), "int32"), np.zeros(0, "int32"), 4, return_state=True)
    assert empty["state"]["read"].shape == (0, 32) and empty["tokens"].shape == (0, 4)


def test_going_on_from_a_returned_state_equals_decoding_the_whole_text_at_once():
    # A Counter's tokens depend only on how many tokens its state has read: text decoded in two calls, the second
    # from the first's state, is text decoded in one.
    model = Counter(np.zeros((16, 16)))
    first = run(model, [[BOS, 5, 6]], [3], 4, return_state=True)
    second = generate(model.step, first["state"], np.array([[9, 10]], "int32"), [2], 4, EOS, return_state=True)
    whole = run(model, [[BOS, 5, 6] + first["tokens"][0].tolist() + [9, 10]], [9], 4, return_state=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(second["tokens"]), whole["tokens"])
    assert int(second["state"]["steps"][0]) == int(whole["state"]["steps"][0]) == 3 + 4 + 2 + 4


UNK = 2
SPECIALS = (PAD, BOS, UNK)


def specials_table(vocab=10, seed=6):
    """A bigram model that puts almost all its mass (> 99.9%) on <pad>, <bos> and <unk> after every token."""
    table = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(vocab, vocab)).astype("float32")
    table[:, list(SPECIALS)] = 12.0 + np.arange(3, dtype="float32")  # <unk> first, then <bos>, then <pad>
    assert (softmax(table)[:, list(SPECIALS)].sum(axis=-1) > 0.999).all()
    return table


def test_greedy_never_emits_a_banned_token_even_when_it_holds_most_of_the_mass():
    table = specials_table()
    prompt, lengths = random_prompts(np.random.default_rng(7), 8, 3, 10)
    out = run(Bigram(table), prompt, lengths, 6, banned_ids=SPECIALS)
    allowed = table.copy()
    allowed[:, list(SPECIALS)] = -np.inf
    expected = numpy_greedy(allowed, prompt, lengths, 6, EOS)
    np.testing.assert_array_equal(out["tokens"], expected[0])
    np.testing.assert_array_equal(out["lengths"], expected[2])
    # log_probs stay those of the model's own distribution, where the banned tokens hold the mass.
    rows, columns = np.nonzero(np.arange(6)[None, :] < out["lengths"][:, None])
    previous = np.where(columns == 0, prompt[rows, lengths[rows] - 1], out["tokens"][rows, np.maximum(columns - 1, 0)])
    np.testing.assert_allclose(out["log_probs"][rows, columns], log_softmax(table[previous])[
        np.arange(len(rows)), out["tokens"][rows, columns]], atol=1e-4)
    assert (out["log_probs"][rows, columns] < -9.0).all()
    # Allowing <unk> (banning only <pad> and <bos>): greedy writes <unk>, the best token left.
    with_unk = run(Bigram(table), prompt, lengths, 6, banned_ids=(PAD, BOS))
    np.testing.assert_array_equal(with_unk["tokens"], np.full((8, 6), UNK))
    # Without a ban the same model writes <unk>, its favourite; banning <unk> alone, it writes <bos>.
    assert (run(Bigram(table), prompt, lengths, 6)["tokens"] == UNK).all()
    assert (run(Bigram(table), prompt, lengths, 6, banned_ids=[UNK])["tokens"] == BOS).all()


@pytest.mark.parametrize("options", [{"temperature": 1.0}, {"temperature": 1e12}, {"top_k": 2}, {"top_p": 0.5}],
                         ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_sampling_never_draws_a_banned_token_and_follows_the_rest_of_the_distribution(options):
    rows = 4000
    table = specials_table()
    out = run(Bigram(table), np.full((rows, 1), BOS), np.ones(rows, "int32"), 3, method="sample", seed=9,
              banned_ids=SPECIALS, **options)
    written = out["tokens"][np.arange(3)[None, :] < out["lengths"][:, None]]
    assert not np.isin(written, SPECIALS).any()
    # The first token is drawn from the model's distribution over the tokens that are not banned, then filtered. A
    # huge temperature makes that uniform, but does not lift the banned tokens among the others.
    logits = table[BOS][None, :] / np.float32(options.get("temperature", 1.0))
    logits[:, list(SPECIALS)] = FILTERED_LOGIT
    if "top_k" in options:
        logits = numpy_top_k(logits, options["top_k"])
    if "top_p" in options:
        logits = numpy_top_p(logits, options["top_p"])
    assert_counts_match(out["tokens"][:, 0], softmax(logits[0]))


def test_banned_tokens_under_xla_and_with_tensor_options():
    table = specials_table()
    prompt, lengths = random_prompts(np.random.default_rng(8), 6, 3, 10)
    for options in ({}, {"method": "sample", "temperature": tf.constant(0.5), "seed": tf.constant(3)}):
        eager = run(Bigram(table), prompt, lengths, 5, banned_ids=SPECIALS, **options)
        assert not np.isin(eager["tokens"][np.arange(5)[None, :] < eager["lengths"][:, None]], SPECIALS).any()
        out = traced(Bigram(table), 5, jit_compile=True, banned_ids=SPECIALS, **options)(prompt, lengths)
        np.testing.assert_array_equal(out["tokens"].numpy(), eager["tokens"])


def test_bad_arguments():
    model = Bigram(chain_table())
    cases = [
        ({"max_new_tokens": 0}, r"^max_new_tokens must be a positive int, got 0$"),
        ({"eos_id": -1}, r"^eos_id must be a non-negative int, got -1$"),
        ({"pad_id": 1.5}, r"^pad_id must be a non-negative int, got 1.5$"),
        ({"method": "beam"}, r"^method must be one of 'greedy', 'sample', got 'beam'$"),
        ({"temperature": 0.0}, r"^temperature must be a float > 0, got 0.0$"),
        ({"top_k": -1}, r"^top_k must be a non-negative int \(0 = off\), got -1$"),
        ({"top_p": 1.5}, r"^top_p must be in \(0, 1\], got 1.5$"),
        ({"top_p": 0.0}, r"^top_p must be in \(0, 1\], got 0.0$"),
        ({"seed": "x"}, r"^seed must be an int or an int tensor, got 'x'$"),
        ({"banned_ids": 0}, r"^banned_ids must be a list or tuple of token ids \(non-negative ints\), got 0$"),
        ({"banned_ids": (0, -1)}, r"^banned_ids must hold non-negative int token ids, got -1 in \(0, -1\)$"),
        ({"return_state": 1}, r"^return_state must be True or False, got 1$"),
    ]
    for override, message in cases:
        arguments = {"max_new_tokens": 3, "eos_id": EOS, **override}
        with pytest.raises(ValueError, match=message):
            generate(model.step, model.initial_state(1), [[BOS]], [1], **arguments)
