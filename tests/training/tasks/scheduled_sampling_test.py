"""Scheduled sampling's schedules against the formulas of Bengio et al. (2015), and their config checks."""

import math

import numpy as np
import pytest
import tensorflow as tf

from training.tasks import scheduled_sampling

STEPS = [0, 1, 2, 10, 100, 499, 500, 2000, 10**6]


def paper(options, i):
    """1 - eps_i as the paper writes eps_i (section 2.4), clipped to [0, 1]; the linear schedule's floor eps of
    eps_i is 1 - max_probability, and the other schedules take the same cap on 1 - eps_i."""
    k = options["k"]
    if options["schedule"] == "linear":
        eps = max(1.0 - options.get("max_probability", 1.0), k - options["c"] * i)  # max(eps, k - c i)
    elif options["schedule"] == "exponential":
        eps = k**i
    else:
        eps = k / (k + math.exp(min(i / k, 700.0)))  # exp overflows a double beyond 709
    return min(max(1.0 - eps, 0.0), options.get("max_probability", 1.0))


@pytest.mark.parametrize("options", [
    {"schedule": "linear", "k": 1.0, "c": 1e-3},
    {"schedule": "linear", "k": 1.2, "c": 2e-3, "max_probability": 0.4},  # 100 steps of pure teacher forcing first
    {"schedule": "exponential", "k": 0.999},
    {"schedule": "exponential", "k": 0.99, "max_probability": 0.75},
    {"schedule": "inverse_sigmoid", "k": 100},
    {"schedule": "inverse_sigmoid", "k": 1},
], ids=["linear", "linear_delayed_capped", "exponential", "exponential_capped", "inverse_sigmoid", "inverse_sigmoid_1"])
def test_sampling_probability_is_one_minus_the_paper_s_teacher_forcing_probability(options):
    scheduled_sampling.check(options)
    got = [float(scheduled_sampling.sampling_probability(options, i)) for i in STEPS]
    np.testing.assert_allclose(got, [paper(options, i) for i in STEPS], atol=1e-6)
    assert np.all(np.diff(got) >= 0), got  # the model reads its own tokens more and more often
    assert max(got) <= options.get("max_probability", 1.0) + 1e-7
    # In a graph, from a step tensor: the same values.
    compiled = tf.function(lambda step: scheduled_sampling.sampling_probability(options, step), jit_compile=True)
    np.testing.assert_allclose([float(compiled(tf.constant(i, tf.int64))) for i in STEPS], got, atol=1e-7)


def test_landmarks_of_the_schedules():
    def p(i, **options):
        return float(scheduled_sampling.sampling_probability(options, i))

    # Linear from k = 1: teacher forcing at the first step, then c more per step.
    assert p(0, schedule="linear", k=1.0, c=0.01) == 0.0
    assert p(30, schedule="linear", k=1.0, c=0.01) == pytest.approx(0.3)
    # Exponential: eps_i = k^i halves every ln 2 / -ln k steps.
    assert p(693, schedule="exponential", k=0.999) == pytest.approx(0.5, abs=1e-3)
    # Inverse sigmoid: eps_0 = k / (k + 1), and p = 1/2 where exp(i / k) = k.
    assert p(0, schedule="inverse_sigmoid", k=100) == pytest.approx(1 / 101)
    assert p(100 * math.log(100), schedule="inverse_sigmoid", k=100) == pytest.approx(0.5)


def test_config_errors_name_the_value():
    check = scheduled_sampling.check
    check(None)
    with pytest.raises(ValueError, match=r"scheduled_sampling must be None \(off\) or a dict like .*got 'linear'"):
        check("linear")
    with pytest.raises(ValueError, match=r"scheduled_sampling.schedule must be one of 'linear', 'exponential', "
                                         r"'inverse_sigmoid', got 'cosine'"):
        check({"schedule": "cosine", "k": 1})
    with pytest.raises(ValueError, match=r"with schedule 'exponential' takes the keys \['schedule', 'k', "
                                         r"'max_probability'\], got unknown \['c'\]"):
        check({"schedule": "exponential", "k": 0.9, "c": 1})
    with pytest.raises(ValueError, match=r"with schedule 'linear' needs 'c'"):
        check({"schedule": "linear", "k": 1.0})
    with pytest.raises(ValueError, match=r"scheduled_sampling.c \(the linear schedule's slope\) must be a number > 0, "
                                         r"got 0"):
        check({"schedule": "linear", "k": 1.0, "c": 0})
    with pytest.raises(ValueError, match=r"k of the exponential schedule eps_i = k\^i must be in \(0, 1\), got 1.5"):
        check({"schedule": "exponential", "k": 1.5})
    with pytest.raises(ValueError, match=r"k of the inverse sigmoid schedule .* must be a number >= 1, got 0.5"):
        check({"schedule": "inverse_sigmoid", "k": 0.5})
    with pytest.raises(ValueError, match=r"max_probability must be a number in \[0, 1\], got 2"):
        check({"schedule": "inverse_sigmoid", "k": 10, "max_probability": 2})
    with pytest.raises(ValueError, match=r"k \(the linear schedule's offset\) must be a number, got True"):
        check({"schedule": "linear", "k": True, "c": 0.1})
