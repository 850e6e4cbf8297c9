import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.decoding import samplers
from zoo.decoding.samplers import FILTERED_LOGIT

BATCH, VOCAB = 16, 11


def random_logits(seed=0, batch=BATCH, vocab=VOCAB):
    return (3.0 * np.random.default_rng(seed).normal(size=(batch, vocab))).astype("float32")


def tied_logits(seed=0, batch=BATCH, vocab=VOCAB):
    """Integer-valued logits from a small range: every row has many ties, and often ties at the k-th place."""
    return np.random.default_rng(seed).integers(-2, 3, size=(batch, vocab)).astype("float32")


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def softmax(x):
    x = np.asarray(x, "float64")
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def descending_order(logits):
    """Token ids of each row from best to worst, a tie going to the lower id."""
    return np.argsort(-logits, axis=-1, kind="stable")


def keep_first(logits, order, counts):
    keep = np.zeros(logits.shape, bool)
    for row, n in enumerate(counts):
        keep[row, order[row, :n]] = True
    return np.where(keep, logits, np.float32(FILTERED_LOGIT))


def numpy_top_k(logits, k):
    counts = np.broadcast_to(k, logits.shape[:1])
    counts = np.where((counts <= 0) | (counts > logits.shape[1]), logits.shape[1], counts)
    return keep_first(logits, descending_order(logits), counts)


def numpy_top_p(logits, p):
    order = descending_order(logits)
    probabilities = softmax(np.take_along_axis(logits, order, axis=-1))
    mass_before = np.cumsum(probabilities, axis=-1) - probabilities
    p = np.broadcast_to(p, logits.shape[:1])
    counts = np.where(p >= 1.0, logits.shape[1], (mass_before < p[:, None]).sum(axis=-1))
    return keep_first(logits, order, counts)


def assert_counts_match(tokens, probabilities, sigmas=5.0):
    """Empirical token counts agree with `probabilities` within `sigmas` binomial standard errors, token by token;
    a token of probability 0 is never drawn."""
    n = len(tokens)
    counts = np.bincount(tokens, minlength=len(probabilities))
    expected = n * probabilities
    tolerance = sigmas * np.sqrt(n * probabilities * (1.0 - probabilities))
    np.testing.assert_array_less(np.abs(counts - expected), tolerance + 1e-9)


def test_greedy_is_argmax_with_ties_to_the_lowest_id():
    for logits in (random_logits(), tied_logits()):
        tokens = numpy(samplers.greedy(logits))
        assert tokens.dtype == np.int32
        np.testing.assert_array_equal(tokens, np.argmax(logits, axis=-1))  # NumPy's argmax takes the first maximum
    np.testing.assert_array_equal(numpy(samplers.greedy(np.zeros((2, 5), "float32"))), [0, 0])


def test_temperature_divides_the_logits():
    logits = random_logits()
    np.testing.assert_allclose(numpy(samplers.apply_temperature(logits, 0.5)), logits / 0.5, atol=1e-5)
    np.testing.assert_allclose(numpy(samplers.apply_temperature(logits, tf.constant(4.0))), logits / 4.0, atol=1e-5)


def test_ban_tokens_sets_exactly_the_banned_logits_and_works_on_any_leading_shape():
    logits = random_logits()
    banned = numpy(samplers.ban_tokens(logits, [4, 0, 9]))
    expected = logits.copy()
    expected[:, [0, 4, 9]] = FILTERED_LOGIT
    np.testing.assert_array_equal(banned, expected)
    np.testing.assert_array_equal(numpy(samplers.ban_tokens(logits, ())), logits)
    np.testing.assert_array_equal(numpy(samplers.ban_tokens(logits, (4, 4))), numpy(samplers.ban_tokens(logits, [4])))
    # Beam search scores [batch, beam, vocab]; the same ids are banned in every row of every beam.
    beams = logits.reshape(4, 4, VOCAB)
    np.testing.assert_array_equal(numpy(samplers.ban_tokens(beams, (0, 4, 9))), expected.reshape(4, 4, VOCAB))
    # The banned tokens can hold nearly all the mass: greedy then picks the best other token, and no draw finds them.
    heavy = logits.copy()
    heavy[:, [0, 4, 9]] = 50.0
    kept = numpy(samplers.ban_tokens(heavy, (0, 4, 9)))
    np.testing.assert_array_equal(numpy(samplers.greedy(kept)), np.argmax(expected, axis=-1))
    for seed in range(3):
        assert not np.isin(numpy(samplers.sample(np.tile(kept, (100, 1)), seed)), [0, 4, 9]).any()
    for filtered in (samplers.top_k_filter(kept, VOCAB - 1), samplers.top_p_filter(kept, 0.99)):
        assert (numpy(filtered)[:, [0, 4, 9]] == FILTERED_LOGIT).all()


def test_ban_tokens_under_xla_with_an_unknown_vocabulary_size():
    logits = random_logits(4)

    @tf.function(jit_compile=True, input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def compiled(logits):
        return samplers.ban_tokens(logits, (1, 2))

    expected = logits.copy()
    expected[:, [1, 2]] = FILTERED_LOGIT
    np.testing.assert_array_equal(compiled(logits).numpy(), expected)


def test_ban_tokens_bad_arguments():
    logits = random_logits()
    cases = [
        (3, r"^token_ids must be a list or tuple of token ids \(non-negative ints\), got 3$"),
        ("ab", r"^token_ids must be a list or tuple of token ids \(non-negative ints\), got 'ab'$"),
        ([1, -2], r"^token_ids must hold non-negative int token ids, got -2 in \[1, -2\]$"),
        ([True], r"^token_ids must hold non-negative int token ids, got True in \[True\]$"),
        ([VOCAB], rf"^token_ids must be ids in \[0, vocab={VOCAB}\), got {VOCAB}$"),
        (list(range(VOCAB)), rf"^token_ids would ban every token of the vocabulary \({VOCAB}\); at least one must"),
    ]
    for token_ids, message in cases:
        with pytest.raises(ValueError, match=message):
            samplers.ban_tokens(logits, token_ids)


@pytest.mark.parametrize("k", [1, 3, 7, VOCAB - 1])
@pytest.mark.parametrize("make_logits", [random_logits, tied_logits])
def test_top_k_matches_numpy(make_logits, k):
    logits = make_logits()
    expected = numpy_top_k(logits, k)
    np.testing.assert_array_equal(numpy(samplers.top_k_filter(logits, k)), expected)
    np.testing.assert_array_equal(numpy(samplers.top_k_filter(logits, tf.constant(k))), expected)
    assert ((expected > FILTERED_LOGIT).sum(axis=-1) == k).all()  # exactly k survive, ties or not


def test_top_k_edge_cases():
    logits = tied_logits()
    for k in (VOCAB, VOCAB + 4):
        np.testing.assert_array_equal(numpy(samplers.top_k_filter(logits, k)), logits)
    for k in (0, -1, VOCAB + 4):  # a tensor k <= 0 means "off"
        np.testing.assert_array_equal(numpy(samplers.top_k_filter(logits, tf.constant(k))), logits)
    one = numpy(samplers.top_k_filter(logits, 1))
    np.testing.assert_array_equal(np.argmax(one, axis=-1), np.argmax(logits, axis=-1))
    per_row = np.arange(BATCH, dtype="int32") % (VOCAB + 2)  # includes 0 and k > vocab
    np.testing.assert_array_equal(
        numpy(samplers.top_k_filter(logits, tf.constant(per_row))), numpy_top_k(logits, per_row)
    )


@pytest.mark.parametrize("p", [0.05, 0.3, 0.6, 0.9, 0.99])
@pytest.mark.parametrize("make_logits", [random_logits, tied_logits])
def test_top_p_matches_numpy(make_logits, p):
    logits = make_logits()
    expected = numpy_top_p(logits, p)
    np.testing.assert_array_equal(numpy(samplers.top_p_filter(logits, p)), expected)
    np.testing.assert_array_equal(numpy(samplers.top_p_filter(logits, tf.constant(p))), expected)
    kept = np.where(expected > FILTERED_LOGIT, softmax(logits), 0.0)
    assert (kept.sum(axis=-1) >= p - 1e-6).all()


def test_top_p_edge_cases():
    logits = tied_logits(1)
    np.testing.assert_array_equal(numpy(samplers.top_p_filter(logits, 1.0)), logits)
    np.testing.assert_array_equal(numpy(samplers.top_p_filter(logits, tf.constant(1.0))), logits)
    # A tiny p keeps only the top token, the lowest id among tied maxima.
    np.testing.assert_array_equal(numpy(samplers.top_p_filter(logits, 1e-9)), numpy_top_k(logits, 1))
    # A token far below the others has probability 0 in float32; p = 1 still keeps it, p just below 1 does not.
    far = np.array([[0.0, 1.0, -200.0]], "float32")
    np.testing.assert_array_equal(numpy(samplers.top_p_filter(far, 1.0)), far)
    np.testing.assert_array_equal(numpy(samplers.top_p_filter(far, 0.999999)), [[0.0, 1.0, FILTERED_LOGIT]])
    per_row = np.linspace(0.01, 1.0, BATCH).astype("float32")
    np.testing.assert_array_equal(
        numpy(samplers.top_p_filter(logits, tf.constant(per_row))), numpy_top_p(logits, per_row)
    )


def test_filters_under_xla_with_unknown_shapes():
    logits = tied_logits(2)

    @tf.function(
        jit_compile=True,
        input_signature=[
            tf.TensorSpec([None, None], tf.float32),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.float32),
            tf.TensorSpec([2], tf.int32),
        ],
    )
    def compiled(logits, k, p, seed):
        return (
            samplers.greedy(logits),
            samplers.top_k_filter(logits, k),
            samplers.top_p_filter(logits, p),
            samplers.sample(logits, seed),
        )

    greedy, top_k, top_p, drawn = compiled(logits, 4, 0.7, [5, 2])
    np.testing.assert_array_equal(greedy.numpy(), np.argmax(logits, axis=-1))
    np.testing.assert_array_equal(top_k.numpy(), numpy_top_k(logits, 4))
    np.testing.assert_array_equal(top_p.numpy(), numpy_top_p(logits, 0.7))
    np.testing.assert_array_equal(drawn.numpy(), numpy(samplers.sample(logits, tf.constant([5, 2]))))


def test_uniform_is_uniform_and_inside_the_open_interval():
    u = numpy(samplers.uniform(tf.constant([7, 0]), (1000, 100)))
    assert u.dtype == np.float32 and u.shape == (1000, 100)
    assert 0.0 < u.min() and u.max() < 1.0
    values = np.sort(u.ravel().astype("float64"))
    n = values.size
    # Kolmogorov-Smirnov distance to U(0, 1); the bound is the test's critical value at a 1e-6 false-alarm rate.
    distance = np.max(np.maximum(np.arange(1, n + 1) / n - values, values - np.arange(n) / n))
    assert distance < np.sqrt(-np.log(0.5e-6) / (2 * n))


def chi_square_of_pairs(a, b, bins=10):
    """Chi-square statistic of the 2-D histogram of (a, b) against independent uniforms (bins^2 - 1 dof)."""
    counts, _, _ = np.histogram2d(a, b, bins=bins, range=[[0, 1], [0, 1]])
    expected = a.size / bins**2
    return ((counts - expected) ** 2 / expected).sum()


def test_uniform_neighbours_are_independent():
    dof = 10**2 - 1
    bound = dof + 5 * np.sqrt(2 * dof)  # mean + 5 standard deviations of chi-square(dof)
    step_0 = numpy(samplers.uniform(tf.constant([3, 0]), (500, 40)))
    step_1 = numpy(samplers.uniform(tf.constant([3, 1]), (500, 40)))
    other_seed = numpy(samplers.uniform(4, (500, 40)))
    pairs = {
        "neighbouring tokens": (step_0[:, :-1], step_0[:, 1:]),
        "neighbouring rows": (step_0[:-1], step_0[1:]),
        "neighbouring steps": (step_0, step_1),
        "neighbouring seeds": (numpy(samplers.uniform(3, (500, 40))), other_seed),
    }
    for name, (a, b) in pairs.items():
        assert chi_square_of_pairs(a.ravel(), b.ravel()) < bound, name


@pytest.mark.parametrize(
    "filtering",
    [
        lambda x: x,
        lambda x: samplers.apply_temperature(x, 0.5),
        lambda x: samplers.top_k_filter(x, 3),
        lambda x: samplers.top_p_filter(x, 0.8),
        lambda x: samplers.top_p_filter(samplers.top_k_filter(samplers.apply_temperature(x, 2.0), 4), 0.6),
    ],
    ids=["plain", "temperature", "top_k", "top_p", "all"],
)
def test_sample_follows_the_filtered_softmax(filtering):
    rows = 4000
    row = np.array([1.0, 0.5, 2.0, -1.0, 0.0, 1.5, -3.0, 0.2], "float32")
    logits = numpy(filtering(np.tile(row, (rows, 1))))
    tokens = numpy(samplers.sample(logits, 11))
    assert tokens.dtype == np.int32
    assert_counts_match(tokens, softmax(logits[0]))


def test_sample_never_draws_a_filtered_token():
    logits = random_logits(3, batch=2000, vocab=30)
    for filtered in (numpy_top_k(logits, 2), numpy_top_p(logits, 0.5)):
        for seed in range(3):
            tokens = numpy(samplers.sample(filtered, seed))
            assert (np.take_along_axis(filtered, tokens[:, None], axis=-1) > FILTERED_LOGIT).all()


def test_sample_is_deterministic_given_the_seed():
    logits = np.zeros((500, 20), "float32")
    first = numpy(samplers.sample(logits, 1))
    np.testing.assert_array_equal(numpy(samplers.sample(logits, 1)), first)
    np.testing.assert_array_equal(numpy(samplers.sample(logits, tf.constant(1))), first)
    np.testing.assert_array_equal(numpy(samplers.sample(logits, 1 + 2**32)), first)  # seeds are taken mod 2^32
    assert len(np.unique(first)) == 20  # rows draw different tokens
    for other in (2, tf.constant([1, 0]), tf.constant([1, 1])):
        assert (numpy(samplers.sample(logits, other)) != first).mean() > 0.8  # 1 - 1/20 on average


def test_inverse_cdf_sample_picks_the_first_token_whose_cumulative_probability_exceeds_u():
    logits = np.random.default_rng(5).normal(size=(6, 7)).astype("float32")  # every probability above 1e-3
    cumulative = np.cumsum(softmax(logits), axis=-1)
    # u just below and just above each row's boundaries (a margin of 1e-4 for float32 rounding).
    for column in range(6):
        for offset, expected in ((-1e-4, column), (1e-4, column + 1)):
            u = (cumulative[:, column] + offset).astype("float32")
            np.testing.assert_array_equal(numpy(samplers.inverse_cdf_sample(logits, u)), np.full(6, expected))
    np.testing.assert_array_equal(numpy(samplers.inverse_cdf_sample(logits, np.zeros(6, "float32"))), np.zeros(6))
    # A u at or above the last cumulative probability (float32 may leave it just below 1) gives the last token.
    last = numpy(samplers.inverse_cdf_sample(logits, np.full(6, 1.0, "float32")))
    np.testing.assert_array_equal(last, np.full(6, 6))
    assert last.dtype == np.int32


def test_inverse_cdf_sample_follows_the_softmax_with_uniform_numbers():
    rows = 4000
    row = np.array([1.0, 0.5, 2.0, -1.0, 0.0, 1.5, -3.0, 0.2], "float32")
    u = numpy(samplers.uniform(9, (rows, 1)))[:, 0]
    tokens = numpy(samplers.inverse_cdf_sample(np.tile(row, (rows, 1)), u))
    assert_counts_match(tokens, softmax(row))
    # Under XLA, with unknown batch and vocabulary sizes: the same tokens.
    compiled = tf.function(samplers.inverse_cdf_sample, jit_compile=True,
                           input_signature=[tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None], tf.float32)])
    np.testing.assert_array_equal(compiled(np.tile(row, (rows, 1)), u).numpy(), tokens)


def test_bad_arguments():
    logits = random_logits()
    with pytest.raises(ValueError, match=r"^p must be in \(0, 1\], got 1.5$"):
        samplers.top_p_filter(logits, 1.5)
    with pytest.raises(ValueError, match=r"^p must be in \(0, 1\], got 0$"):
        samplers.top_p_filter(logits, 0)
    with pytest.raises(ValueError, match=r"^k must be a positive int, got 0$"):
        samplers.top_k_filter(logits, 0)
    with pytest.raises(ValueError, match=r"^k must be a positive int, got 2.5$"):
        samplers.top_k_filter(logits, 2.5)
    with pytest.raises(ValueError, match=r"^temperature must be a float > 0, got 0$"):
        samplers.apply_temperature(logits, 0)
    with pytest.raises(ValueError, match=r"^seed must be an int or an int tensor, got 'a'$"):
        samplers.sample(logits, "a")
    with pytest.raises(ValueError, match=r"^seed must have shape \[\] or \[2\], got shape \(3,\)$"):
        samplers.sample(logits, tf.constant([1, 2, 3]))
