"""NTM: a Neural Turing Machine (`zoo.cells.NTMCell`) run over a sequence, the model of the algorithmic tasks."""

import keras
from keras import ops

from zoo import arguments
from zoo.cells.ntm_cell import NTMCell


@keras.saving.register_keras_serializable(package="zoo")
class NTM(keras.Model):
    """A Neural Turing Machine over a sequence: `keras.layers.RNN(NTMCell)`, its output at every step (or the last).

        y_t = g(NTMCell(x_t, state_{t-1}))      (g: `output_activation`; the cell's output is linear and clipped)

    The memory, read vectors and head weightings are the RNN's state; they start from the cell's initial state (a
    constant memory, learned initial reads and weightings) for every sequence.

    Args:
        output_units: positive int, the size of y_t.
        memory_size: N, locations (default 128).       memory_width: M, the size of a location (default 20).
        controller: `"lstm"` (default) or `"dense"`.   controller_units: positive int (default 100).
        read_heads, write_heads: positive ints (default 1 each).
        shift_range: the shifts cover -shift_range..shift_range (default 1).
        clip_value: the bound of the head parameters and the outputs (default 20.0; None: no clipping).
        memory_init: the constant the memory starts at (default 1e-6).
        output_activation: g (default None: logits; e.g. "sigmoid").
        per_step_outputs: y at every step ([batch, time, output_units], default) or at the last ([batch,
            output_units]).
        mask_padding: treat all-zero input steps as padding (the state is kept over them) (default False: the
            algorithmic tasks' answer steps are all-zero inputs and must run).
        kernel_initializer: of the controller, head and output kernels (default "glorot_uniform").

    Call arguments:
        inputs: [batch, time, features].

    Example:
        ```python
        model = zoo.models.get("ntm_copy", output_units=8)
        logits = model(np.zeros((4, 10, 9), "float32"))  # (4, 10, 8)
        trace = model.trace(np.zeros((1, 10, 9), "float32"))  # per-step weightings and memory, for figures
        ```

    References: A. Graves, G. Wayne, I. Danihelka, "Neural Turing Machines", arXiv:1410.5401, 2014;
    M. Collier, J. Beel, "Implementing Neural Turing Machines", ICANN 2018.
    """

    def __init__(
        self,
        output_units=8,
        memory_size=128,
        memory_width=20,
        controller="lstm",
        controller_units=100,
        read_heads=1,
        write_heads=1,
        shift_range=1,
        clip_value=20.0,
        memory_init=1e-6,
        output_activation=None,
        per_step_outputs=True,
        mask_padding=False,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.output_units = arguments.positive_int("output_units", output_units)
        self.output_activation = output_activation
        self.activation = arguments.activation("output_activation", output_activation)
        self.per_step_outputs = arguments.boolean("per_step_outputs", per_step_outputs)
        self.mask_padding = arguments.boolean("mask_padding", mask_padding)
        self.cell = NTMCell(
            self.output_units, memory_size=memory_size, memory_width=memory_width, controller=controller,
            controller_units=controller_units, read_heads=read_heads, write_heads=write_heads,
            shift_range=shift_range, clip_value=clip_value, memory_init=memory_init,
            kernel_initializer=kernel_initializer, name="ntm_cell", dtype=self.dtype_policy,
        )
        self.recurrent = keras.layers.RNN(self.cell, return_sequences=self.per_step_outputs, name="ntm")

    def call(self, inputs, training=False):
        mask = ops.any(ops.not_equal(inputs, 0.0), axis=-1) if self.mask_padding else None
        y = self.recurrent(inputs, mask=mask, training=training)
        return y if self.activation is None else self.activation(y)

    def trace(self, inputs):
        """Runs the cell step by step (eagerly) and returns what it did, for figures and inspection.

        Args:
            inputs: [batch, time, features] (no padding mask is applied).

        Returns:
            {"outputs": [batch, time, output_units] (after `output_activation`), "read_weightings": [batch, time, R,
            N], "write_weightings": [batch, time, W, N], "reads": [batch, time, R, M], "memory": [batch, time, N, M]
            (after each step's write)}: backend tensors.
        """
        inputs = ops.convert_to_tensor(inputs, dtype=self.compute_dtype)
        if not self.built:
            self(inputs[:, :1])
        states = self.cell.get_initial_state(ops.shape(inputs)[0])
        steps = {key: [] for key in ("outputs", "read_weightings", "write_weightings", "reads", "memory")}
        for t in range(inputs.shape[1]):
            output, states = self.cell(inputs[:, t], states)
            unpacked = self.cell.unpack_state(states)
            steps["outputs"].append(output if self.activation is None else self.activation(output))
            for key in ("read_weightings", "write_weightings", "reads", "memory"):
                steps[key].append(unpacked[key])
        return {key: ops.stack(values, axis=1) for key, values in steps.items()}

    def get_config(self):
        cell = self.cell
        return {
            **super().get_config(),
            "output_units": self.output_units,
            "memory_size": cell.memory_size,
            "memory_width": cell.memory_width,
            "controller": cell.controller_type,
            "controller_units": cell.controller_units,
            "read_heads": cell.read_heads,
            "write_heads": cell.write_heads,
            "shift_range": cell.shift_range,
            "clip_value": cell.clip_value,
            "memory_init": cell.memory_init,
            "output_activation": self.output_activation,
            "per_step_outputs": self.per_step_outputs,
            "mask_padding": self.mask_padding,
            "kernel_initializer": keras.initializers.serialize(cell.kernel_initializer),
        }
