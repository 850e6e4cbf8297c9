"""SequenceLabeller: one output per input step, the lecture's case 2 (speech-recognition-style transduction), with the
previous output optionally fed back into the next step (Jordan-style output recurrence, trained by teacher forcing;
R. J. Williams & D. Zipser, "A learning algorithm for continually running fully recurrent neural networks", 1989)."""

import keras
from keras import ops

from zoo import arguments
from zoo.models.stacked_rnn.stacked_rnn import RECURRENT_LAYERS


def shift_tags(tags, start_tag):
    """The teacher-forcing inputs of a feedback labeller: the gold tags shifted right by one, the start tag first.

    Args:
        tags: int [batch, time], y_1 .. y_T.
        start_tag: int, the id of y_0.

    Returns:
        int32 [batch, time], y_0 .. y_{T-1}.
    """
    tags = ops.cast(tags, "int32")
    start = ops.full((ops.shape(tags)[0], 1), start_tag, dtype="int32")
    return ops.concatenate([start, tags[:, :-1]], axis=1)


def keep_where_masked(mask, new, old):
    """`new` where `mask` [batch] is true, `old` elsewhere: a masked step keeps what it had."""
    return ops.where(ops.expand_dims(mask, -1) if len(new.shape) > 1 else mask, new, old)


@keras.saving.register_keras_serializable(package="zoo")
class SequenceLabeller(keras.Model):
    """Tags every step of a sequence: logits [batch, T, num_tags] for token ids [batch, T], or for feature vectors
    [batch, T, features] (e.g. acoustic frames) when `vocab_size` is None.

    Without feedback (weights in brackets; row vectors):

        e_t = E[x_t]                                  E: `embedding/embeddings` [vocab_size, embedding_dim]
        h^(1)_t = cell_1(e_t, h^(1)_{t-1}),  h^(l)_t = cell_l(h^(l-1)_t, h^(l)_{t-1})     (each cell's own weights)
        z_t = h^(L)_t W_y + b_y                       W_y: `readout/kernel` [units, num_tags], b_y: `readout/bias`

    With `bidirectional=True` every layer reads the sequence both ways and h^(l)_t is the concatenation. Without a
    vocabulary (`vocab_size=None`) the inputs are the vectors e_t themselves: there is no embedding.

    With `feedback=True` the previous output enters the first layer next to the token:

        h^(1)_t = cell_1([e_t ; F[y_{t-1}]], h^(1)_{t-1})      F: `tag_embedding/embeddings` [num_tags + 1,
                                                                  tag_embedding_dim]; y_0 = num_tags, the start tag

    In training y_{t-1} is the gold tag (teacher forcing: pass `previous_tags`, built by `shift_tags`); at inference
    it is the model's own choice, y_{t-1} = argmax z_{t-1}, made step by step inside the graph. A feedback model
    therefore cannot be bidirectional: the future outputs it would need are not chosen yet.

    Args:
        vocab_size: positive int, number of token ids (id 0 is padding); or None: the inputs are feature vectors,
            their padding given by `mask`.
        num_tags: positive int, number of tags (the logits' size).
        embedding_dim: positive int, size of e_t (default 64; with `vocab_size=None` the features' own size).
        cell: the recurrence: "elman", "jordan", "leaky", "lstm" or "gru" (default "lstm").
        units: positive int, hidden size of every recurrent layer (default 64).
        num_layers: positive int, how many recurrent layers are stacked (default 1).
        bidirectional: read each layer both ways (default `False`; not with `feedback`).
        dropout: rate in [0, 1) of the dropout on the outputs of every recurrent layer (default 0.0).
        feedback: feed y_{t-1} into step t (default `False`).
        tag_embedding_dim: positive int, size of F[y] (default 16; used only with `feedback`).
        cell_options: dict of further arguments for every recurrent layer (`recurrent_dropout`, `peepholes`, ...).

    Call arguments:
        inputs: int [batch, T] token ids, right-padded with 0 (or float [batch, T, features] without a vocabulary);
            or the pair `(inputs, previous_tags)`, the form `fit(x=(tokens, model.shift_tags(tags)), y=tags)` passes.
        previous_tags: int [batch, T] (feedback models only): y_0 .. y_{T-1} for teacher forcing. When it is
            `None` a feedback model runs free, feeding back its own argmax (the inference path); dropout does not
            apply there, and asking for it with `training=True` is an error.
        training: whether dropout is active.
        mask: optional bool [batch, T], True at the real steps (right-padded): for feature inputs, whose padding
            cannot be read from the values; token inputs are masked where the id is 0 (and where `mask` is False).

    Returns [batch, T, num_tags] logits. Padded steps are masked: they leave the states alone, and their logits mean
    nothing (they repeat the last real step's, or with `bidirectional` are b_y alone), so losses should weight them
    0 (e.g. `sample_weight = tokens != 0`).

    Example:
        ```python
        model = zoo.models.get("feedback_labeller", vocab_size=100, num_tags=12)
        loss = model((tokens, model.shift_tags(tags)), training=True)  # teacher forcing
        tags = model.predict_tags(tokens)  # [batch, T] int32, own predictions fed back
        ```

    References: the lecture, "sequence to sequence of the same length"; M. I. Jordan, "Serial order", 1986 (output
    feedback); R. J. Williams, D. Zipser, Neural Computation 1(2), 1989 (teacher forcing).
    """

    def __init__(
        self,
        vocab_size,
        num_tags,
        embedding_dim=64,
        cell="lstm",
        units=64,
        num_layers=1,
        bidirectional=False,
        dropout=0.0,
        feedback=False,
        tag_embedding_dim=16,
        cell_options=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = None if vocab_size is None else arguments.positive_int("vocab_size", vocab_size)
        self.num_tags = arguments.positive_int("num_tags", num_tags)
        self.embedding_dim = arguments.positive_int("embedding_dim", embedding_dim)
        self.cell = arguments.one_of("cell", cell, tuple(RECURRENT_LAYERS))
        self.units = arguments.positive_int("units", units)
        self.num_layers = arguments.positive_int("num_layers", num_layers)
        self.bidirectional = arguments.boolean("bidirectional", bidirectional)
        self.dropout = arguments.rate("dropout", dropout)
        self.feedback = arguments.boolean("feedback", feedback)
        self.tag_embedding_dim = arguments.positive_int("tag_embedding_dim", tag_embedding_dim)
        self.cell_options = arguments.options("cell_options", cell_options)
        if self.feedback and self.bidirectional:
            raise ValueError(
                "feedback=True cannot be combined with bidirectional=True: a fed-back labeller chooses y_t from "
                "y_{t-1}, so it must read left to right; set one of them to False"
            )

        self.embedding = None
        if self.vocab_size is not None:
            self.embedding = keras.layers.Embedding(self.vocab_size, self.embedding_dim, name="embedding")
        self.tag_embedding = None
        if self.feedback:
            self.tag_embedding = keras.layers.Embedding(self.num_tags + 1, self.tag_embedding_dim, name="tag_embedding")
        self.recurrent_layers = []
        for index in range(self.num_layers):
            layer = RECURRENT_LAYERS[self.cell](
                self.units, return_sequences=True, name=f"{self.cell}_{index}", **self.cell_options
            )
            if self.bidirectional:
                layer = keras.layers.Bidirectional(layer, name=f"bidirectional_{index}")
            self.recurrent_layers.append(layer)
        self.dropout_layer = keras.layers.Dropout(self.dropout, name="dropout")
        self.readout = keras.layers.Dense(self.num_tags, name="readout")
        self.supports_masking = True  # one output per input step: the output mask is the input's

    @property
    def start_tag(self):
        """The id of y_0, the tag fed back before the first step: `num_tags`."""
        return self.num_tags

    def build(self, input_shape):
        if self.embedding is None:
            features = input_shape[-1] if len(input_shape) == 3 else None
            if features is None:
                raise ValueError(
                    "a SequenceLabeller without a vocabulary (vocab_size=None) takes feature vectors [batch, T, "
                    f"features] with a known feature size, got input shape {tuple(input_shape)}"
                )
        else:
            self.embedding.build((None, None))
            features = self.embedding_dim
        if self.feedback:
            self.tag_embedding.build((None, None))
            features += self.tag_embedding_dim
        for layer in self.recurrent_layers:
            layer.build((None, None, features))
            features = layer.compute_output_shape((None, None, features))[-1]
        self.readout.build((None, None, features))

    def call(self, inputs, previous_tags=None, training=False, mask=None):
        tokens = inputs
        if isinstance(inputs, (tuple, list)):
            if len(inputs) != 2 or previous_tags is not None:
                raise ValueError(
                    "SequenceLabeller takes its inputs as token ids [batch, T] or as the pair (tokens, previous_tags), "
                    f"got a {type(inputs).__name__} of {len(inputs)} tensor(s)"
                    + (" and previous_tags as well" if previous_tags is not None else "")
                )
            tokens, previous_tags = inputs
            if isinstance(mask, (tuple, list)):  # Keras hands over one mask per input
                mask = mask[0]
        if previous_tags is not None and not self.feedback:
            raise ValueError(
                "previous_tags are the fed-back outputs of a feedback=True labeller; this labeller has "
                "feedback=False: call it with the token ids only"
            )
        if self.feedback and previous_tags is None:
            if training is True:
                raise ValueError(
                    "a feedback labeller trains with teacher forcing: call it with "
                    "previous_tags=model.shift_tags(tags) (or inputs=(tokens, previous_tags)) when training=True"
                )
            return self._free_run(*self._embedded(tokens, mask))
        x, mask = self._embedded(tokens, mask)
        if self.feedback:
            x = ops.concatenate([x, self.tag_embedding(ops.cast(previous_tags, "int32"))], axis=-1)
        for layer in self.recurrent_layers:
            x = layer(x, mask=mask, training=training)
            x = self.dropout_layer(x, training=training)
        return self.readout(x)

    def _embedded(self, inputs, mask):
        """(e [batch, T, features], mask [batch, T] bool or None) of the inputs."""
        if self.embedding is None:
            if len(inputs.shape) != 3:
                raise ValueError(
                    "a SequenceLabeller without a vocabulary (vocab_size=None) takes feature vectors [batch, T, "
                    f"features], got shape {tuple(inputs.shape)}"
                )
            return ops.cast(inputs, self.compute_dtype), mask
        tokens = ops.cast(inputs, "int32")
        real = ops.not_equal(tokens, 0)
        return self.embedding(tokens), real if mask is None else real & ops.cast(mask, "bool")

    def _free_run(self, x, mask):
        """Logits [batch, T, num_tags] of a feedback labeller that feeds back its own argmax, one step at a time, for
        embedded inputs x [batch, T, features] and their mask [batch, T] (None: every step is real).

        The loop carries every layer's states, the tag to feed back, and the top layer's last output (which a masked
        step repeats, as `keras.layers.RNN` does); it runs in `ops.scan`, so it traces into one graph loop.
        """
        cells = [layer.cell for layer in self.recurrent_layers]
        batch = ops.shape(x)[0]
        embedded = ops.transpose(x, (1, 0, 2))  # [T, batch, features]
        if mask is None:
            mask = ops.ones(ops.shape(x)[:2], "bool")
        mask = ops.transpose(ops.cast(mask, "bool"), (1, 0))  # [T, batch]
        initial = (
            [list(cell.get_initial_state(batch)) for cell in cells],
            ops.full((batch,), self.start_tag, dtype="int32"),
            ops.zeros((batch, cells[-1].output_size), dtype=self.compute_dtype),
            ops.zeros((batch, self.num_tags), dtype=self.compute_dtype),
        )

        def step(carry, t):
            states, previous_tag, previous_output, _ = carry
            mask_t = ops.take(mask, t, axis=0)
            h = ops.concatenate([ops.take(embedded, t, axis=0), self.tag_embedding(previous_tag)], axis=-1)
            new_states = []
            for cell, cell_states in zip(cells, states):
                h, updated = cell(h, cell_states, training=False)
                new_states.append([keep_where_masked(mask_t, new, old) for new, old in zip(updated, cell_states)])
            h = keep_where_masked(mask_t, h, previous_output)
            logits = self.readout(h)
            tag = keep_where_masked(mask_t, ops.cast(ops.argmax(logits, axis=-1), "int32"), previous_tag)
            carry = (new_states, tag, h, logits)
            # Keras's TensorFlow scan stacks outputs shaped like the carry, so the carry is the per-step output too.
            return carry, carry

        # The scan runs over the step index (one sequence of unknown length: Keras's TensorFlow scan cannot check
        # several) and each step takes its slice of the inputs.
        _, (_, _, _, logits) = ops.scan(step, initial, ops.arange(ops.shape(x)[1]))
        return ops.transpose(logits, (1, 0, 2))

    def predict_tags(self, inputs, mask=None):
        """int32 [batch, T]: the argmax tag of every step; a feedback model feeds back its own choices.

        Args:
            inputs: int [batch, T] token ids, right-padded with 0 (padded steps repeat the last step's tag); or
                feature vectors [batch, T, features] without a vocabulary.
            mask: optional bool [batch, T], as in `call`.
        """
        return ops.cast(ops.argmax(self(inputs, training=False, mask=mask), axis=-1), "int32")

    def shift_tags(self, tags):
        """int32 [batch, T]: the teacher-forcing `previous_tags` for gold `tags` [batch, T] (start tag first)."""
        return shift_tags(tags, self.start_tag)

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "num_tags": self.num_tags,
            "embedding_dim": self.embedding_dim,
            "cell": self.cell,
            "units": self.units,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout,
            "feedback": self.feedback,
            "tag_embedding_dim": self.tag_embedding_dim,
            "cell_options": self.cell_options,
        }
