import keras
import numpy as np
import pytest

import zoo
from tests.helpers import reference
from tests.helpers import saved_model
from tests.helpers import serialization
from zoo import decoding
from zoo.models.acoustic_model.acoustic_model import stack_frames
from zoo.models.listen_attend_spell.listen_attend_spell import ListenAttendSpell

VOCAB, PAD, BOS, EOS = 9, 0, 1, 2
SMALL = dict(target_vocab_size=VOCAB, num_mel_bins=12, units=6, encoder_layers=1, stack=4, attention="luong",
             attention_layer_size=5, embedding_dim=4)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def audio(batch=3, samples=4000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000
    return (0.3 * np.sin(2 * np.pi * rng.uniform(200, 2000, (batch, 1)) * t)
            + 0.05 * rng.normal(size=(batch, samples))).astype("float32")


def targets(batch=3, time=5, seed=1):
    y = np.random.default_rng(seed).integers(3, VOCAB, size=(batch, time)).astype("int32")
    y[:, 0] = BOS
    return y


def model_of(seed=0, **overrides):
    model = ListenAttendSpell(**{**SMALL, **overrides})
    model.build()
    reference.randomize_weights(model, seed=seed)
    return model


# Not in the JAX pass: its parts are (the front end in acoustic_model_test, Seq2Seq's feature source in
# seq2seq_test).
def test_the_model_is_its_front_end_read_by_the_speller():
    model = model_of()
    x, lengths, y = audio(), np.array([4000, 2500, 1200]), targets()
    frames = numpy(model.front_end(x, lengths=lengths))
    stacked = numpy(stack_frames(frames, 4))
    steps = numpy(model.output_lengths(lengths))
    mask = np.arange(stacked.shape[1])[None, :] < steps[:, None]
    expected = numpy(model.speller(((stacked, mask), y)))
    np.testing.assert_allclose(numpy(model((x, lengths, y))), expected, atol=1e-5)
    np.testing.assert_allclose(numpy(model({"audio": x, "lengths": lengths, "target_in": y})), expected, atol=1e-5)
    # A row alone, unpadded: what it gets in the batch (the padding is masked in the encoder and the attention).
    alone = numpy(model((x[2:, :1200], lengths[2:], y[2:])))
    np.testing.assert_allclose(alone[0], expected[2], atol=1e-4)
    # Stepping the decoder from initial_state equals teacher forcing.
    state = model.initial_state((x, lengths))
    stepped = []
    for t in range(y.shape[1]):
        logits, state = model.step(y[:, t], state)
        stepped.append(numpy(logits))
    np.testing.assert_allclose(np.stack(stepped, 1), expected, atol=1e-5)
    assert numpy(model.alignment(state)).shape == mask.shape


def test_greedy_and_beam_search_decode_it():
    model = model_of(seed=3)
    x, lengths = audio(), np.array([4000, 2500, 1200])
    greedy = decoding.generate(model.step, model.initial_state((x, lengths)), np.full((3, 1), BOS, "int32"),
                               np.ones(3, "int32"), 6, EOS)
    beam = decoding.beam_search(model.step, model.initial_state((x, lengths)), np.full(3, BOS, "int32"), 6,
                                eos_id=EOS, beam_size=3, alignment_fn=model.alignment,
                                source_mask=model.source_mask((x, lengths)))
    assert numpy(greedy["tokens"]).shape[0] == 3 and numpy(beam["tokens"]).shape[:2] == (3, 3)


def test_spec_augment_and_dropout_only_while_training():
    plain = model_of()
    augmented = model_of(spec_augment={"freq_masks": 2, "freq_mask_width": 6, "seed": 0})
    x, lengths, y = audio(), np.array([4000, 2500, 1200]), targets()
    np.testing.assert_allclose(numpy(augmented((x, lengths, y))), numpy(plain((x, lengths, y))), atol=1e-6)
    assert not np.allclose(numpy(augmented((x, lengths, y), training=True)), numpy(plain((x, lengths, y))),
                           atol=1e-4)


def test_config_keras_file_and_saved_model_round_trips(tmp_path):
    model = model_of(spec_augment={"time_masks": 1})
    serialization.assert_config_round_trip(model)
    x = (audio(), np.array([4000, 2500, 1200], "int32"), targets())
    serialization.assert_keras_file_round_trip(model, x, str(tmp_path / "m.keras"), atol=1e-5)
    saved_model.assert_saved_model_round_trip(
        model, [list(x), [audio(2, 5200, seed=1), np.array([5200, 900], "int32"), targets(2, 7)]],
        str(tmp_path / "saved"), atol=1e-4,
        input_signature=[[keras.InputSpec(shape=(None, None), dtype="float32", name="audio"),
                          keras.InputSpec(shape=(None,), dtype="int32", name="lengths"),
                          keras.InputSpec(shape=(None, None), dtype="int32", name="target_in")]],
    )


def test_the_preset_builds_and_bad_arguments_say_what_was_expected():
    model = zoo.models.get("las_acoustic_model", target_vocab_size=VOCAB)
    assert model((audio(2, 3000), np.array([3000, 2000]), targets(2))).shape == (2, 5, VOCAB)
    with pytest.raises(ValueError, match="stack must be a positive int, got 0"):
        ListenAttendSpell(**{**SMALL, "stack": 0})
    with pytest.raises(ValueError, match="spec_augment must be a dict of SpecAugment arguments or None, got 1"):
        ListenAttendSpell(**{**SMALL, "spec_augment": 1})
    with pytest.raises(ValueError, match=r"ListenAttendSpell takes \(audio, lengths, target_in\)"):
        model_of()((audio(), np.array([4000, 2500, 1200])))
