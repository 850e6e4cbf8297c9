import keras
import numpy as np
import pytest

import zoo
from tests.helpers import reference
from tests.helpers import saved_model
from tests.helpers import serialization
from zoo.models.acoustic_model.acoustic_model import AcousticModel
from zoo.models.acoustic_model.acoustic_model import stack_frames
from zoo.models.acoustic_model.acoustic_model import stacked_lengths

TAGS = 7
SMALL = dict(num_tags=TAGS, num_mel_bins=16, units=6, num_layers=2, stack=3)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def audio(batch=3, samples=4000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000
    return (0.3 * np.sin(2 * np.pi * rng.uniform(200, 2000, (batch, 1)) * t) + 0.05 * rng.normal(size=(batch, samples))
            ).astype("float32")


def model_of(seed=0, **overrides):
    model = AcousticModel(**{**SMALL, **overrides})
    model.build((None, None))
    reference.randomize_weights(model, seed=seed)
    return model


@pytest.mark.jax
def test_stacking_puts_k_frames_side_by_side():
    x = np.arange(2 * 7 * 2, dtype="float32").reshape(2, 7, 2)
    y = numpy(stack_frames(x, 3))
    assert y.shape == (2, 3, 6)
    np.testing.assert_array_equal(y[0, 0], x[0, 0:3].reshape(-1))
    np.testing.assert_array_equal(y[1, 2], np.concatenate([x[1, 6], [0, 0, 0, 0]]))
    np.testing.assert_array_equal(numpy(stacked_lengths(np.array([7, 6, 1, 0]), 3)), [3, 2, 1, 0])


# Under JAX the feedback model alone: its free run over frames (ops.scan) is the zoo's own loop, where the
# bidirectional layers are Keras's.
@pytest.mark.parametrize("arguments", [pytest.param({"bidirectional": True}, id="bidirectional"),
                                       pytest.param({"feedback": True}, marks=pytest.mark.jax, id="feedback")])
def test_the_model_is_its_front_end_stacked_into_its_labeller(arguments):
    model = model_of(**arguments)
    x, lengths = audio(), np.array([4000, 2500, 1200])
    frames = numpy(model.front_end(x, lengths=lengths))
    stacked = numpy(stack_frames(frames, 3))
    out_lengths = numpy(model.output_lengths(lengths))
    np.testing.assert_array_equal(out_lengths, -(-(1 + (lengths - 400) // 160) // 3))
    mask = np.arange(stacked.shape[1])[None, :] < out_lengths[:, None]
    expected = numpy(model.labeller(stacked, mask=mask))
    logits = numpy(model((x, lengths)))
    assert logits.shape == (3, stacked.shape[1], TAGS)
    np.testing.assert_allclose(logits[mask], expected[mask], atol=1e-5)
    # Each row alone, unpadded, gives what it gave in the padded batch.
    for row in (1, 2):
        alone = numpy(model((x[row : row + 1, : lengths[row]], lengths[row : row + 1])))
        np.testing.assert_allclose(alone[0], logits[row, : out_lengths[row]], atol=1e-4)
    if arguments.get("feedback"):
        tags = np.random.default_rng(1).integers(0, TAGS, size=mask.shape)
        forced = numpy(model((x, lengths), previous_tags=model.shift_tags(tags)))
        np.testing.assert_allclose(forced[mask], numpy(model.labeller((stacked, model.shift_tags(tags)),
                                                                      mask=mask))[mask], atol=1e-5)


def test_the_input_forms_agree():
    model = model_of(feedback=True)
    x, lengths = audio(), np.array([4000, 2500, 1200], "int32")
    expected = numpy(model((x, lengths)))
    pcm = np.round(x * 32768).astype("int16")
    np.testing.assert_allclose(numpy(model({"audio": pcm, "lengths": lengths})), expected, atol=1e-3)
    tags = np.random.default_rng(2).integers(0, TAGS, size=expected.shape[:2])
    previous = numpy(model.shift_tags(tags))
    forced = numpy(model((x, lengths), previous_tags=previous))
    np.testing.assert_allclose(numpy(model((x, lengths, previous))), forced, atol=1e-6)
    np.testing.assert_allclose(numpy(model({"audio": x, "lengths": lengths, "previous_tags": previous})), forced,
                               atol=1e-6)
    with pytest.raises(ValueError, match=r"previous_tags were given twice"):
        model((x, lengths, previous), previous_tags=previous)
    with pytest.raises(ValueError, match=r"takes a dict with the keys \('audio', 'lengths', 'previous_tags'\)"):
        model({"samples": x})
    with pytest.raises(ValueError, match=r"got a tuple of 4"):
        model((x, lengths, previous, previous))


@pytest.mark.jax
def test_spec_augment_masks_only_while_training():
    plain = model_of(dropout=0.0)
    augmented = model_of(dropout=0.0, spec_augment={"freq_masks": 2, "freq_mask_width": 8, "seed": 1})
    assert len(augmented.weights) == len(plain.weights)  # SpecAugment has no weights (its seed state is not one)
    x = audio()
    np.testing.assert_allclose(numpy(augmented(x)), numpy(plain(x)), atol=1e-6)
    assert not np.allclose(numpy(augmented(x, training=True)), numpy(plain(x, training=True)), atol=1e-4)


def test_presets_build_with_the_data_s_output_size():
    for name in ("ctc_acoustic_model", "feedback_acoustic_model", "plain_acoustic_model"):
        model = zoo.models.get(name, num_tags=TAGS)
        assert model((audio(2, 3000), np.array([3000, 2000]))).shape == (2, 6, TAGS)
    assert zoo.models.get("ctc_acoustic_model", num_tags=TAGS).labeller.bidirectional
    assert zoo.models.get("feedback_acoustic_model", num_tags=TAGS).feedback


@pytest.mark.parametrize("feedback", [False, True], ids=["plain", "feedback"])
def test_config_keras_file_and_saved_model_round_trips(feedback, tmp_path):
    model = model_of(feedback=feedback, spec_augment={"time_masks": 1})
    serialization.assert_config_round_trip(model)
    x = (audio(), np.array([4000, 2500, 1200], "int32"))
    serialization.assert_keras_file_round_trip(model, x, str(tmp_path / "m.keras"), atol=1e-5)
    saved_model.assert_saved_model_round_trip(
        model,
        [[audio(), np.array([4000, 2500, 1200], "int32")], [audio(2, 5200, seed=1), np.array([5200, 700], "int32")]],
        str(tmp_path / "saved"),
        atol=1e-4,
        input_signature=[[keras.InputSpec(shape=(None, None), dtype="float32", name="audio"),
                          keras.InputSpec(shape=(None,), dtype="int32", name="lengths")]],
    )


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"num_tags": 0}, "num_tags must be a positive int, got 0"),
        ({"stack": 0}, "stack must be a positive int, got 0"),
        ({"spec_augment": True}, "spec_augment must be a dict of SpecAugment arguments or None, got True"),
        ({"spec_augment": {"freq_masks": -1}}, "freq_masks must be an int >= 0, got -1"),
        ({"cell": "rnn"}, "cell must be one of 'elman', 'jordan', 'leaky', 'lstm', 'gru', got 'rnn'"),
        ({"num_mel_bins": 0}, "num_mel_bins must be a positive int, got 0"),
        ({"feedback": True, "bidirectional": True}, "feedback=True cannot be combined with bidirectional=True"),
    ],
)
def test_bad_arguments_say_what_was_expected(arguments, message):
    with pytest.raises(ValueError, match=message):
        AcousticModel(**{**SMALL, **arguments})


def test_audio_of_the_wrong_rank_is_an_error_naming_the_shape():
    with pytest.raises(ValueError, match=r"AcousticModel takes audio \[batch, samples\].*got shape \(2, 100, 1\)"):
        model_of()(np.zeros((2, 100, 1), "float32"))
