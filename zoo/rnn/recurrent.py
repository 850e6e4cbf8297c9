"""Recurrent: the sequence layer that runs a zoo cell over time, with the usual Keras RNN arguments."""

import inspect

import keras
from keras import ops

from zoo import arguments

# Constructor arguments of keras.layers.Layer that a sequence layer accepts besides the RNN's and the cell's.
_LAYER_ARGUMENTS = (
    "name",
    "dtype",
    "trainable",
    "autocast",
    "activity_regularizer",
    "input_dim",
    "input_shape",
    "batch_input_shape",
    "batch_size",
)
_RNN_ARGUMENTS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask")


def cell_arguments(cell_class):
    """The constructor argument names of a zoo cell class, its own and its bases' (up to `keras.layers.Layer`)."""
    names = []
    for klass in cell_class.__mro__:
        if klass is keras.layers.Layer:
            break
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for parameter in inspect.signature(init).parameters.values():
            keyword = parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
            if keyword and parameter.name != "self" and parameter.name not in names:
                names.append(parameter.name)
    return names


def _cudnn_path_blocks_xla():
    """Whether Keras's cuDNN path of `LSTM`/`GRU`, where it may run, keeps a model from being compiled with XLA.

    Only on TensorFlow with a GPU: TensorFlow's cuDNN RNN op has no XLA kernel. Under JAX the cuDNN path
    (`jax.experimental.rnn`) compiles inside `jax.jit` like any other op, and on the other backends Keras's own
    `LSTM`/`GRU` do not opt out either. The backend is asked first: `keras.distribution.list_devices("gpu")` raises
    under JAX on a machine without a GPU (TensorFlow's returns an empty list).
    """
    return keras.backend.backend() == "tensorflow" and bool(keras.distribution.list_devices("gpu"))


# The fused loops run on TensorFlow only, where keras.ops.scan's `unroll` is the while loop's `parallel_iterations`:
# how many iterations may run at once (their independent ops overlap), 32 as in Keras's own RNN loop.
PARALLEL_ITERATIONS = 32
# Steps run by one iteration of the fused loops' while loops, when it divides the (static) sequence length: each
# iteration costs a fixed overhead (loop control, reading and writing the carried tensors), paid once for all its
# steps. The first divisor of the length in this list is taken; none (or an unknown length): one step per iteration.
STEPS_PER_ITERATION = (10, 8, 5, 4, 3, 2)


def scan_steps(step, state, xs, reverse=False):
    """`keras.ops.scan(step, state, xs, reverse)`, running several steps per loop iteration where it can.

    Args:
        step: `step(state, inputs) -> (state, outputs)`, `outputs` a tuple of tensors shaped as `state`'s.
        state: a tuple of tensors, the initial state.
        xs: a tuple of tensors [time, ...], the inputs of every step.
        reverse: run from the last step to the first (outputs stay in time order).

    Returns:
        (final state, outputs): the outputs stacked over time, [time, ...] each.
    """
    state, xs = tuple(state), tuple(xs)
    time = xs[0].shape[0]
    if time is None:
        if len(xs) > 1:
            # keras.ops.scan (on TensorFlow) cannot scan over several tensors of unknown length: pack them into one.
            step, xs = _packed_inputs(step, xs, state[0].dtype)
        return ops.scan(step, state, xs, reverse=reverse, unroll=PARALLEL_ITERATIONS)
    per_iteration = next((k for k in STEPS_PER_ITERATION if time % k == 0 and time > k), 1)
    if per_iteration == 1:
        return ops.scan(step, state, xs, reverse=reverse, unroll=PARALLEL_ITERATIONS)
    k = per_iteration
    # ops.scan's outputs have its carry's structure and shapes, so the carry holds, besides the state, the outputs of
    # the iteration's k steps ([k, ...] each).
    count = len(state)

    def chunk(carry, inputs):
        inner = carry[count:]
        outputs = [None] * k
        for j in reversed(range(k)) if reverse else range(k):
            inner, outputs[j] = step(tuple(inner), tuple(x[j] for x in inputs))
        stacked = tuple(ops.stack([out[n] for out in outputs]) for n in range(count))
        return stacked + tuple(inner), stacked + tuple(inner)

    start = tuple(ops.repeat(ops.expand_dims(s, 0), k, axis=0) for s in state) + tuple(state)
    chunks = tuple(ops.reshape(x, (time // k, k, -1) + tuple(x.shape[2:])) for x in xs)
    final, outputs = ops.scan(chunk, start, chunks, reverse=reverse, unroll=PARALLEL_ITERATIONS)
    return final[count:], tuple(ops.reshape(o, (time, -1) + tuple(o.shape[3:])) for o in outputs[:count])


def _packed_inputs(step, xs, dtype):
    """`step` and `xs` ([time, batch, width] tensors) rewritten to scan over one tensor, xs concatenated on the
    last axis in `dtype` (bool inputs as 0 and 1, restored to bool for `step`)."""
    dtypes = [keras.backend.standardize_dtype(x.dtype) for x in xs]
    widths = [x.shape[-1] for x in xs]
    packed = ops.concatenate([ops.cast(x, dtype) for x in xs], axis=-1)
    boundaries = [sum(widths[: n + 1]) for n in range(len(widths) - 1)]

    def unpacked_step(state, inputs):
        pieces = ops.split(inputs, boundaries, axis=-1)
        pieces = [ops.cast(p, "bool") if d == "bool" else p for p, d in zip(pieces, dtypes)]
        return step(state, tuple(pieces))

    return unpacked_step, packed


def _gpu_visible():
    """Whether the backend sees a GPU (where Keras's cuDNN path of `LSTM`/`GRU` may run); False if it cannot say."""
    try:
        return bool(keras.distribution.list_devices("gpu"))
    except RuntimeError:
        return False


def masked_outputs(states, mask, zero_output_for_mask):
    """The outputs `keras.layers.RNN` returns from the states of a masked run, all time-major.

    Args:
        states: [time, batch, units], h_t after each step, masked steps holding h_{t-1} (the cell's output is h_t).
        mask: [time, batch, 1] in `states`' dtype, 1 for a step that ran, 0 for a masked one.
        zero_output_for_mask: zeros at masked steps; otherwise a masked step repeats the last output, and steps
            before the first unmasked one output zeros (Keras's output starts at zero, the state at initial_state).

    Returns:
        [time, batch, units].
    """
    if zero_output_for_mask:
        return states * mask
    seen = ops.cast(ops.cumsum(mask, axis=0) > 0, states.dtype)
    return states * seen


class Recurrent(keras.layers.RNN):
    """Base of the zoo sequence layers: `keras.layers.RNN` over one zoo cell, configured by flat arguments.

    A subclass names its cell in `cell_class`; the layer then accepts the cell's arguments (`units`, `dropout`,
    `peepholes`, ...) next to the RNN's (`return_sequences`, `return_state`, `go_backwards`, `stateful`, `unroll`,
    `zero_output_for_mask`) and the layer's (`name`, `dtype`, ...), and `get_config` returns them flat, as
    `keras.layers.LSTM` does, so that `Bidirectional` and `.keras` files work unchanged.

    Call arguments, outputs and masking are those of `keras.layers.RNN`: inputs [batch, time, features], an optional
    boolean `mask` [batch, time] (masked steps keep the state and repeat the last output), an optional
    `initial_state` list; output [batch, output_size], or [batch, time, output_size] with `return_sequences`, followed
    by the final states with `return_state`.

    A subclass may also have a fused loop (`LSTM`, `GRU`): it overrides `fused_loop` and extends
    `fused_loop_applies`, and `inner_loop` runs that loop for the calls it applies to (on TensorFlow, from
    `fused_loop_min_units` units, with the default activations, without `unroll`, recurrent dropout in training, or
    a cuDNN dispatch to keep), Keras's otherwise.
    """

    cell_class = None
    cell_name = None

    def __init__(self, units, **kwargs):
        if self.cell_class is None:
            raise ValueError(
                "Recurrent is a base class: subclass it with `cell_class = <a zoo cell class>`, "
                "or run any cell with keras.layers.RNN(cell)"
            )
        own = set(cell_arguments(self.cell_class)) - {"units"}
        cell_kwargs = {key: kwargs.pop(key) for key in list(kwargs) if key in own}
        unknown = sorted(set(kwargs) - set(_LAYER_ARGUMENTS) - set(_RNN_ARGUMENTS))
        if unknown:
            valid = sorted(own | {"units"} | set(_RNN_ARGUMENTS) | set(_LAYER_ARGUMENTS))
            raise ValueError(f"{type(self).__name__} got unknown argument(s) {unknown}; valid arguments: {valid}")
        cell = self.cell_class(
            units,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name=self.cell_name,
            **cell_kwargs,
        )
        # Explicitly RNN's constructor: LSTM and GRU also derive from keras.layers.LSTM/GRU (for their cuDNN paths),
        # whose constructors would build a Keras cell instead of ours.
        keras.layers.RNN.__init__(self, cell, **kwargs)
        self.input_spec = keras.layers.InputSpec(ndim=3)

    @property
    def units(self):
        return self.cell.units

    def build(self, sequences_shape, initial_state_shape=None):
        shape = tuple(sequences_shape)
        if len(shape) != 3 or shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} expects inputs of shape (batch, time, features) with a known feature size, "
                f"got shape {shape}"
            )
        super().build(sequences_shape, initial_state_shape)
        # From now on a call with another feature size fails at the layer's door, naming the expected size.
        self.input_spec = keras.layers.InputSpec(ndim=3, axes={-1: shape[-1]})

    def _use_cudnn(self, use_cudnn, kernel_computes_cell):
        """Validates `use_cudnn` and returns the value to store.

        `kernel_computes_cell` says whether cuDNN's kernel computes this cell's equations at all (not, e.g., with
        peepholes); when it does not, the generic loop always runs. Activations, bias and unrolling are checked
        by Keras at call time, as for `keras.layers.LSTM`.
        """
        arguments.one_of("use_cudnn", use_cudnn, ("auto", True, False))
        if not kernel_computes_cell:
            if use_cudnn is True:
                raise ValueError(
                    f"use_cudnn=True is not possible for this {type(self).__name__}: cuDNN's kernel does not compute "
                    f"it ({self._cudnn_limit}); pass use_cudnn='auto' or False"
                )
            return False
        cell = self.cell
        fast_path_possible = (
            use_cudnn in ("auto", True)
            and cell.activation is keras.activations.tanh
            and cell.recurrent_activation is keras.activations.sigmoid
            and cell.use_bias
            and not self.unroll
        )
        if fast_path_possible and _cudnn_path_blocks_xla():
            # Tell Keras not to jit-compile a model that holds this layer, as keras.layers.LSTM/GRU do.
            self.supports_jit = False
        return use_cudnn

    # The fused loop: a subclass that has one (LSTM, GRU) overrides `fused_loop` and extends `fused_loop_applies`.
    # Below `fused_loop_min_units` units Keras's loop runs: there the per-step element-wise work, not the matrix
    # products the fused loop batches, dominates a step, and Keras's loop was measured faster on the CPU.
    fused_loop_min_units = 1

    def fused_loop_applies(self, training):
        """Whether `fused_loop` may run this call instead of Keras's loop; the conditions every fused loop shares."""
        cell = self.cell
        return (
            type(self).fused_loop is not Recurrent.fused_loop
            and cell.units >= self.fused_loop_min_units
            and keras.backend.backend() == "tensorflow"
            and not self.unroll
            and cell.activation is keras.activations.tanh
            and cell.recurrent_activation is keras.activations.sigmoid
            and not (training and cell.recurrent_dropout > 0.0)
            and self._keras_loop_not_required()
        )

    def _keras_loop_not_required(self):
        # Keras's cuDNN dispatch stays as it is: use_cudnn=True always goes to Keras (which runs cuDNN or says why
        # it cannot), and so does use_cudnn="auto" wherever a GPU is visible.
        use_cudnn = getattr(self, "use_cudnn", False)
        return use_cudnn is not True and not (use_cudnn == "auto" and _gpu_visible())

    def fused_loop(self, sequences, initial_state, mask, training):
        """Returns (last_output, outputs, final_states) as `keras.layers.RNN.inner_loop` does."""
        raise NotImplementedError(f"{type(self).__name__} has no fused loop")

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if self.fused_loop_applies(training):
            if isinstance(mask, (list, tuple)):
                mask = mask[0]
            return self.fused_loop(sequences, list(initial_state), mask, training)
        return super().inner_loop(sequences, initial_state, mask=mask, training=training)

    def project_inputs(self, sequences, mask, training, kernel, bias):
        """U x_t + b for every step at once, time-major, in the order the loop runs, and the mask to match.

        Args:
            sequences: [batch, time, features]; `dropout` (one mask per sequence, Keras's) applies when training.
            mask: None or [batch, time].
            kernel: U, [features, width].      bias: None or [width].

        Returns:
            ([time, batch, width], None or a [time, batch, 1] bool mask), both reversed in time with `go_backwards`.
        """
        if training and self.cell.dropout > 0.0:
            sequences = sequences * ops.expand_dims(self.cell.get_dropout_mask(sequences[:, 0, :]), 1)
        time, batch = ops.shape(sequences)[1], ops.shape(sequences)[0]
        sequences = ops.reshape(ops.transpose(sequences, (1, 0, 2)), (-1, sequences.shape[-1]))
        projected = ops.reshape(ops.matmul(sequences, kernel), (time, batch, kernel.shape[-1]))
        if bias is not None:
            projected = projected + bias
        if mask is not None:
            mask = ops.expand_dims(ops.transpose(ops.cast(mask, "bool")), -1)
        if self.go_backwards:
            projected = ops.flip(projected, axis=0)
            mask = None if mask is None else ops.flip(mask, axis=0)
        return projected, mask

    def loop_results(self, states, final_states, mask):
        """(last_output, outputs, final_states) as `keras.layers.RNN.inner_loop` returns them, from `states`
        ([time, batch, units], the output state h_t after every step, time-major in the order the loop ran)."""
        if mask is not None:
            states = masked_outputs(states, ops.cast(mask, states.dtype), self.zero_output_for_mask)
        last_output = states[-1]
        if self.return_sequences:
            outputs = ops.transpose(states, (1, 0, 2))
        else:
            outputs = ops.expand_dims(last_output, 1)
        return last_output, outputs, final_states

    def get_config(self):
        config = keras.layers.RNN.get_config(self)
        config.pop("cell")
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        return {**config, **cell_config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
