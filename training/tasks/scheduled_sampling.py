"""Scheduled sampling's schedules (Bengio et al. 2015, section 2.4): how often the decoder reads its own tokens, as a
function of the training step.

The paper decays the probability eps_i that step i of training feeds the decoder the reference token (teacher
forcing); the model's own token comes with the probability p_i = 1 - eps_i, which `zoo.models.Seq2Seq` takes as
`sampling_probability`:

    "linear"            eps_i = max(eps, k - c i)       k: offset (1 starts at pure teacher forcing), c > 0: slope
    "exponential"       eps_i = k^i                     0 < k < 1
    "inverse_sigmoid"   eps_i = k / (k + exp(i / k))    k >= 1 (p_i reaches 1/2 near i = k ln k)

The floor eps of the linear schedule is `1 - max_probability`; here every schedule takes that cap, p_i <=
`max_probability` (default 1), and p_i is clipped to [0, 1]. i counts the training steps taken before (0 at the
first), so a resumed run continues its schedule.

A config's `scheduled_sampling` is None (off: teacher forcing) or a dict of plain values, e.g.
`{"schedule": "inverse_sigmoid", "k": 300}` or `{"schedule": "linear", "k": 1.0, "c": 1e-3, "max_probability": 0.25}`.
"""

import numbers

import tensorflow as tf

SCHEDULES = ("linear", "exponential", "inverse_sigmoid")

# The keys each schedule takes, besides "schedule" and "max_probability".
_PARAMETERS = {"linear": ("k", "c"), "exponential": ("k",), "inverse_sigmoid": ("k",)}


def _number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check(options, name="scheduled_sampling"):
    """Raises a ValueError naming what is wrong with a `scheduled_sampling` config value (None is off)."""
    if options is None:
        return
    example = '{"schedule": "inverse_sigmoid", "k": 300}'
    if not isinstance(options, dict):
        raise ValueError(f"{name} must be None (off) or a dict like {example}, got {options!r}")
    schedule = options.get("schedule")
    if schedule not in SCHEDULES:
        raise ValueError(f"{name}.schedule must be one of {', '.join(map(repr, SCHEDULES))}, got {schedule!r}")
    allowed = ("schedule", *_PARAMETERS[schedule], "max_probability")
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"{name} with schedule {schedule!r} takes the keys {list(allowed)}, got unknown {unknown}")
    for key in _PARAMETERS[schedule]:
        if key not in options:
            raise ValueError(f"{name} with schedule {schedule!r} needs {key!r}, got {options!r}")
    k = options["k"]
    if schedule == "linear":
        if not _number(k):
            raise ValueError(f"{name}.k (the linear schedule's offset) must be a number, got {k!r}")
        if not (_number(options["c"]) and options["c"] > 0):
            raise ValueError(f"{name}.c (the linear schedule's slope) must be a number > 0, got {options['c']!r}")
    elif schedule == "exponential" and not (_number(k) and 0 < k < 1):
        raise ValueError(f"{name}.k of the exponential schedule eps_i = k^i must be in (0, 1), got {k!r}")
    elif schedule == "inverse_sigmoid" and not (_number(k) and k >= 1):
        raise ValueError(f"{name}.k of the inverse sigmoid schedule eps_i = k / (k + exp(i / k)) must be a number "
                         f">= 1, got {k!r}")
    cap = options.get("max_probability", 1.0)
    if not (_number(cap) and 0 <= cap <= 1):
        raise ValueError(f"{name}.max_probability must be a number in [0, 1], got {cap!r}")


def teacher_forcing_probability(options, step):
    """eps_i of the paper's schedule, before the cap: float64 scalar tensor.

    Args:
        options: a checked `scheduled_sampling` dict.
        step: i, an int or an int scalar tensor.
    """
    i = tf.cast(step, tf.float64)
    k = tf.constant(options["k"], tf.float64)
    schedule = options["schedule"]
    if schedule == "linear":
        return k - tf.constant(options["c"], tf.float64) * i
    if schedule == "exponential":
        return tf.pow(k, i)
    if schedule == "inverse_sigmoid":
        return k / (k + tf.exp(i / k))
    raise ValueError(f"schedule must be one of {', '.join(map(repr, SCHEDULES))}, got {schedule!r}")


def sampling_probability(options, step):
    """p_i = 1 - eps_i, clipped to [0, max_probability]: float32 scalar tensor, usable inside a compiled step.

    Args:
        options: a checked `scheduled_sampling` dict.
        step: i, the training steps taken before this one: an int or an int scalar tensor.
    """
    cap = tf.constant(options.get("max_probability", 1.0), tf.float64)
    probability = tf.clip_by_value(1.0 - teacher_forcing_probability(options, step), 0.0, cap)
    return tf.cast(probability, tf.float32)
