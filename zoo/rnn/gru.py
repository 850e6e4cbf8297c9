"""GRU: the zoo GRU cell over a sequence, on Keras's (and on GPU cuDNN's) fast path."""

import keras
from keras import ops

from zoo.cells.gru_cell import GRUCell
from zoo.rnn.recurrent import Recurrent
from zoo.rnn.recurrent import scan_steps


def gru_sequence(projected, h0, recurrent_kernel, recurrent_bias, mask=None):
    """The GRU recurrence (`reset_after=True`) over a whole sequence whose input projections are already made, with
    its backward pass.

    As `zoo.rnn.lstm.lstm_sequence`: the forward pass keeps every step's recurrent pre-activations
    q_t = h_{t-1} W + b'; the backward pass, written out here, computes the gates' derivatives for all steps at once
    and does step by step only what is sequential:

        dq_t = [dh_t, dh_t, dh_t] * K_t         dh_{t-1} = dh_t z_t + dq_t W^T

    with, for n_t the candidate, A_t = (h_{t-1} - n_t) z_t (1 - z_t), N_t = (1 - z_t)(1 - n_t^2) and
    K_t = [A_t, N_t q^h_t r_t (1 - r_t), N_t r_t]. The weight's gradient is then one matrix product over all steps:
    dW = [h_0 .. h_{T-1}]^T [dq_1 .. dq_T]; the gradients of b' and `projected` come from the dh_t in bulk. A masked
    step (mask False) keeps h and passes dh back unchanged.

    Args:
        projected: [time, batch, 3 * units], U x_t + b for every step (time-major, gates in Keras's order z, r, h).
        h0: [batch, units], the initial state.
        recurrent_kernel: [units, 3 * units], W.      recurrent_bias: [3 * units], b' (zeros for a cell without bias).
        mask: None, or [time, batch, 1] bool, True where a step runs, False where it keeps the state.

    Returns:
        [time, batch, units], h_t after every step (a masked step holds h_{t-1}).
    """
    units = recurrent_kernel.shape[0]

    @ops.custom_gradient
    def run(projected, h0, recurrent_kernel, recurrent_bias):
        # keras.ops.scan's per-step outputs have the carry's structure, so q_t rides in the carry too.
        def forward_step(carry, inputs):
            h_prev = carry[0]
            q = ops.matmul(h_prev, recurrent_kernel) + recurrent_bias
            x_zr, x_h = ops.split(inputs[0], [2 * units], axis=-1)
            q_zr, q_h = ops.split(q, [2 * units], axis=-1)
            z, r = ops.split(ops.sigmoid(x_zr + q_zr), 2, axis=-1)
            h = z * h_prev + (1.0 - z) * ops.tanh(x_h + r * q_h)
            if mask is not None:
                h = ops.where(inputs[1], h, h_prev)
            return (h, q), (h, q)

        xs = (projected,) if mask is None else (projected, mask)
        _, (h_all, q_all) = scan_steps(forward_step, (h0, projected[0]), xs)

        def grad(d_h_all, **unused):
            # Everything that is not sequential, for all steps at once ([time, batch, ...]).
            x_zr, x_h = ops.split(projected, [2 * units], axis=-1)
            q_zr, q_h = ops.split(q_all, [2 * units], axis=-1)
            z, r = ops.split(ops.sigmoid(x_zr + q_zr), 2, axis=-1)
            n = ops.tanh(x_h + r * q_h)
            h_prev_all = ops.concatenate([ops.expand_dims(h0, 0), h_all[:-1]], axis=0)
            a_z = (h_prev_all - n) * z * (1.0 - z)
            a_n = (1.0 - z) * (1.0 - n) * (1.0 + n)
            a_r = a_n * q_h * r * (1.0 - r)
            q_factor = ops.concatenate([a_z, a_r, a_n * r], axis=-1)
            x_factor = ops.concatenate([a_z, a_r, a_n], axis=-1)
            if mask is not None:
                # A masked step: no gate gradient, dh passes through (exact: the factors are 0 or 1).
                runs = ops.cast(mask, z.dtype)
                q_factor, x_factor, z = q_factor * runs, x_factor * runs, z * runs + (1.0 - runs)
            kernel_t = ops.transpose(recurrent_kernel)

            def backward_step(carry, inputs):
                d_h = carry[0] + inputs[0]
                d_q = ops.concatenate([d_h, d_h, d_h], axis=-1) * inputs[2]
                return (d_h * inputs[1] + ops.matmul(d_q, kernel_t),), (d_h,)

            xs = (d_h_all, z, q_factor)
            (d_h0,), (d_h_steps,) = scan_steps(backward_step, (ops.zeros_like(h0),), xs, reverse=True)
            d_h_steps = ops.concatenate([d_h_steps, d_h_steps, d_h_steps], axis=-1)
            d_q_all = ops.reshape(d_h_steps * q_factor, (-1, 3 * units))
            d_kernel = ops.matmul(ops.transpose(ops.reshape(h_prev_all, (-1, units))), d_q_all)
            return d_h_steps * x_factor, d_h0, d_kernel, ops.sum(d_q_all, axis=0)

        return h_all, grad

    return run(projected, h0, recurrent_kernel, recurrent_bias)


@keras.saving.register_keras_serializable(package="zoo")
class GRU(Recurrent, keras.layers.GRU):
    """Runs `zoo.cells.GRUCell` over a sequence.

    It is Keras's GRU loop around our cell: same weights, same results, same speed, and on a GPU the same cuDNN
    kernel when `reset_after=True` (`use_cudnn="auto"`).

    Args:
        units: positive int, size of h_t.
        use_cudnn: `"auto"`, `True` or `False`, as in Keras. `True` with `reset_after=False` is rejected.
        Any argument of `zoo.cells.GRUCell` (`reset_after`, `chrono_max_length`, activations, initializers, `dropout`, ...) and of
        `keras.layers.RNN` (`return_sequences`, `return_state`, `go_backwards`, `stateful`, `unroll`,
        `zero_output_for_mask`).

    Call arguments and masking: as `keras.layers.RNN`; inputs [batch, time, features].

    Example:
        ```python
        y = zoo.rnn.GRU(64, return_sequences=True)(np.zeros((8, 20, 3), "float32"))  # (8, 20, 64)
        ```
    """

    cell_class = GRUCell
    cell_name = "gru_cell"
    _cudnn_limit = "it computes only reset_after=True"

    def __init__(self, units, use_cudnn="auto", **kwargs):
        super().__init__(units, **kwargs)
        self.use_cudnn = self._use_cudnn(use_cudnn, kernel_computes_cell=self.cell.reset_after)

    def fused_loop_applies(self, training):
        return super().fused_loop_applies(training) and self.cell.reset_after

    def fused_loop(self, sequences, initial_state, mask, training):
        cell = self.cell
        input_bias = None if cell.bias is None else cell.bias[0]
        projected, mask = self.project_inputs(sequences, mask, training, cell.kernel, input_bias)
        kernel = ops.cast(cell.recurrent_kernel, projected.dtype)
        recurrent_bias = ops.zeros((3 * cell.units,), projected.dtype) if cell.bias is None else cell.bias[1]
        h_all = gru_sequence(projected, initial_state[0], kernel, ops.cast(recurrent_bias, projected.dtype), mask)
        return self.loop_results(h_all, [h_all[-1]], mask)

    def get_config(self):
        return {**super().get_config(), "use_cudnn": self.use_cudnn}
