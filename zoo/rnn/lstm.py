"""LSTM: the zoo LSTM cell over a sequence; without peepholes, a fused loop on TensorFlow and cuDNN on a GPU."""

import keras
from keras import ops

from zoo.cells.lstm_cell import LSTMCell
from zoo.rnn.recurrent import Recurrent
from zoo.rnn.recurrent import scan_steps


def lstm_sequence(projected, h0, c0, recurrent_kernel, mask=None):
    """The LSTM recurrence over a whole sequence whose input projections are already made, with its backward pass.

    The backward pass is written out here rather than left to autodiff. The forward pass keeps, for every step, the
    factors the backward pass needs, K_t = [g_t i_t (1 - i_t), c_{t-1} f_t (1 - f_t), i_t (1 - g_t^2),
    tanh(c_t) o_t (1 - o_t)], P_t = o_t (1 - tanh^2 c_t) and f_t, so that each step back is only

        dc_t += dh_t P_t         dz_t = [dc_t, dc_t, dc_t, dh_t] * K_t         dh_{t-1} = dz_t W^T
        dc_{t-1} = dc_t f_t

    and the weight's gradient is then one matrix product over all steps, as cuDNN forms it:
    dW = [h_0 .. h_{T-1}]^T [dz_1 .. dz_T]. The gradient with respect to `projected` is [dz_1 .. dz_T], from which
    autodiff gets U's, b's and the inputs' with one product each. A masked step (mask False) keeps h and c, and
    passes dh and dc back unchanged (its K and P are 0, its f is 1).

    Args:
        projected: [time, batch, 4 * units], U x_t + b for every step (time-major, gates in Keras's order i, f, c, o).
        h0, c0: [batch, units], the initial state.
        recurrent_kernel: [units, 4 * units], W.
        mask: None, or [time, batch, 1] bool, True where a step runs, False where it keeps the state.

    Returns:
        (h, c_last): h [time, batch, units], h_t after every step (a masked step holds h_{t-1}); c_last [batch,
        units], the final memory cell.
    """
    units = recurrent_kernel.shape[0]

    @ops.custom_gradient
    def run(projected, h0, c0, recurrent_kernel):
        def forward_step(state, inputs):
            h_prev, c_prev = state[0], state[1]
            z = inputs[0] + ops.matmul(h_prev, recurrent_kernel)
            z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
            i, f, o = ops.sigmoid(z_i), ops.sigmoid(z_f), ops.sigmoid(z_o)
            g = ops.tanh(z_c)
            c = f * c_prev + i * g
            tanh_c = ops.tanh(c)
            h = o * tanh_c
            gate_factor = ops.concatenate(
                [g * i * (1.0 - i), c_prev * f * (1.0 - f), i * (1.0 - g * g), tanh_c * o * (1.0 - o)], axis=-1
            )
            cell_from_h = o * (1.0 - tanh_c * tanh_c)
            if mask is not None:
                runs = ops.cast(inputs[1], h.dtype)
                h = ops.where(inputs[1], h, h_prev)
                c = ops.where(inputs[1], c, c_prev)
                gate_factor, cell_from_h, f = gate_factor * runs, cell_from_h * runs, f * runs + (1.0 - runs)
            # The backward factors ride in the state: keras.ops.scan's outputs have the carry's structure.
            state = (h, c, ops.concatenate([gate_factor, cell_from_h, f], axis=-1))
            return state, state

        xs = (projected,) if mask is None else (projected, mask)
        start = (h0, c0, ops.concatenate([projected[0], h0, h0], axis=-1))
        _, (h_all, c_all, factors) = scan_steps(forward_step, start, xs)

        def grad(d_h_all, d_c_last=None, **unused):
            if d_c_last is None:
                d_c_last = ops.zeros_like(c0)
            kernel_t = ops.transpose(recurrent_kernel)

            def backward_step(state, inputs):
                d_h = state[0] + inputs[0]
                gate_factor, cell_from_h, f = ops.split(inputs[1], [4 * units, 5 * units], axis=-1)
                d_c = state[1] + d_h * cell_from_h
                d_z = ops.concatenate([d_c, d_c, d_c, d_h], axis=-1) * gate_factor
                d_h_prev = ops.matmul(d_z, kernel_t)
                if mask is not None:  # a masked step passes dh through (its d_z is 0)
                    d_h_prev = d_h_prev + d_h * (1.0 - ops.cast(inputs[2], d_h.dtype))
                state = (d_h_prev, d_c * f, d_z)
                return state, state

            xs = (d_h_all, factors) + (() if mask is None else (mask,))
            start = (ops.zeros_like(h0), d_c_last, projected[0])
            (d_h0, d_c0, _), (_, _, d_z_all) = scan_steps(backward_step, start, xs, reverse=True)
            h_prev_all = ops.concatenate([ops.expand_dims(h0, 0), h_all[:-1]], axis=0)
            d_kernel = ops.matmul(
                ops.transpose(ops.reshape(h_prev_all, (-1, units))), ops.reshape(d_z_all, (-1, 4 * units))
            )
            return d_z_all, d_h0, d_c0, d_kernel

        return (h_all, c_all[-1]), grad

    return run(projected, h0, c0, recurrent_kernel)


@keras.saving.register_keras_serializable(package="zoo")
class LSTM(Recurrent, keras.layers.LSTM):
    """Runs `zoo.cells.LSTMCell` over a sequence, with or without peepholes.

    Without peepholes it computes Keras's LSTM (same weights, same results), through one of three loops:

    - Keras's own dispatch, on a GPU with `use_cudnn="auto"` and whenever `use_cudnn=True`: cuDNN's kernel where
      Keras can use it, Keras's loop otherwise.
    - The fused loop (`lstm_sequence`), on TensorFlow otherwise, when all its conditions hold: at least
      `fused_loop_min_units` (256) units, the default activations (`tanh`, `sigmoid`), no peepholes, `unroll=False`,
      and no recurrent dropout while training. It makes the input projections U x_t + b of all steps with one matrix
      product before the loop (as cuDNN does), so that a step only does h W and the gates, several steps per loop
      iteration; its backward pass is written out: step by step only dh and dc, from the gates' factors the forward
      pass kept, then the gradients of W, U, b and the inputs with one product (or sum) each over all steps. Masks,
      `go_backwards`, `initial_state`, `return_state`, `stateful`, `dropout` on the inputs (Keras's one mask per
      sequence), no bias, `zero_output_for_mask`, unknown lengths and XLA all run in it, with Keras's semantics (a
      masked step keeps the state; the output repeats the last one, zeros before the first step that runs). On a
      2-core CPU a training step takes about 0.7x Keras's time at 512 units and 0.9x at 256 (`benchmarks/cells.py`,
      docs/performance.md); below 256 units it would take about 1.2x, which is why Keras's loop runs there.
    - Keras's loop (`keras.layers.RNN`) around the cell otherwise, and always with peepholes (cuDNN has none): about
      Keras's own time.

    Args:
        units: positive int, size of h_t and c_t.
        use_cudnn: `"auto"` (cuDNN when possible), `True` (require it) or `False` (never), as in Keras. `True` with
            `peepholes=True` is rejected.
        Any argument of `zoo.cells.LSTMCell` (`peepholes`, `unit_forget_bias`, `chrono_max_length`, activations, initializers,
        `dropout`, `recurrent_dropout`, ...) and of `keras.layers.RNN` (`return_sequences`, `return_state`,
        `go_backwards`, `stateful`, `unroll`, `zero_output_for_mask`).

    Call arguments and masking: as `keras.layers.RNN`; inputs [batch, time, features]; states [h, c]. On the cuDNN
    path masks must be right-padded, as for `keras.layers.LSTM`; the fused loop takes any mask.

    Example:
        ```python
        y = zoo.rnn.LSTM(64, peepholes=True, return_sequences=True)(np.zeros((8, 20, 3), "float32"))
        ```
    """

    cell_class = LSTMCell
    cell_name = "lstm_cell"
    # On a 2-core CPU (batch 64, length 50) the fused loop's training step took 1.2x Keras's time at 128 units,
    # 0.89x at 256 and 0.72x at 512; Keras's loop around the zoo cell about 1.0x at every size.
    fused_loop_min_units = 256
    _cudnn_limit = "it has no peephole connections"

    def __init__(self, units, use_cudnn="auto", **kwargs):
        super().__init__(units, **kwargs)
        self.use_cudnn = self._use_cudnn(use_cudnn, kernel_computes_cell=not self.cell.peepholes)

    def fused_loop_applies(self, training):
        return super().fused_loop_applies(training) and not self.cell.peepholes

    def fused_loop(self, sequences, initial_state, mask, training):
        cell = self.cell
        projected, mask = self.project_inputs(sequences, mask, training, cell.kernel, cell.bias)
        h_all, c_last = lstm_sequence(
            projected,
            initial_state[0],
            initial_state[1],
            ops.cast(cell.recurrent_kernel, projected.dtype),
            mask,
        )
        return self.loop_results(h_all, [h_all[-1], c_last], mask)

    def get_config(self):
        return {**super().get_config(), "use_cudnn": self.use_cudnn}
