"""KerasSeq2Seq: the encoder–decoder a Keras user writes from stock layers, the baseline of `benchmarks.seq2seq`.

An `Embedding` and a bidirectional `keras.layers.LSTM` encoder (padding masked), a dense bridge from its final states
to the decoder's initial state, a `keras.layers.LSTM` decoder over the embedded target (teacher forcing), then over
all decoder outputs at once `keras.layers.Attention` (Luong's "general" score: the keys are the memory through a
`Dense` without bias) or `keras.layers.AdditiveAttention` (Bahdanau's score: query and keys through `Dense` layers
without bias, `use_scale=True` being v), the attentional vector a_t = tanh([c_t; h_t] W_c), and a `Dense` read-out.

Stock Keras layers cannot feed a_{t-1} back into the decoder's next step (input feeding): the attention runs after the
decoder, not inside its recurrence. `zoo.models.Seq2Seq` with `input_feeding=False` computes the same function; with
the weights copied over (`copy_weights_from`), the two give the same logits.
"""

import keras
from keras import ops

ATTENTIONS = ("none", "bahdanau", "luong")


class KerasSeq2Seq(keras.Model):
    """The stock-Keras counterpart of a `zoo.models.Seq2Seq` with an LSTM cell, one bidirectional encoder layer, the
    dense bridge and no input feeding.

    Args:
        source_vocab_size, target_vocab_size: positive ints.
        units: the size of each encoder direction and of the decoder.
        embedding_dim: the size of both embeddings.
        attention: "none", "bahdanau" or "luong" (the "general" score).
        attention_layer_size: the size of a_t, with attention (without: `None`, the decoder's h_t is read out).
        attention_units: the size of the hidden layer of Bahdanau's score (default `None`: `units`).

    Call arguments: `(source, target_in)`, int32 [batch, S] and [batch, T], right-padded with 0. Returns logits
    [batch, T, target_vocab_size].
    """

    def __init__(self, source_vocab_size, target_vocab_size, units, embedding_dim, attention="none",
                 attention_layer_size=None, attention_units=None, **kwargs):
        super().__init__(**kwargs)
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
        if (attention == "none") != (attention_layer_size is None):
            raise ValueError(f"attention_layer_size must be set with attention and None without, got "
                             f"attention={attention!r} and attention_layer_size={attention_layer_size!r}")
        self.units = units
        self.attention = attention
        self.source_embedding = keras.layers.Embedding(source_vocab_size, embedding_dim, mask_zero=True,
                                                       name="source_embedding")
        self.target_embedding = keras.layers.Embedding(target_vocab_size, embedding_dim, name="target_embedding")
        self.encoder = keras.layers.Bidirectional(
            keras.layers.LSTM(units, return_sequences=True, return_state=True), name="encoder")
        self.bridge = keras.layers.Dense(2 * units, name="bridge")
        self.decoder = keras.layers.LSTM(units, return_sequences=True, name="decoder")
        self.query_layer = self.key_layer = self.attention_layer = self.attentional = None
        if attention == "luong":
            self.key_layer = keras.layers.Dense(units, use_bias=False, name="keys")
            self.attention_layer = keras.layers.Attention(name="attention")
        elif attention == "bahdanau":
            attention_units = units if attention_units is None else attention_units
            self.query_layer = keras.layers.Dense(attention_units, use_bias=False, name="query")
            self.key_layer = keras.layers.Dense(attention_units, use_bias=False, name="keys")
            self.attention_layer = keras.layers.AdditiveAttention(use_scale=True, name="attention")
        if attention_layer_size is not None:
            self.attentional = keras.layers.Dense(attention_layer_size, activation="tanh", use_bias=False,
                                                  name="attentional")
        self.output_projection = keras.layers.Dense(target_vocab_size, name="output")

    def call(self, inputs, training=False):
        source, target_in = inputs
        x = self.source_embedding(source)
        mask = self.source_embedding.compute_mask(source)
        memory, *final_states = self.encoder(x, mask=mask, training=training)
        h, c = ops.split(self.bridge(ops.concatenate(final_states, axis=-1)), 2, axis=-1)
        outputs = self.decoder(self.target_embedding(target_in), initial_state=[h, c], training=training)
        if self.attention != "none":
            query = outputs if self.query_layer is None else self.query_layer(outputs)
            context = self.attention_layer([query, memory, self.key_layer(memory)], mask=[None, mask])
            outputs = self.attentional(ops.concatenate([context, outputs], axis=-1))
        return self.output_projection(outputs)

    def copy_weights_from(self, model):
        """Copies the weights of a built `zoo.models.Seq2Seq` of the same configuration (LSTM, one bidirectional
        encoder layer, dense bridge, no input feeding) into this built model."""
        cell = model.decoder_cell
        if model.cell != "lstm" or len(model.encoder) != 1 or not model.bidirectional or model.input_feeding:
            raise ValueError("copy_weights_from needs a Seq2Seq with cell='lstm', one bidirectional encoder layer and "
                             f"no input feeding, got cell={model.cell!r}, encoder_layers={model.encoder_layers}, "
                             f"bidirectional={model.bidirectional}, input_feeding={model.input_feeding}")
        if model.attention != self.attention:
            raise ValueError(f"the models' attentions differ: {model.attention!r} and {self.attention!r}")
        self.source_embedding.set_weights(model.source_embedding.get_weights())
        self.target_embedding.set_weights(model.target_embedding.get_weights())
        self.encoder.set_weights(model.encoder[0].get_weights())
        self.bridge.set_weights([cell.bridge_kernel.numpy(), cell.bridge_bias.numpy()])
        self.decoder.set_weights(cell.cell.get_weights())
        mechanism = cell.attention_mechanism
        if self.attention == "luong":
            self.key_layer.set_weights([mechanism.memory_kernel.numpy()])
        elif self.attention == "bahdanau":
            self.query_layer.set_weights([mechanism.query_kernel.numpy()])
            self.key_layer.set_weights([mechanism.memory_kernel.numpy()])
            self.attention_layer.set_weights([mechanism.attention_v.numpy()])
        if self.attentional is not None:
            self.attentional.set_weights([cell.attention_kernel.numpy()])
        self.output_projection.set_weights(model.output_projection.get_weights())
