"""GatedCNNLM: the gated convolutional language model of Dauphin, Fan, Auli & Grangier (2017), "Language Modeling with
Gated Convolutional Networks"."""


import keras
from keras import ops

from zoo import arguments
from zoo.models.token_window import checked_window
from zoo.models.token_window import last_window
from zoo.models.token_window import slide_window

# In a decoding window, the token id of positions before the start of the sequence.
BEFORE_START = -1


def gated_linear_unit(z):
    """h = A ⊗ σ(B) for z = [A; B], the two halves of a convolution's output channels.

    Args:
        z: [..., 2 * channels], X * W + b side by side with X * V + c.

    Returns:
        [..., channels].
    """
    linear, gate = ops.split(z, 2, axis=-1)
    return linear * ops.sigmoid(gate)


def receptive_field(kernel_size, num_blocks):
    """How many tokens the last position's output depends on: each causal convolution reaches k - 1 further back."""
    return 1 + num_blocks * (kernel_size - 1)




@keras.saving.register_keras_serializable(package="zoo")
class GatedCNNLM(keras.Model):
    """Dauphin et al.'s gated convolutional language model: residual blocks of causal convolutions with gated linear
    units, over token embeddings.

    Equations (the paper's notation; weights in brackets; `*` a causal 1-D convolution over time whose input is
    left-padded with k - 1 zero vectors, so that position t sees positions t - k + 1, ..., t and nothing later):

        E = [D_{w_0}, ..., D_{w_{T-1}}]            D: `embedding.embeddings` [vocab_size, embedding_dim]
        X_0 = E P + p                              P: `input_projection.kernel` [embedding_dim, channels], p: its
                                                   `bias`; only when embedding_dim != channels (else X_0 = E)
        h_l(X) = (X * W_l + b_l) ⊗ σ(X * V_l + c_l)     W_l = `block_l.kernel[:, :, :channels]`,
                                                        V_l = `block_l.kernel[:, :, channels:]`
                                                        (`block_l.kernel` [k, channels, 2 channels]);
                                                        b_l = `block_l.bias[:channels]`, c_l = `block_l.bias[channels:]`
        X_{l+1} = X_l + h_l(X_l)                   residual connection around each block, l = 0 .. num_blocks - 1
        y_t = X_L[t] O + o                         O: `output.kernel` [channels, vocab_size], o: `output.bias`

    y_t are the logits of token t+1; the softmax belongs to the loss (the paper's adaptive softmax is not used).
    The output at t depends on R = 1 + num_blocks (k - 1) tokens, t - R + 1 ... t.

    Args:
        vocab_size: positive int, number of token ids.
        embedding_dim: positive int, size of D_w (default 64).
        channels: positive int, width of every block (default 64).
        kernel_size: k, positive int, width of the convolutions (default 4).
        num_blocks: L, positive int, how many gated residual blocks are stacked (default 4).
        dropout: rate in [0, 1) of the dropout on X_0 and on each block's output h_l while training (default 0).
        pad_id: int in [0, vocab_size), the token that right-pads sequences (default 0). Padding only follows the
            real tokens and the model is causal, so it never reaches a real token's logits.

    Call arguments:
        tokens: [batch, T] int32, right-padded with `pad_id`.
        training: whether dropout is active.
        initial_state: None (the start of a text), or the R tokens before tokens[:, 0], in the layout of
            `initial_state(batch_size)`: e.g. the state a previous call returned, to go on with the same text
            (truncated BPTT on a stream carries it from one window into the next). The first positions then see
            those tokens through the convolutions, exactly as if both calls' tokens were one sequence.
        mask: None, or bool [batch, T]: False at padded positions, which only follow the real ones. It only
            decides the returned state (the model is causal: padding never reaches a real token's logits; the
            logits at masked positions are meaningless).
        return_state: also return the state after each row's last real token: `(window,)`, the last R tokens up
            to it (-1 before the start), in the layout of `initial_state`.

    Returns logits [batch, T, vocab_size]: logits[:, t] scores token t+1 given tokens[:, :t+1] (and the tokens
    of `initial_state` before them); with `return_state`, `(logits, state)`.

    Decoding: `initial_state(batch_size)` is `(window,)`, the last R tokens [batch, R], where -1 marks positions
    before the start (zero vectors, as the convolutions' padding); `step(tokens [batch], state) -> (logits [batch,
    vocab_size], state)` appends one token and recomputes the blocks over the window.

    Example:
        ```python
        model = GatedCNNLM(vocab_size=10000, channels=128, kernel_size=4, num_blocks=6)
        logits = model(np.zeros((8, 20), "int32"))  # (8, 20, 10000)
        ```

    Reference: Y. N. Dauphin, A. Fan, M. Auli, D. Grangier, "Language modeling with gated convolutional networks",
    ICML 2017.
    """

    def __init__(
        self,
        vocab_size,
        embedding_dim=64,
        channels=64,
        kernel_size=4,
        num_blocks=4,
        dropout=0.0,
        pad_id=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = arguments.positive_int("vocab_size", vocab_size)
        self.embedding_dim = arguments.positive_int("embedding_dim", embedding_dim)
        self.channels = arguments.positive_int("channels", channels)
        self.kernel_size = arguments.positive_int("kernel_size", kernel_size)
        self.num_blocks = arguments.positive_int("num_blocks", num_blocks)
        self.dropout = arguments.rate("dropout", dropout)
        self.pad_id = arguments.token_id("pad_id", pad_id, self.vocab_size)
        self.receptive_field = receptive_field(self.kernel_size, self.num_blocks)
        self.supports_masking = True  # `call` takes a mask of padded positions (for the state it returns)

        self.embedding = keras.layers.Embedding(self.vocab_size, self.embedding_dim, name="embedding")
        self.input_projection = None
        if self.embedding_dim != self.channels:
            self.input_projection = keras.layers.Dense(self.channels, name="input_projection")
        self.input_dropout = keras.layers.Dropout(self.dropout, name="input_dropout")
        self.blocks = [
            keras.layers.Conv1D(2 * self.channels, self.kernel_size, padding="causal", name=f"block_{index}")
            for index in range(self.num_blocks)
        ]
        self.block_dropouts = [
            keras.layers.Dropout(self.dropout, name=f"block_dropout_{index}") for index in range(self.num_blocks)
        ]
        self.output_projection = keras.layers.Dense(self.vocab_size, name="output")

    def build(self, tokens_shape=None):
        self.embedding.build((None,))
        if self.input_projection is not None:
            self.input_projection.build((None, None, self.embedding_dim))
        for block in self.blocks:
            block.build((None, None, self.channels))
        self.output_projection.build((None, None, self.channels))

    def _features(self, tokens, valid, training):
        """X_L [batch, T, channels] from tokens [batch, T]; `valid` ([batch, T, 1] or None) zeroes positions before
        the start at every block's input, as the convolutions' own zero padding does."""
        x = self.embedding(tokens)
        if self.input_projection is not None:
            x = self.input_projection(x)
        x = self.input_dropout(x, training=training)
        for block, dropout in zip(self.blocks, self.block_dropouts):
            block_input = x if valid is None else x * valid
            x = x + dropout(gated_linear_unit(block(block_input)), training=training)
        return x

    def call(self, tokens, training=False, initial_state=None, mask=None, return_state=False):
        tokens = ops.cast(tokens, "int32")
        R = self.receptive_field
        if initial_state is None:
            # The start of a text: the convolutions' own causal zero padding.
            logits = self.output_projection(self._features(tokens, None, training))
            sequence = ops.pad(tokens, [[0, 0], [R, 0]], constant_values=BEFORE_START)
        else:
            # The R tokens before tokens[:, 0] run through the blocks with them: every output at t >= 0 reaches back
            # R - 1 tokens, all inside the window, and the window's BEFORE_START positions read as the zero padding.
            window = checked_window(initial_state, R, f"{BEFORE_START}", tokens.shape[0])
            sequence = ops.concatenate([window, tokens], axis=1)
            valid = ops.expand_dims(ops.cast(ops.greater_equal(sequence, 0), self.compute_dtype), -1)
            features = self._features(ops.maximum(sequence, 0), valid, training)
            logits = self.output_projection(features[:, R:])
        return (logits, (last_window(sequence, R, mask),)) if return_state else logits

    def initial_state(self, batch_size):
        return (ops.full((batch_size, self.receptive_field), BEFORE_START, dtype="int32"),)

    def step(self, tokens, state):
        (window,) = state
        window = slide_window(window, tokens)
        valid = ops.expand_dims(ops.cast(ops.greater_equal(window, 0), self.compute_dtype), -1)
        features = self._features(ops.maximum(window, 0), valid, training=False)
        return self.output_projection(features[:, -1]), (window,)

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "channels": self.channels,
            "kernel_size": self.kernel_size,
            "num_blocks": self.num_blocks,
            "dropout": self.dropout,
            "pad_id": self.pad_id,
        }
