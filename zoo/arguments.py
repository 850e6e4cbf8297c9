"""Eager validation of constructor and call arguments, shared across the zoo (cells, sequence layers, models,
decoding).

Each check raises a `ValueError` that names the argument, the value received and what was expected, so a bad
argument fails at construction, never deep inside a traced graph.
"""

import numbers

import keras


def positive_int(name, value):
    """Returns `value` if it is a positive int (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def int_at_least_or_none(name, value, minimum):
    """Returns `value` as an int if it is an int >= `minimum` (bools are rejected), or None (the option is off)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum} or None (off), got {value!r}")
    return int(value)


def rate(name, value):
    """Returns `value` as a float if it is a dropout rate in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a float in [0, 1), got {value!r}")
    return float(value)


def boolean(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def activation(name, value):
    """Resolves a Keras activation name or callable; `None` means linear."""
    if value is not None and not isinstance(value, str) and not callable(value):
        raise ValueError(f"{name} must be an activation name, a callable or None, got {value!r}")
    try:
        return keras.activations.get(value)
    except (ValueError, TypeError):
        raise ValueError(
            f"{name} must be a Keras activation such as 'tanh', 'sigmoid', 'relu' or 'linear', got {value!r}"
        ) from None


def token_id(name, value, vocab_size):
    """Returns `value` if it is an int id of a vocabulary of `vocab_size` tokens."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < vocab_size:
        raise ValueError(f"{name} must be an int in [0, vocab_size={vocab_size}), got {value!r}")
    return int(value)


def options(name, value):
    """Returns a copy of `value`, a dict of further layer arguments, or {} for None."""
    if value is not None and not isinstance(value, dict):
        raise ValueError(f"{name} must be a dict of recurrent layer arguments or None, got {value!r}")
    return dict(value or {})


def one_of(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}")
    return value


def step_input_dim(layer, input_shape):
    """The feature size of a cell's per-step input `(batch, features)`, checked.

    Raises a `ValueError` naming the layer when the input is not rank 2 or its feature size is unknown.
    """
    shape = tuple(input_shape)
    if len(shape) != 2 or shape[-1] is None or shape[-1] <= 0:
        raise ValueError(
            f"{type(layer).__name__} expects a step input of shape (batch, features) with a known feature size, "
            f"got shape {shape}; in a sequence layer the input must be (batch, time, features)"
        )
    return int(shape[-1])
