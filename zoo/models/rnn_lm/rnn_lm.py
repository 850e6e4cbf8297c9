"""RNNLM: the recurrent neural network language model of Mikolov et al. (2010), stacked with dropout as in Zaremba
et al. (2014), with optionally tied input and output embeddings (Press & Wolf 2017; Inan et al. 2017)."""


import math
import numbers

import keras
from keras import ops

from zoo import arguments
from zoo.models.stacked_rnn.stacked_rnn import RECURRENT_LAYERS
from zoo.rnn.recurrent import cell_arguments


def state_sizes(cell):
    """The sizes of a cell's state tensors, as a list (a cell may give one int or a list)."""
    return list(cell.state_size) if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]


@keras.saving.register_keras_serializable(package="zoo", name="RNNLMUniform")
class _Uniform(keras.initializers.Initializer):
    """U(-scale, scale), from a new seed (drawn from Keras's global seed) at every call.

    Keras's `RandomUniform` keeps one seed and so repeats its draw for every weight it initialises: the three
    peepholes of an LSTM cell (one `peephole_initializer`) would start equal.
    """

    def __init__(self, scale):
        self.scale = scale

    def __call__(self, shape, dtype=None):
        return keras.initializers.RandomUniform(-self.scale, self.scale)(shape, dtype=dtype)

    def get_config(self):
        return {"scale": self.scale}


def uniform_layer_options(layer_class, scale):
    """The arguments that make every weight of a zoo recurrent layer's cell start U(-scale, scale): each of the
    cell's `*_initializer` arguments, and chrono initialisation and the LSTM's unit forget bias switched off (they
    would replace the biases' draw). A leaky cell's leak rates `alpha` are rates, not weights: they keep their
    values."""
    names = cell_arguments(layer_class.cell_class)
    options = {name: _Uniform(scale) for name in names if name.endswith("_initializer")}
    if "chrono_max_length" in names:
        options["chrono_max_length"] = None
    if "unit_forget_bias" in names:
        options["unit_forget_bias"] = False
    return options


def check_init_scale(value):
    """Returns `value` as a float if it is a positive finite number, or None (the layers' own initialisers)."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(
            f"init_scale must be a positive float (every weight drawn from U(-init_scale, init_scale)) or None (the "
            f"layers' own initialisers), got {value!r}"
        )
    return float(value)



@keras.saving.register_keras_serializable(package="zoo")
class RNNLM(keras.Model):
    """A recurrent language model: token embeddings, a stack of recurrent layers, a projection to the vocabulary.

    Equations (weights in brackets; row vectors; cell_l is the chosen zoo cell, see `zoo.cells`):

        x_t = C(w_t)                                          C: `embedding.embeddings` [vocab_size, embedding_dim]
        h^(1)_t = cell_1(dropout(x_t), h^(1)_{t-1})           weights of `<cell>_0` (`kernel`, `recurrent_kernel`,
        h^(l)_t = cell_l(dropout(h^(l-1)_t), h^(l)_{t-1})     `bias`, ...), `<cell>_1`, ...
        y_t = dropout(h^(L)_t) O + o                          O: `output.kernel` [units, vocab_size],
                                                              o: `output.bias` [vocab_size]
        y_t = dropout(h^(L)_t) C^T + o                        with `tie_embeddings`: O = C^T, o: `output_bias`

    y_t are the logits of w_{t+1}; the softmax belongs to the loss. Dropout acts only on the non-recurrent
    connections (Zaremba et al.); the cells' own `dropout` / `recurrent_dropout` can be set through `cell_options`.
    Tying the embeddings (Press & Wolf; Inan et al.) makes the output layer score a state h against every token's
    input embedding, which saves vocab_size * units weights and regularises; it needs units == embedding_dim.

    Args:
        vocab_size: positive int, number of token ids.
        cell: which recurrence: "elman", "jordan", "leaky", "lstm" or "gru" (default "lstm").
        units: positive int, size of every recurrent layer (default 128).
        num_layers: positive int, how many recurrent layers are stacked (default 1).
        embedding_dim: positive int, size of C(w) (default `None`: the same as `units`).
        dropout: rate in [0, 1) of the dropout on the embeddings, between layers and before the output while
            training (default 0).
        tie_embeddings: use C^T as the output projection, with its own bias (default `False`).
        cell_options: dict of further arguments of every recurrent layer (`peepholes`, `reset_after`, `alpha`, ...).
        pad_id: int in [0, vocab_size), the token that right-pads sequences (default 0). Padding only follows the
            real tokens and the model is causal, so it never reaches a real token's logits.
        init_scale: None (default: the layers' own initialisers: Glorot-uniform kernels, orthogonal recurrent
            kernels, zero biases, the LSTM's forget bias at 1, U(-0.05, 0.05) embeddings), or a positive float s:
            every weight (embeddings, kernels, recurrent kernels, peepholes, biases, the output layer) starts
            U(-s, s), as in Zaremba et al. (0.1, 0.05 and 0.04 for their small, medium and large models). It
            overrides the initialisers, `unit_forget_bias` and chrono initialisation (`chrono_max_length`) given
            in `cell_options`; a leaky cell's leak rates `alpha` keep their values.

    Call arguments:
        tokens: [batch, T] int32, right-padded with `pad_id`.
        training: whether dropout is active.
        initial_state: None (zeros), or the state to start from, in the layout of `initial_state(batch_size)`:
            e.g. the state a previous call returned, to go on with the same text (truncated BPTT on a stream
            carries it from one window into the next).
        mask: None, or bool [batch, T]: False at padded positions, which only follow the real ones. A masked step
            leaves every layer's state unchanged, so the returned state is the state after each row's last real
            token (its logits at masked positions are meaningless).
        return_state: also return the state after the last (real) token, in the layout of `initial_state`.

    Returns logits [batch, T, vocab_size]: logits[:, t] scores token t+1 given tokens[:, :t+1] (and the text
    before them that `initial_state` summarises); with `return_state`, `(logits, state)`.

    Decoding: `initial_state(batch_size)` is the tuple of every layer's cell states in layer order (e.g. for two LSTM
    layers `(h^(1), c^(1), h^(2), c^(2))`, each [batch, units]), all zeros as in `call`; `step(tokens [batch],
    state) -> (logits [batch, vocab_size], state)` runs each layer's cell once.

    Example:
        ```python
        model = RNNLM(vocab_size=10000, cell="lstm", units=200, num_layers=2, dropout=0.2, tie_embeddings=True)
        logits = model(np.zeros((8, 20), "int32"))  # (8, 20, 10000)
        ```

    References: T. Mikolov, M. Karafiat, L. Burget, J. Cernocky, S. Khudanpur, "Recurrent neural network based
    language model", Interspeech 2010; W. Zaremba, I. Sutskever, O. Vinyals, "Recurrent neural network
    regularization", arXiv:1409.2329, 2014; O. Press, L. Wolf, "Using the output embedding to improve language
    models", EACL 2017; H. Inan, K. Khosravi, R. Socher, "Tying word vectors and word classifiers: a loss framework
    for language modeling", ICLR 2017.
    """

    def __init__(
        self,
        vocab_size,
        cell="lstm",
        units=128,
        num_layers=1,
        embedding_dim=None,
        dropout=0.0,
        tie_embeddings=False,
        cell_options=None,
        pad_id=0,
        init_scale=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = arguments.positive_int("vocab_size", vocab_size)
        self.cell = arguments.one_of("cell", cell, tuple(RECURRENT_LAYERS))
        self.units = arguments.positive_int("units", units)
        self.num_layers = arguments.positive_int("num_layers", num_layers)
        self.embedding_dim = (
            self.units if embedding_dim is None else arguments.positive_int("embedding_dim", embedding_dim)
        )
        self.dropout = arguments.rate("dropout", dropout)
        self.tie_embeddings = arguments.boolean("tie_embeddings", tie_embeddings)
        self.cell_options = arguments.options("cell_options", cell_options)
        self.pad_id = arguments.token_id("pad_id", pad_id, self.vocab_size)
        self.init_scale = check_init_scale(init_scale)
        self.supports_masking = True  # `call` takes a mask of padded positions (it keeps the state there)

        # With init_scale, every layer gets its own U(-s, s) initialisers (the defaults otherwise).
        def uniform(*names):
            return {} if self.init_scale is None else {name: _Uniform(self.init_scale) for name in names}

        def layer_options():
            if self.init_scale is None:
                return self.cell_options
            return {**self.cell_options, **uniform_layer_options(RECURRENT_LAYERS[self.cell], self.init_scale)}

        self.embedding = keras.layers.Embedding(
            self.vocab_size, self.embedding_dim, name="embedding", **uniform("embeddings_initializer")
        )
        self.recurrent_layers = [
            RECURRENT_LAYERS[self.cell](
                self.units, return_sequences=True, return_state=True, name=f"{self.cell}_{index}", **layer_options()
            )
            for index in range(self.num_layers)
        ]
        # dropouts[0] acts on the embeddings, dropouts[l] between layers l - 1 and l.
        self.dropouts = [
            keras.layers.Dropout(self.dropout, name=f"dropout_{index}") for index in range(self.num_layers)
        ]
        self.output_dropout = keras.layers.Dropout(self.dropout, name="output_dropout")
        top_size = self.recurrent_layers[-1].cell.output_size
        self.output_projection = None
        if self.tie_embeddings:
            if top_size != self.embedding_dim:
                raise ValueError(
                    f"tie_embeddings needs the top recurrent layer's output size to equal embedding_dim, got output "
                    f"size {top_size} (units={self.units}) and embedding_dim={self.embedding_dim}; pass "
                    f"embedding_dim={top_size} or tie_embeddings=False"
                )
        else:
            self.output_projection = keras.layers.Dense(
                self.vocab_size, name="output", **uniform("kernel_initializer", "bias_initializer")
            )

    def build(self, tokens_shape=None):
        self.embedding.build((None,))
        size = self.embedding_dim
        for layer in self.recurrent_layers:
            layer.build((None, None, size))
            size = layer.cell.output_size
        if self.tie_embeddings:
            initializer = "zeros" if self.init_scale is None else _Uniform(self.init_scale)
            self.output_bias = self.add_weight(shape=(self.vocab_size,), name="output_bias", initializer=initializer)
        else:
            self.output_projection.build((None, size))

    def _logits(self, h, training):
        """y = dropout(h) O + o for h [..., top output size]; returns [..., vocab_size]."""
        h = self.output_dropout(h, training=training)
        if self.tie_embeddings:
            return ops.matmul(h, ops.transpose(self.embedding.embeddings)) + self.output_bias
        return self.output_projection(h)

    def call(self, tokens, training=False, initial_state=None, mask=None, return_state=False):
        x = self.embedding(ops.cast(tokens, "int32"))
        if initial_state is not None:
            initial_state = self._split_state(initial_state, ops.shape(tokens)[0])
        final_state = []
        for index, (layer, dropout) in enumerate(zip(self.recurrent_layers, self.dropouts)):
            outputs = layer(
                dropout(x, training=training),
                initial_state=None if initial_state is None else initial_state[index],
                mask=mask,
                training=training,
            )
            x = outputs[0]
            final_state.extend(outputs[1:])
        logits = self._logits(x, training)
        return (logits, tuple(final_state)) if return_state else logits

    def _split_state(self, state, batch_size):
        """The flat state tuple of `initial_state` -> one list of cell states per layer, checked."""
        state = tuple(state)
        expected = [size for layer in self.recurrent_layers for size in state_sizes(layer.cell)]
        if len(state) != len(expected):
            raise ValueError(
                f"initial_state must hold {len(expected)} tensors (every layer's cell states in layer order, as "
                f"`initial_state(batch_size)` gives them, of sizes {expected}), got {len(state)}"
            )
        for position, (tensor, size) in enumerate(zip(state, expected)):
            shape = tuple(tensor.shape)
            if len(shape) != 2 or (shape[1] is not None and shape[1] != size):
                raise ValueError(
                    f"initial_state[{position}] must be [batch, {size}], got shape {shape}"
                )
        per_layer, position = [], 0
        for layer in self.recurrent_layers:
            count = len(state_sizes(layer.cell))
            per_layer.append([ops.cast(t, self.compute_dtype) for t in state[position : position + count]])
            position += count
        return per_layer

    def initial_state(self, batch_size):
        state = []
        for layer in self.recurrent_layers:
            state.extend(ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in state_sizes(layer.cell))
        return tuple(state)

    def step(self, tokens, state):
        x = self.embedding(ops.cast(tokens, "int32"))
        new_state, position = [], 0
        for layer in self.recurrent_layers:
            count = len(state_sizes(layer.cell))
            x, layer_state = layer.cell(x, list(state[position : position + count]), training=False)
            new_state.extend(layer_state)
            position += count
        return self._logits(x, training=False), tuple(new_state)

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "cell": self.cell,
            "units": self.units,
            "num_layers": self.num_layers,
            "embedding_dim": self.embedding_dim,
            "dropout": self.dropout,
            "tie_embeddings": self.tie_embeddings,
            "cell_options": self.cell_options,
            "pad_id": self.pad_id,
            "init_scale": self.init_scale,
        }
