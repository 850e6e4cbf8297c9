"""LeakyCell: leaky-integrator units (Mozer 1992; Jaeger et al. 2007), a recurrence with per-unit time constants."""

import numbers

import keras
import numpy as np
from keras import ops

from zoo import arguments
from zoo.cells.elman_cell import elman_step
from zoo.cells.recurrent_cell import RecurrentCell

# A trained alpha is clipped to [MIN_ALPHA, 1]: alpha = 0 would freeze a unit for ever (its gradient through time
# is then exactly 1 but it never reads its input again), which the lecture's model excludes.
MIN_ALPHA = 1e-3


def leaky_step(x, s_prev, s_fed_back, kernel, recurrent_kernel, bias, alpha, activation):
    """One leaky step, s_t = (1 - alpha) * s_{t-1} + alpha * activation(b + W s_{t-1} + U x_t).

    Args:
        x: [batch, input_dim], x_t.
        s_prev: [batch, units], s_{t-1} in the leak term.
        s_fed_back: [batch, units], s_{t-1} inside the non-linearity (equal to `s_prev` unless recurrent dropout
            masks it).
        kernel: [input_dim, units], U.      recurrent_kernel: [units, units], W.      bias: [units] or None, b.
        alpha: [units], the leak rates in (0, 1].
        activation: the non-linearity.

    Returns:
        [batch, units], s_t.
    """
    candidate = elman_step(x, s_fed_back, kernel, recurrent_kernel, bias, activation)
    return s_prev + alpha * (candidate - s_prev)


def _leak_rates(alpha, units):
    """Validates `alpha` (a float or one float per unit) and returns it as a float list of length `units`."""
    values = [alpha] * units if isinstance(alpha, numbers.Real) and not isinstance(alpha, bool) else alpha
    try:
        values = [float(a) for a in values]
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a float or a list of {units} floats in (0, 1], got {alpha!r}") from None
    if len(values) != units:
        raise ValueError(f"alpha must have one value per unit ({units}), got {len(values)} values")
    bad = [a for a in values if not 0.0 < a <= 1.0]
    if bad:
        raise ValueError(f"alpha must be in (0, 1], got {bad[0]!r}")
    return values


@keras.saving.register_keras_serializable(package="zoo")
class LeakRateConstraint(keras.constraints.Constraint):
    """Keeps trained leak rates in [MIN_ALPHA, 1]."""

    def __call__(self, w):
        return ops.clip(w, MIN_ALPHA, 1.0)


@keras.saving.register_keras_serializable(package="zoo")
class LeakyCell(RecurrentCell):
    """Leaky-integrator cell: each unit moves only a fraction alpha of the way towards its new activation.

    Equations (weights in brackets; row vectors):

        a_t = b + W s_{t-1} + U x_t                  U: `kernel` [input_dim, units], W: `recurrent_kernel`
                                                     [units, units], b: `bias` [units]
        s_t = (1 - alpha) * s_{t-1} + alpha * tanh(a_t)      alpha: `alpha` [units], elementwise, in (0, 1]

    With alpha = 1 it is the Elman cell. A small alpha is a long time constant (about 1/alpha steps): the
    Jacobian d s_t / d s_{t-1} = (1 - alpha) + alpha * diag(tanh') W stays near the identity, so gradients
    vanish more slowly along that unit.

    Args:
        units: positive int, size of s_t.
        alpha: leak rate(s) in (0, 1]: one float for every unit, or a list of `units` floats (default 0.5).
        trainable_alpha: whether alpha is learnt (kept in [1e-3, 1] by a constraint) or fixed (default `False`).
        activation: non-linearity (default `"tanh"`).
        The remaining arguments are those of `zoo.cells.RecurrentCell`.

    Call arguments:
        inputs: [batch, input_dim], x_t.
        states: `[s_{t-1}]`, one tensor [batch, units].
        training: whether dropout is active.

    State:
        `[s_t]`, [batch, units]; `output_size == state_size == units`.

    Masking: inside `keras.layers.RNN`, a masked step keeps s_{t-1} and repeats the last output.

    Example:
        ```python
        cell = zoo.cells.LeakyCell(64, alpha=[0.5] * 32 + [0.05] * 32)  # fast and slow units
        y = keras.layers.RNN(cell)(np.zeros((8, 20, 3), "float32"))  # (8, 64)
        ```

    References: M. C. Mozer, "Induction of multiscale temporal structure", NIPS 1992; H. Jaeger, M. Lukosevicius,
    D. Popovici, U. Siewert, "Optimization and applications of echo state networks with leaky-integrator
    neurons", Neural Networks 20(3), 2007.
    """

    def __init__(self, units, alpha=0.5, trainable_alpha=False, **kwargs):
        super().__init__(units, **kwargs)
        self._alpha_values = _leak_rates(alpha, self.units)
        # The config keeps the user's form (one rate, or one per unit) as plain floats, so it serializes to JSON.
        self.alpha_config = float(alpha) if isinstance(alpha, numbers.Real) else list(self._alpha_values)
        self.trainable_alpha = arguments.boolean("trainable_alpha", trainable_alpha)

    def build(self, input_shape):
        super().build(input_shape)
        self.kernel = self.add_kernel(self.input_dim, self.units)
        self.recurrent_kernel = self.add_recurrent_kernel(self.units, self.units)
        self.bias = self.add_bias((self.units,))
        self.alpha = self.add_weight(
            shape=(self.units,),
            name="alpha",
            initializer=keras.initializers.Constant(np.asarray(self._alpha_values, dtype="float32")),
            constraint=LeakRateConstraint() if self.trainable_alpha else None,
            trainable=self.trainable_alpha,
        )

    def call(self, inputs, states, training=False):
        s_prev = states[0]
        x, s_fed_back = self.apply_dropout(inputs, s_prev, training)
        s = leaky_step(
            x, s_prev, s_fed_back, self.kernel, self.recurrent_kernel, self.bias, self.alpha, self.activation
        )
        return s, [s]

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha_config, "trainable_alpha": self.trainable_alpha}
