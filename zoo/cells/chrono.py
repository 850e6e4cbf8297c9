"""Chrono initialisation of gate biases (Tallec & Ollivier 2018, "Can recurrent neural networks warp time?", §4).

A gate that keeps a fraction f of the state per step, with nothing else acting on it, lets the state decay as f^t:
its characteristic forgetting time is 1 / (1 - f). At initialisation, with zero input and state, a gate of bias b
keeps f = sigmoid(b), so a bias b = log(u) keeps f = u / (1 + u) and forgets in 1 / (1 - f) = 1 + u steps. Drawing
u ~ U(1, T_max - 1) per unit spreads the units' forgetting times over [2, T_max]: some units remember over the
longest dependency the data holds, instead of every unit forgetting geometrically within a few steps (a default
forget bias of 1 keeps sigmoid(1) ~ 0.73 per step, a time of ~3.7 steps). `zoo.cells.LSTMCell` and
`zoo.cells.GRUCell` use it through their `chrono_max_length` argument (T_max).
"""

import keras
from keras import ops

from zoo import arguments


def check_max_length(cell, max_length):
    """Returns `max_length` (T_max) as an int, or None (off); a ValueError names what is wrong.

    T_max must be an int >= 2 (U(1, T_max - 1) is empty below), and the cell must have biases to set.
    """
    max_length = arguments.int_at_least_or_none("chrono_max_length", max_length, 2)
    if max_length is not None and not cell.use_bias:
        raise ValueError(
            f"chrono_max_length={max_length} sets gate biases, but {type(cell).__name__} has use_bias=False; "
            "pass use_bias=True or chrono_max_length=None"
        )
    return max_length


def log_uniform_initializer(max_length):
    """An initializer drawing log(u), u ~ U(1, `max_length` - 1) independently per entry.

    The draw comes from a `keras.initializers.RandomUniform` made here: its seed is drawn from Keras's global seed
    (`keras.utils.set_random_seed`), like the seeds of the cells' default kernel initializers, so a seeded model is
    reproducible on every backend.
    """
    uniform = keras.initializers.RandomUniform(minval=1.0, maxval=float(max_length - 1))

    def initializer(shape, dtype=None):
        return ops.log(uniform(shape, dtype=dtype))

    return initializer
