"""FeedForwardLM: the neural probabilistic language model of Bengio, Ducharme, Vincent & Jauvin (2003), "A Neural
Probabilistic Language Model"."""

import numbers

import keras
from keras import ops

from zoo import arguments
from zoo.models.token_window import checked_window
from zoo.models.token_window import last_window
from zoo.models.token_window import slide_window


@keras.saving.register_keras_serializable(package="zoo")
class FeedForwardLM(keras.Model):
    """Bengio et al.'s n-gram neural language model: the next token from the embeddings of the n-1 previous ones.

    Equations (the paper's notation; weights in brackets; row vectors, so `W x` is computed as `x @ kernel`):

        x = [C(w_{t-n+2}); ...; C(w_{t-1}); C(w_t)]     C: `embedding.embeddings` [vocab_size, m]; the n-1 most
                                                        recent embeddings, oldest first, concatenated: [(n-1) m]
        y = b + W x + U tanh(d + H x)                   H: `hidden.kernel` [(n-1) m, h], d: `hidden.bias` [h]
                                                        U: `output.kernel` [h, vocab_size], b: `output.bias`
                                                        W: `direct.kernel` [(n-1) m, vocab_size] (only with
                                                        `direct_connections`)
        P(w_{t+1} = i | w_{t-n+2}, ..., w_t) = softmax(y)_i

    y are the logits; the softmax belongs to the loss. Positions before the start of a sequence read as `pad_id`,
    so the first prediction sees n-2 copies of C(pad_id) and C(w_0).

    Args:
        vocab_size: positive int, number of token ids.
        order: n, an int >= 2: the model conditions on the n-1 previous tokens (default 5).
        embedding_dim: m, positive int, size of a token's feature vector C(w) (default 64).
        hidden_units: h, positive int, size of the tanh hidden layer (default 128).
        direct_connections: whether the embeddings also reach the output linearly through W (default `True`).
        dropout: rate in [0, 1) of the dropout on x and on the hidden layer while training (default 0; the paper
            has none).
        pad_id: int in [0, vocab_size), the token that fills positions before the start and right-pads sequences
            (default 0).

    Call arguments:
        tokens: [batch, T] int32, right-padded with `pad_id`.
        training: whether dropout is active.
        initial_state: None (the start of a text: n-1 `pad_id`s), or the n-1 tokens before tokens[:, 0], in the
            layout of `initial_state(batch_size)`: e.g. the state a previous call returned, to go on with the same
            text (truncated BPTT on a stream carries it from one window into the next). The first positions then
            see those tokens as their context, exactly as if both calls' tokens were one sequence.
        mask: None, or bool [batch, T]: False at padded positions, which only follow the real ones. It only
            decides the returned state (the model is causal: padding never reaches a real token's logits; the
            logits at masked positions are meaningless).
        return_state: also return the state after each row's last real token: `(window,)`, the last n-1 tokens up
            to it, in the layout of `initial_state`.

    Returns logits [batch, T, vocab_size]: logits[:, t] scores token t+1 given tokens[:, :t+1] (in fact only the
    n-1 most recent of them, reaching back into `initial_state`); with `return_state`, `(logits, state)`.

    Decoding: `initial_state(batch_size)` is `(window,)`, the last n-1 tokens [batch, n-1] (all `pad_id`);
    `step(tokens [batch], state) -> (logits [batch, vocab_size], state)` appends one token to the window.

    Example:
        ```python
        model = FeedForwardLM(vocab_size=10000, order=5)
        logits = model(np.zeros((8, 20), "int32"))  # (8, 20, 10000)
        ```

    Reference: Y. Bengio, R. Ducharme, P. Vincent, C. Jauvin, "A neural probabilistic language model", JMLR 3,
    2003.
    """

    def __init__(
        self,
        vocab_size,
        order=5,
        embedding_dim=64,
        hidden_units=128,
        direct_connections=True,
        dropout=0.0,
        pad_id=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = arguments.positive_int("vocab_size", vocab_size)
        if isinstance(order, bool) or not isinstance(order, numbers.Integral) or order < 2:
            raise ValueError(f"order must be an int >= 2 (the model sees order - 1 previous tokens), got {order!r}")
        self.order = int(order)
        self.embedding_dim = arguments.positive_int("embedding_dim", embedding_dim)
        self.hidden_units = arguments.positive_int("hidden_units", hidden_units)
        self.direct_connections = arguments.boolean("direct_connections", direct_connections)
        self.dropout = arguments.rate("dropout", dropout)
        self.pad_id = arguments.token_id("pad_id", pad_id, self.vocab_size)
        self.context_size = self.order - 1
        self.supports_masking = True  # `call` takes a mask of padded positions (for the state it returns)

        self.embedding = keras.layers.Embedding(self.vocab_size, self.embedding_dim, name="embedding")
        self.input_dropout = keras.layers.Dropout(self.dropout, name="input_dropout")
        self.hidden = keras.layers.Dense(self.hidden_units, activation="tanh", name="hidden")
        self.hidden_dropout = keras.layers.Dropout(self.dropout, name="hidden_dropout")
        self.output_projection = keras.layers.Dense(self.vocab_size, name="output")
        self.direct = None
        if self.direct_connections:
            self.direct = keras.layers.Dense(self.vocab_size, use_bias=False, name="direct")

    def build(self, tokens_shape=None):
        features = self.context_size * self.embedding_dim
        self.embedding.build((None,))
        self.hidden.build((None, features))
        self.output_projection.build((None, self.hidden_units))
        if self.direct is not None:
            self.direct.build((None, features))

    def _scores(self, x, training):
        """y = b + W x + U tanh(d + H x) for x [..., (n-1) m]; returns [..., vocab_size]."""
        x = self.input_dropout(x, training=training)
        hidden = self.hidden_dropout(self.hidden(x), training=training)
        y = self.output_projection(hidden)
        if self.direct is not None:
            y = y + self.direct(x)
        return y

    def call(self, tokens, training=False, initial_state=None, mask=None, return_state=False):
        tokens = ops.cast(tokens, "int32")
        n = self.context_size
        if initial_state is None:
            sequence = ops.pad(tokens, [[0, 0], [n, 0]], constant_values=self.pad_id)
        else:
            window = checked_window(initial_state, n, f"pad_id={self.pad_id}", tokens.shape[0])
            sequence = ops.concatenate([window, tokens], axis=1)
        # sequence [batch, n + T]: token t is sequence[:, n + t], and the one `back` steps before it
        # sequence[:, n + t - back]; the context is oldest first: back = n - 1, ..., 0.
        x = ops.concatenate(
            [self.embedding(sequence[:, n - back : (-back or None)]) for back in reversed(range(n))], axis=-1
        )
        logits = self._scores(x, training)
        return (logits, (last_window(sequence, n, mask),)) if return_state else logits

    def initial_state(self, batch_size):
        return (ops.full((batch_size, self.context_size), self.pad_id, dtype="int32"),)

    def step(self, tokens, state):
        (window,) = state
        window = slide_window(window, tokens)
        x = ops.concatenate([self.embedding(window[:, j]) for j in range(self.context_size)], axis=-1)
        return self._scores(x, training=False), (window,)

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "order": self.order,
            "embedding_dim": self.embedding_dim,
            "hidden_units": self.hidden_units,
            "direct_connections": self.direct_connections,
            "dropout": self.dropout,
            "pad_id": self.pad_id,
        }
