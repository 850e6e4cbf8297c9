"""GRU: the zoo GRU cell over a sequence; with reset_after, a fused loop on TensorFlow and cuDNN on a GPU."""

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
        def forward_step(state, inputs):
            h_prev = state[0]
            q = ops.matmul(h_prev, recurrent_kernel) + recurrent_bias
            x_zr, x_h = ops.split(inputs[0], [2 * units], axis=-1)
            q_zr, q_h = ops.split(q, [2 * units], axis=-1)
            z, r = ops.split(ops.sigmoid(x_zr + q_zr), 2, axis=-1)
            n = ops.tanh(x_h + r * q_h)
            keep = 1.0 - z
            h = z * h_prev + keep * n
            # The backward pass's factors: dq = [dh, dh, dh] * [a_z, a_r, a_n r], d(U x + b) = dh [a_z, a_r, a_n].
            a_n = keep * (1.0 - n) * (1.0 + n)
            a_zr = ops.concatenate([h_prev - n, a_n * q_h], axis=-1) * ops.concatenate([z * keep, r * (1.0 - r)], -1)
            q_factor = ops.concatenate([a_zr, a_n * r], axis=-1)
            if mask is not None:
                runs = ops.cast(inputs[1], h.dtype)
                h = ops.where(inputs[1], h, h_prev)
                q_factor, a_n, z = q_factor * runs, a_n * runs, z * runs + (1.0 - runs)
            # The factors ride in the state: keras.ops.scan's outputs have the carry's structure.
            state = (h, q_factor, a_n, z)
            return state, state

        xs = (projected,) if mask is None else (projected, mask)
        start = (h0, projected[0], h0, h0)
        _, (h_all, q_factor, a_n, z) = scan_steps(forward_step, start, xs)

        def grad(d_h_all, **unused):
            kernel_t = ops.transpose(recurrent_kernel)

            def backward_step(state, inputs):
                d_h = state[0] + inputs[0]
                d_q = ops.concatenate([d_h, d_h, d_h], axis=-1) * inputs[1]
                state = (d_h * inputs[3] + ops.matmul(d_q, kernel_t), d_q, d_h * inputs[2])
                return state, state

            xs = (d_h_all, q_factor, a_n, z)
            start = (ops.zeros_like(h0), ops.zeros_like(projected[0]), ops.zeros_like(h0))
            (d_h0, _, _), (_, d_q_all, d_a_n) = scan_steps(backward_step, start, xs, reverse=True)
            d_projected = ops.concatenate([d_q_all[..., : 2 * units], d_a_n], axis=-1)
            h_prev_all = ops.concatenate([ops.expand_dims(h0, 0), h_all[:-1]], axis=0)
            d_q_all = ops.reshape(d_q_all, (-1, 3 * units))
            d_kernel = ops.matmul(ops.transpose(ops.reshape(h_prev_all, (-1, units))), d_q_all)
            return d_projected, d_h0, d_kernel, ops.sum(d_q_all, axis=0)

        return h_all, grad

    return run(projected, h0, recurrent_kernel, recurrent_bias)


@keras.saving.register_keras_serializable(package="zoo")
class GRU(Recurrent, keras.layers.GRU):
    """Runs `zoo.cells.GRUCell` over a sequence.

    It computes Keras's GRU (same weights, same results), through one of three loops:

    - Keras's own dispatch, on a GPU with `use_cudnn="auto"` and whenever `use_cudnn=True`: cuDNN's kernel where
      Keras can use it (`reset_after=True`), Keras's loop otherwise.
    - The fused loop (`gru_sequence`), on TensorFlow otherwise, when all its conditions hold: at least
      `fused_loop_min_units` (512) units, `reset_after=True`, the default activations (`tanh`, `sigmoid`),
      `unroll=False`, and no recurrent dropout while training. It makes the input projections U x_t + b of all steps
      with one matrix product before the loop, so that a step only does h W + b' and the gates, several steps per
      loop iteration; its backward pass is written out: step by step only dh, from the gates' factors the forward
      pass kept, then the gradients of W, b', U, b and the inputs with one product (or sum) each over all steps.
      Masks, `go_backwards`, `initial_state`, `return_state`, `stateful`, `dropout` on the inputs, no bias,
      `zero_output_for_mask`, unknown lengths and XLA all run in it, with Keras's semantics. On a 2-core CPU a
      training step takes about 0.82x Keras's time at 512 units (`benchmarks/cells.py`, docs/performance.md), where
      Keras's loop around the zoo cell takes 0.9x; at 256 units and below the fused loop would take about Keras's
      time and Keras's loop around the zoo cell about 0.83x, which is why that loop runs there.
    - Keras's loop (`keras.layers.RNN`) around the cell otherwise, and always with `reset_after=False`.

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
    # On a 2-core CPU (batch 64, length 50) the fused loop's training step took 1.04x Keras's time at 128 units,
    # 1.0x at 256 and 0.83x at 512; Keras's loop around the zoo cell 0.86x, 0.83x and 0.91x.
    fused_loop_min_units = 512
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
