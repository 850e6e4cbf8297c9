"""Recurrent: the sequence layer that runs a zoo cell over time, with the usual Keras RNN arguments."""

import inspect

import keras

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
