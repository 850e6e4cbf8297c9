"""Seq2Seq: the encoder–decoder of Sutskever et al. (2014) and Cho et al. (2014), with the attention of Bahdanau et
al. (2015) or Luong et al. (2015), or none; trained by teacher forcing, or with the scheduled sampling of Bengio et al.
(2015)."""

import numbers

import keras
import numpy as np
from keras import ops

from zoo import arguments
from zoo import layers
from zoo.cells.recurrent_cell import DropoutRNNCell
from zoo.decoding import samplers
from zoo.layers.attention_wrapper_cell import BRIDGES
from zoo.layers.attention_wrapper_cell import MEMORY_MASK_INDEX
from zoo.layers.attention_wrapper_cell import attentional_vector
from zoo.models.stacked_rnn.stacked_rnn import RECURRENT_LAYERS

ATTENTIONS = ("none", "bahdanau", "luong")


def _features_and_mask(source):
    """(features, mask) of a feature-vector source, which must be that pair."""
    if not isinstance(source, (tuple, list)) or len(source) != 2:
        raise ValueError("a Seq2Seq without a source vocabulary (source_vocab_size=None) takes its source as the pair "
                         f"(features [batch, S, source_dim], mask [batch, S]), got {type(source).__name__}")
    return source


def state_sizes(cell):
    """The sizes of a cell's state tensors, as a list (a cell may give one int or a list)."""
    return list(cell.state_size) if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]


def scheduled_sampling_noise(seed, batch, time):
    """The uniform numbers of one scheduled-sampling pass: [batch, time, 2] float32 in (0, 1), a counter-based hash
    of `seed` (`zoo.decoding.samplers.uniform`), the same eagerly, in a graph and under XLA.

    [..., 0] decides whether step t reads the model's own token (when it is below the sampling probability),
    [..., 1] draws that token from the softmax of step t - 1 (`zoo.decoding.samplers.inverse_cdf_sample`).

    Args:
        seed: a Python int, or ints of shape [2] (a tuple, an array or an int tensor), e.g. (run seed, training
            step), so that every training step draws fresh numbers.
        batch, time: ints or int32 scalar tensors.
    """
    if isinstance(seed, (list, tuple, np.ndarray)):
        seed = ops.convert_to_tensor((np.asarray(seed, "int64") % 2**32).astype("uint32"))
    return ops.reshape(samplers.uniform(seed, (batch, time * 2)), (batch, time, 2))


@keras.saving.register_keras_serializable(package="zoo")
class Seq2Seq(keras.Model):
    """An encoder–decoder: a recurrent encoder reads the source, a recurrent decoder with attention writes the target.

    Equations (weights in brackets; row vectors; cell is the chosen zoo cell, see `zoo.cells`):

        x_s = E_src(u_s)                                E_src: `source_embedding.embeddings` [source_vocab, E]
        h̄_s = [→h_s; ←h_s] = encoder(x_1..x_S)          `encoder_layers` stacked layers of the cell (`<cell>_0`,
                                                        ...), each `Bidirectional` with `bidirectional` (then h̄_s
                                                        concatenates both directions); padded source steps skipped
        e = final states of the top encoder layer       (both directions), the "information carriers" summary
        y_t = E_tgt(w_t)                                E_tgt: `target_embedding.embeddings` [target_vocab, E]
        o_t, s_t = AttentionWrapperCell(y_t, s_{t-1})   the decoder: the cell, `attention` over h̄ (masked by the
                                                        source padding), input feeding, s_0 = bridge(e)
                                                        (`decoder_cell`, see `zoo.layers.AttentionWrapperCell`)
        logits_t = dropout(o_t) O + b                   O: `output.kernel` [output size, target_vocab], b: `output.bias`
        logits_t = dropout(o_t) E_tgt^T + b             with `tie_embeddings` (b: `output_bias`)

    logits_t scores w_{t+1} given w_1..w_t and the source; the softmax belongs to the loss. With `attention="none"`
    the decoder sees the source only through s_0 = bridge(e): the lecture's fixed-vector encoder–decoder, whose
    capacity the attention lifts.

    Args:
        source_vocab_size: positive int, number of source token ids; or None: the source is a sequence of feature
            vectors (e.g. acoustic frames) with its mask, `(features [batch, S, source_dim], mask [batch, S])`, read
            without an embedding (the embedding dropout then acts on the features).
        source_dim: with `source_vocab_size=None`, the positive int size of the source's feature vectors (default
            `None`; must be `None` with a vocabulary).
        target_vocab_size: positive int, number of target token ids.
        cell: which recurrence, in the encoder and the decoder: "elman", "jordan", "leaky", "lstm" or "gru"
            (default "lstm").
        units: positive int, size of every recurrent layer (each direction of the encoder) and of the decoder cell
            (default 64).
        encoder_layers: positive int, how many encoder layers are stacked (default 1).
        bidirectional: whether every encoder layer reads both ways (default `False`); the memory then has size
            2 * units.
        embedding_dim: positive int, size of both embeddings (default `None`: the same as `units`).
        attention: `"none"`, `"bahdanau"` or `"luong"` (default `"luong"`).
        attention_options: dict of arguments of the mechanism: `zoo.layers.BahdanauAttention` (`units`, default
            `units`; `normalize`) or `zoo.layers.LuongAttention` (`score`, `units`, `scale`); must be empty without
            attention.
        attention_layer_size: positive int or `None` (default): the size of the attentional vector a_t = tanh([c_t;
            h_t] W_c) that is output and fed back; `None` outputs h_t and feeds back the context c_t. Must be `None`
            without attention.
        input_feeding: whether a_{t-1} is concatenated to the decoder's input (default `None`: with attention, yes).
        bridge: how s_0 comes from the encoder's final states: `"dense"` (default, a learned projection of the top
            layer's final states, both directions), `"copy"` (unidirectional encoder only: they are the decoder's
            initial states) or `"zeros"`.
        dropout: rate in [0, 1) of the dropout on both embeddings and before the output projection, while training
            (default 0); the cells' own dropout can be set through `cell_options`.
        tie_embeddings: use E_tgt^T as the output projection, with its own bias (default `False`); needs the decoder's
            output size (`attention_layer_size`, or `units`) to equal `embedding_dim`.
        cell_options: dict of further arguments of every recurrent layer and of the decoder cell (`peepholes`,
            `reset_after`, `alpha`, ...).
        pad_id: int, the token that right-pads source and target sequences (default 0).

    Call arguments:
        inputs: `(source, target_in)`: source [batch, S] int32 and target_in [batch, T] int32 (the target shifted
            right, starting with <bos>), both right-padded with `pad_id`; without a source vocabulary the source is
            the pair `(features, mask)`.
        training: whether dropout is active.
        sampling_probability: `None` (default: teacher forcing) or the probability p in [0, 1] (a number or a float
            scalar tensor, so a schedule can change it without retracing) that a decoder step reads the model's
            own token instead of the reference's: scheduled sampling, below.
        sampling_seed: with `sampling_probability`, the seed of its random numbers: an int, or ints of shape [2]
            (e.g. (run seed, training step) so that every step draws fresh numbers).

    Returns logits [batch, T, target_vocab_size]. Padded source positions never reach a result: the encoder skips
    them (its final state is the one at the last real token, in each direction) and the attention gives them weight
    0. Target padding follows the real tokens and the decoder is causal, so it never reaches a real token's logits.

    Scheduled sampling (Bengio et al. 2015): teacher forcing feeds the decoder the reference token w_t at every
    step, which the model never sees at inference, where it reads its own outputs. With `sampling_probability=p`
    each step t > 0 of each row reads instead, with probability p, a token drawn from the model's own softmax of
    step t - 1 (the first step reads <bos>); a training schedule raises p from 0 as the model learns (the
    translation task's `scheduled_sampling`). The decoder then runs step by step inside one `keras.layers.RNN`
    around the decoder cell, the target embedding and the output projection (the same weights), since step t's
    input depends on step t - 1's logits. Its random numbers are drawn before the loop from `sampling_seed`
    (`scheduled_sampling_noise`: two uniforms per step and row, one to decide, one to draw the token by inverting
    the softmax's cumulative distribution, `zoo.decoding.samplers.inverse_cdf_sample`), so a pass is a function of
    its seed, eagerly, in a graph and under XLA. The dropout is that of the teacher-forced call: its multipliers
    are drawn before the loop by the same dropout layers, and the embedding dropout applies to the token read,
    sampled or not. No gradient flows through the draw itself (the tokens are discrete); it does reach the embedding
    of every token read. At p = 0 the logits are those of the teacher-forced call (its fast path, one `RNN` over the
    embedded targets, runs when `sampling_probability` is `None`).

    Parallel teacher forcing: with attention and `input_feeding=False`, step t's attention reads only the wrapped
    cell's output h_t, which does not depend on any earlier context. Teacher forcing (`sampling_probability=None`)
    then runs the wrapped cell alone over the whole target (one `keras.layers.RNN`, from the bridged states s_0, with
    the cell's own dropout drawn as in the stepwise decoder), and reads the attention for all T steps at once: scores
    [batch, T, S], the masked softmax over the source, contexts [batch, T, memory_size], a_t = tanh([c_t; h_t] W_c)
    (without an attention layer the output is h_t and the context, only ever fed back, is not computed). This is the
    same function as stepping the `decoder_cell` (equal to float32 round-off, gradients too; `tests/zoo/models`
    checks it), with the memory read once instead of at every step of the recurrence. With input feeding, under
    scheduled sampling, and in `step`, the decoder runs step by step.

    Decoding: `initial_state(source)` is the decoder's state before the first target token, a tuple in the layout of
    `zoo.layers.AttentionWrapperCell` (the memory, its keys and the source mask included, all batch first, so a beam
    search tiles and reorders them with the rest); `step(tokens [batch], state) -> (logits [batch,
    target_vocab_size], state)` reads one target token; `alignment(state)` is the step's alignment [batch, S] (the
    `alignment_fn` of `zoo.decoding.beam_search`, zeros without attention); `source_mask(source)` the real source
    positions [batch, S].

    Example:
        ```python
        model = zoo.models.get("seq2seq_luong", source_vocab_size=60, target_vocab_size=14)
        logits = model((source, target_in))  # (B, T, 14)
        logits = model((source, target_in), training=True, sampling_probability=0.25, sampling_seed=(0, step))
        out = zoo.decoding.beam_search(model.step, model.initial_state(source), bos, 12, eos_id=3, beam_size=4,
                                       alignment_fn=model.alignment, source_mask=model.source_mask(source))
        ```

    References: I. Sutskever, O. Vinyals, Q. V. Le, "Sequence to sequence learning with neural networks", NeurIPS
    2014; K. Cho et al., "Learning phrase representations using RNN encoder-decoder for statistical machine
    translation", EMNLP 2014; D. Bahdanau, K. Cho, Y. Bengio, "Neural machine translation by jointly learning to
    align and translate", ICLR 2015; M.-T. Luong, H. Pham, C. D. Manning, "Effective approaches to attention-based
    neural machine translation", EMNLP 2015; S. Bengio, O. Vinyals, N. Jaitly, N. Shazeer, "Scheduled sampling for
    sequence prediction with recurrent neural networks", NeurIPS 2015.
    """

    def __init__(
        self,
        source_vocab_size,
        target_vocab_size,
        source_dim=None,
        cell="lstm",
        units=64,
        encoder_layers=1,
        bidirectional=False,
        embedding_dim=None,
        attention="luong",
        attention_options=None,
        attention_layer_size=None,
        input_feeding=None,
        bridge="dense",
        dropout=0.0,
        tie_embeddings=False,
        cell_options=None,
        pad_id=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.source_vocab_size = (None if source_vocab_size is None
                                  else arguments.positive_int("source_vocab_size", source_vocab_size))
        self.target_vocab_size = arguments.positive_int("target_vocab_size", target_vocab_size)
        if (self.source_vocab_size is None) == (source_dim is None):
            raise ValueError(
                "give source_vocab_size (token ids in) or source_dim (feature vectors in), not both nor neither: got "
                f"source_vocab_size={source_vocab_size!r}, source_dim={source_dim!r}"
            )
        self.source_dim = None if source_dim is None else arguments.positive_int("source_dim", source_dim)
        self.cell = arguments.one_of("cell", cell, tuple(RECURRENT_LAYERS))
        self.units = arguments.positive_int("units", units)
        self.encoder_layers = arguments.positive_int("encoder_layers", encoder_layers)
        self.bidirectional = arguments.boolean("bidirectional", bidirectional)
        self.embedding_dim = (
            self.units if embedding_dim is None else arguments.positive_int("embedding_dim", embedding_dim)
        )
        self.attention = arguments.one_of("attention", attention, ATTENTIONS)
        self.attention_options = arguments.options("attention_options", attention_options)
        self.attention_layer_size = attention_layer_size
        if self.attention == "none":
            if self.attention_options or attention_layer_size is not None or input_feeding:
                raise ValueError(
                    "attention='none' has no mechanism to configure, no attention layer and nothing to feed: expected "
                    f"attention_options=None, attention_layer_size=None and input_feeding=None or False, got "
                    f"attention_options={attention_options!r}, attention_layer_size={attention_layer_size!r}, "
                    f"input_feeding={input_feeding!r}"
                )
            self.input_feeding = False
        else:
            self.input_feeding = True if input_feeding is None else arguments.boolean("input_feeding", input_feeding)
        self.bridge = arguments.one_of("bridge", bridge, BRIDGES)
        self.dropout = arguments.rate("dropout", dropout)
        self.tie_embeddings = arguments.boolean("tie_embeddings", tie_embeddings)
        self.cell_options = arguments.options("cell_options", cell_options)
        self.pad_id = arguments.token_id("pad_id", pad_id, min(self.source_vocab_size or self.target_vocab_size,
                                                               self.target_vocab_size))

        layer_class = RECURRENT_LAYERS[self.cell]
        self.source_embedding = None
        if self.source_vocab_size is not None:
            self.source_embedding = keras.layers.Embedding(self.source_vocab_size, self.embedding_dim,
                                                           name="source_embedding")
        self.target_embedding = keras.layers.Embedding(self.target_vocab_size, self.embedding_dim,
                                                       name="target_embedding")
        self.encoder = []
        for index in range(self.encoder_layers):
            layer = layer_class(self.units, return_sequences=True, return_state=True, name=f"{self.cell}_{index}",
                                **self.cell_options)
            encoder_cell = layer.cell
            if self.bidirectional:
                layer = keras.layers.Bidirectional(layer, name=f"bidirectional_{index}")
            self.encoder.append(layer)
        directions = 2 if self.bidirectional else 1
        self.memory_size = encoder_cell.output_size * directions
        self.encoder_state_sizes = state_sizes(encoder_cell) * directions

        decoder_cell = layer_class.cell_class(self.units, name=f"{self.cell}_cell", **self.cell_options)
        if self.bridge == "copy" and self.encoder_state_sizes != state_sizes(decoder_cell):
            raise ValueError(
                f"bridge='copy' needs the encoder's final states to have the decoder cell's state sizes "
                f"{state_sizes(decoder_cell)}, got {self.encoder_state_sizes} (bidirectional={self.bidirectional}); "
                "use bridge='dense' to project them"
            )
        self.decoder_cell = layers.AttentionWrapperCell(
            decoder_cell,
            self._mechanism(),
            memory_size=self.memory_size,
            attention_layer_size=(
                None if attention_layer_size is None
                else arguments.positive_int("attention_layer_size", attention_layer_size)
            ),
            input_feeding=self.input_feeding,
            bridge=self.bridge,
            encoder_state_size=sum(self.encoder_state_sizes) if self.bridge == "dense" else None,
            name="decoder_cell",
        )
        self.decoder = keras.layers.RNN(self.decoder_cell, return_sequences=True, name="decoder")
        self.embedding_dropout = keras.layers.Dropout(self.dropout, name="embedding_dropout")
        self.output_dropout = keras.layers.Dropout(self.dropout, name="output_dropout")
        self.output_projection = None
        if self.tie_embeddings:
            if self.decoder_cell.output_size != self.embedding_dim:
                raise ValueError(
                    f"tie_embeddings needs the decoder's output size to equal embedding_dim, got output size "
                    f"{self.decoder_cell.output_size} (attention_layer_size={attention_layer_size}, "
                    f"units={self.units}) and embedding_dim={self.embedding_dim}; pass "
                    f"embedding_dim={self.decoder_cell.output_size} or tie_embeddings=False"
                )
        else:
            self.output_projection = keras.layers.Dense(self.target_vocab_size, name="output")
        # Scheduled sampling's decoder: the same weights, stepped with the embedding and the projection inside the
        # loop. It holds no weights of its own; private, so that saving finds every weight at its usual path first.
        self._scheduled_decoder = keras.layers.RNN(
            _ScheduledSamplingCell(self.decoder_cell, self.target_embedding, self._project, self.target_vocab_size,
                                   self.embedding_dim, name="scheduled_sampling_cell"),
            return_sequences=True, name="scheduled_sampling_decoder",
        )
        # Teacher forcing without input feeding: the wrapped cell alone over the whole target, the attention read
        # for every step after it (see "Parallel teacher forcing"). It holds the decoder cell's wrapped cell, whose
        # weights live under `decoder`; private, like the scheduled-sampling decoder, for the same reason.
        self._parallel_decoder = None
        if self.attention != "none" and not self.input_feeding:
            self._parallel_decoder = keras.layers.RNN(decoder_cell, return_sequences=True, name="parallel_decoder")

    def _mechanism(self):
        try:
            if self.attention == "bahdanau":
                return layers.BahdanauAttention(**{"units": self.units, **self.attention_options}, name="attention")
            if self.attention == "luong":
                return layers.LuongAttention(**self.attention_options, name="attention")
        except (TypeError, ValueError) as error:
            raise ValueError(f"attention_options {self.attention_options!r} do not fit attention="
                             f"{self.attention!r}: {error}") from None
        return None

    def build(self, inputs_shape=None):
        if self.source_embedding is not None:
            self.source_embedding.build((None, None))
        self.target_embedding.build((None, None))
        size = self.embedding_dim if self.source_embedding is not None else self.source_dim
        for layer in self.encoder:
            layer.build((None, None, size))
            size = self.memory_size
        self.decoder.build((None, None, self.embedding_dim))
        if self._parallel_decoder is not None:
            self._parallel_decoder.build((None, None, self.embedding_dim))
        if self.tie_embeddings:
            self.output_bias = self.add_weight(shape=(self.target_vocab_size,), name="output_bias",
                                               initializer="zeros")
        else:
            self.output_projection.build((None, self.decoder_cell.output_size))

    def source_mask(self, source):
        """[batch, S] bool, `True` at the real (not padded) source positions."""
        if self.source_embedding is None:
            return ops.cast(_features_and_mask(source)[1], "bool")
        return ops.not_equal(ops.cast(source, "int32"), self.pad_id)

    def encode(self, source, training=False):
        """Runs the encoder: returns the memory h̄ [batch, S, memory_size] and the top layer's final states (a list,
        forward then backward)."""
        mask = self.source_mask(source)
        if self.source_embedding is None:
            x = ops.cast(_features_and_mask(source)[0], self.compute_dtype)
        else:
            x = self.source_embedding(ops.cast(source, "int32"))
        x = self.embedding_dropout(x, training=training)
        for layer in self.encoder:
            x, *final_states = layer(x, mask=mask, training=training)
        return x, final_states

    def _logits(self, outputs, training):
        return self._project(self.output_dropout(outputs, training=training))

    def _project(self, outputs):
        if self.tie_embeddings:
            return ops.matmul(outputs, ops.transpose(self.target_embedding.embeddings)) + self.output_bias
        return self.output_projection(outputs)

    def _decoder_state(self, source, training):
        memory, final_states = self.encode(source, training=training)
        return self.decoder_cell.get_initial_state(
            memory=memory, memory_mask=self.source_mask(source), encoder_state=final_states
        )

    def call(self, inputs, training=False, sampling_probability=None, sampling_seed=None):
        source, target_in = inputs
        state = self._decoder_state(source, training)
        if sampling_probability is None:
            y = self.embedding_dropout(self.target_embedding(ops.cast(target_in, "int32")), training=training)
            if self._parallel_decoder is not None:
                return self._logits(self._parallel_teacher_forcing(y, state, training), training)
            return self._logits(self.decoder(y, initial_state=state, training=training), training)
        return self._scheduled_sampling(target_in, state, sampling_probability, sampling_seed, training)

    def _parallel_teacher_forcing(self, y, state, training):
        """The decoder's outputs [batch, T, output size] for the embedded targets y [batch, T, E] from the decoder
        state `state`, without input feeding: the wrapped cell's outputs h_t first, then every step's attention at
        once, as `AttentionWrapperCell.call` reads it step by step (see "Parallel teacher forcing")."""
        cell = self.decoder_cell
        cell_states = state[1:1 + len(cell.cell_state_sizes)]
        outputs = self._parallel_decoder(y, initial_state=cell_states, training=training)  # h_t, [batch, T, units]
        if cell.attention_kernel is None:
            return outputs  # the output is h_t; the context c_t would only be fed back, which is off
        context, _ = cell.attention_mechanism.attend(outputs, cell.keys(state), cell.memory(state),
                                                     state[MEMORY_MASK_INDEX])
        return attentional_vector(context, outputs, cell.attention_kernel, ops.tanh)

    def _scheduled_sampling(self, target_in, state, probability, seed, training):
        """The decoder's logits [batch, T, V] when each step t > 0 reads, with probability `probability`, a token
        drawn from the model's own softmax at step t - 1 instead of target_in[:, t] (see "Scheduled sampling")."""
        if not ops.is_tensor(probability) and (
            isinstance(probability, bool) or not isinstance(probability, numbers.Real) or not 0 <= probability <= 1
        ):
            raise ValueError(f"sampling_probability must be a number in [0, 1] or a float tensor, got {probability!r}")
        if seed is None:
            raise ValueError(
                "scheduled sampling draws its numbers from sampling_seed: expected an int or an int tensor of shape "
                "[2], e.g. (seed, training step) so that every step draws fresh numbers, got None"
            )
        target_in = ops.cast(target_in, "int32")
        batch, time = ops.shape(target_in)[0], ops.shape(target_in)[1]
        noise = scheduled_sampling_noise(seed, batch, time)
        # The first step always reads <bos>: there is no step before it to sample from.
        later = ops.expand_dims(ops.arange(time) > 0, 0)
        use_sample = ops.logical_and(noise[..., 0] < ops.cast(probability, "float32"), later)
        y = self.target_embedding(target_in)
        columns = [y, ops.cast(use_sample, y.dtype)[..., None], ops.cast(noise[..., 1:], y.dtype)]
        if training and self.dropout > 0:
            # The dropout of `call`, drawn before the loop as multipliers (0 or 1 / (1 - rate)): the same draws as
            # `call` makes (the embedding dropout of the target embeddings, the output dropout of the decoder's
            # outputs), which the loop applies to the token it reads, sampled or not, and to its output.
            embedding_scale = self.embedding_dropout(ops.ones_like(y), training=True)
            output_scale = self.output_dropout(
                ops.ones((batch, time, self.decoder_cell.output_size), dtype=y.dtype), training=True
            )
            columns = [y * embedding_scale, *columns[1:], embedding_scale, output_scale]
        no_logits = ops.zeros((batch, self.target_vocab_size), dtype=y.dtype)  # before the first step
        return self._scheduled_decoder(ops.concatenate(columns, axis=-1), initial_state=[*state, no_logits],
                                       training=training)

    def initial_state(self, source):
        return tuple(self._decoder_state(source, training=False))

    def step(self, tokens, state):
        y = self.target_embedding(ops.cast(tokens, "int32"))
        output, new_state = self.decoder_cell(y, list(state), training=False)
        return self._logits(output, training=False), tuple(new_state)

    def alignment(self, state):
        return layers.latest_alignment(state)

    def get_config(self):
        return {
            **super().get_config(),
            "source_vocab_size": self.source_vocab_size,
            "target_vocab_size": self.target_vocab_size,
            "source_dim": self.source_dim,
            "cell": self.cell,
            "units": self.units,
            "encoder_layers": self.encoder_layers,
            "bidirectional": self.bidirectional,
            "embedding_dim": self.embedding_dim,
            "attention": self.attention,
            "attention_options": self.attention_options,
            "attention_layer_size": self.attention_layer_size,
            "input_feeding": self.input_feeding,
            "bridge": self.bridge,
            "dropout": self.dropout,
            "tie_embeddings": self.tie_embeddings,
            "cell_options": self.cell_options,
            "pad_id": self.pad_id,
        }


class _ScheduledSamplingCell(keras.layers.Layer, DropoutRNNCell):
    """One step of `Seq2Seq`'s decoder that chooses the token it reads: the reference's, or one drawn from its own
    previous softmax. Built by `Seq2Seq` around its own layers (it has no weights of its own) and never saved.

    Step input [batch, F] (one float row per step, as `keras.layers.RNN` takes one tensor):
        [0:E]             the embedded reference token y_t (E = embedding_dim), with the embedding dropout applied
        [E]               1 where the step reads the model's own token instead, else 0
        [E + 1]           the uniform number that draws that token
        [E + 2:2E + 2]    the embedding dropout's multipliers (only while training with dropout)
        [2E + 2:]         the output dropout's multipliers (only while training with dropout)

    State: the decoder cell's states, then the logits of the previous step [batch, V] (zeros before the first).
    Output: the step's logits [batch, V].
    """

    def __init__(self, decoder_cell, embedding, project, vocab_size, embedding_dim, **kwargs):
        super().__init__(**kwargs)
        self.decoder_cell = decoder_cell
        self.embedding = embedding
        self.project = project
        self.embedding_dim = embedding_dim
        self.state_size = [*decoder_cell.state_size, vocab_size]
        self.output_size = vocab_size

    def build(self, input_shape):
        pass  # every weight belongs to the Seq2Seq that built this cell

    def call(self, inputs, states, training=False):
        size = self.embedding_dim
        *decoder_states, previous_logits = states
        sampled = samplers.inverse_cdf_sample(previous_logits, inputs[:, size + 1])
        sampled_y = self.embedding(sampled)
        dropout = inputs.shape[-1] > size + 2
        if dropout:
            sampled_y = sampled_y * inputs[:, size + 2:2 * size + 2]
        y = ops.where(inputs[:, size:size + 1] > 0.5, ops.cast(sampled_y, inputs.dtype), inputs[:, :size])
        output, new_states = self.decoder_cell(y, decoder_states, training=training)
        if dropout:
            output = output * inputs[:, 2 * size + 2:]
        logits = self.project(output)
        return logits, [*new_states, logits]

    # Keras's RNN draws the cell dropout masks once per sequence through the outermost cell: hand it the decoder
    # cell's, for a step input of the embedding's size (as the teacher-forced decoder sees).

    def get_dropout_mask(self, step_input):
        return self.decoder_cell.get_dropout_mask(step_input[:, :self.embedding_dim])

    def get_recurrent_dropout_mask(self, step_input):
        return self.decoder_cell.get_recurrent_dropout_mask(step_input)

    def reset_dropout_mask(self):
        self.decoder_cell.reset_dropout_mask()

    def reset_recurrent_dropout_mask(self):
        self.decoder_cell.reset_recurrent_dropout_mask()
