import keras
import numpy as np
import pytest

from tests.helpers import backend
from tests.helpers import serialization
from zoo.layers.spec_augment import SpecAugment

BATCH, FRAMES, CHANNELS = 64, 120, 80


def features(batch=BATCH, frames=FRAMES, seed=0):
    # Never 0 (the mask value), so that every masked cell can be told from the others.
    return (np.random.default_rng(seed).uniform(1.0, 2.0, size=(batch, frames, CHANNELS))).astype("float32")


def runs(flags):
    """[(start, length)] of the runs of True in a 1-D bool array."""
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(starts, ends - starts))


def test_the_identity_unless_training():
    x = features()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(SpecAugment(seed=1)(x)), x)


@pytest.mark.jax
def test_masks_are_whole_channel_bands_and_frame_spans_within_their_limits():
    x = features()
    lengths = np.random.default_rng(1).integers(40, FRAMES + 1, BATCH)
    mask = np.arange(FRAMES)[None, :] < lengths[:, None]
    layer = SpecAugment(freq_masks=2, freq_mask_width=27, time_masks=2, time_mask_width=10, time_mask_ratio=0.1,
                        seed=3)
    y = keras.ops.convert_to_numpy(layer(x, training=True, mask=mask))
    masked = y == 0.0
    np.testing.assert_array_equal(y[~masked], x[~masked])
    for row in range(BATCH):
        channels = masked[row].all(axis=0)  # bands: masked at every frame
        frames = masked[row].all(axis=1)  # spans: masked at every channel
        # Every masked cell is in a band or a span: no other shapes.
        np.testing.assert_array_equal(masked[row], channels[None, :] | frames[:, None])
        bands, spans = runs(channels), runs(frames)
        # Two masks of each kind (overlapping ones merge into one run, and width 0 leaves none).
        assert len(bands) <= 2 and all(w <= 2 * 27 for _, w in bands)
        limit = min(10, int(0.1 * lengths[row]))
        assert len(spans) <= 2 and all(w <= 2 * limit for _, w in spans)
        assert all(s + w <= lengths[row] for s, w in spans), "a span past the row's real frames"
    # The bands are drawn: their widths cover 0..F and their positions both ends of the axis.
    widths = [w for row in range(BATCH) for _, w in runs(masked[row].all(axis=0))]
    assert max(widths) > 20 and np.mean(masked.all(axis=1).mean(axis=1)) > 0.1


def test_one_band_is_uniform_in_width_and_place():
    x = features(batch=400, frames=4)
    y = keras.ops.convert_to_numpy(SpecAugment(freq_masks=1, freq_mask_width=20, time_masks=0, seed=0)(
        x, training=True))
    bands = [runs((y[row] == 0).all(axis=0)) for row in range(400)]
    widths = [b[0][1] if b else 0 for b in bands]
    # f ~ U{0..20}: mean 10, and each width about 1/21 of the time (400 draws: a loose bound).
    assert 9.0 < np.mean(widths) < 11.0 and widths.count(0) > 5
    starts = [b[0][0] for b in bands if b]
    assert min(starts) <= 2 and max(s + w for b in bands if b for s, w in b) >= CHANNELS - 2


def test_the_seed_fixes_the_masks_and_calls_draw_anew():
    x = features(batch=8)
    a, b = SpecAugment(seed=5), SpecAugment(seed=5)
    first = keras.ops.convert_to_numpy(a(x, training=True))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(b(x, training=True)), first)
    assert not np.array_equal(keras.ops.convert_to_numpy(a(x, training=True)), first)


def test_runs_in_a_compiled_training_step():
    backend.skip_unless_tensorflow("tf.function with a SeedGenerator")
    import tensorflow as tf

    layer = SpecAugment(seed=0)
    step = tf.function(lambda v: layer(v, training=True), jit_compile=True)
    y = step(tf.constant(features(batch=4))).numpy()
    assert (y == 0).any() and y.shape == (4, FRAMES, CHANNELS)


def test_config_and_keras_file_round_trip(tmp_path):
    layer = SpecAugment(freq_masks=1, freq_mask_width=10, time_masks=3, time_mask_width=5, time_mask_ratio=0.2,
                        mask_value=-1.0, seed=7)
    serialization.assert_config_round_trip(layer)
    model = keras.Sequential([keras.Input((None, CHANNELS)), layer])
    serialization.assert_keras_file_round_trip(model, features(batch=2), str(tmp_path / "m.keras"))


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"freq_masks": -1}, "freq_masks must be an int >= 0, got -1"),
        ({"time_mask_width": 2.5}, "time_mask_width must be an int >= 0, got 2.5"),
        ({"time_mask_ratio": 0.0}, r"time_mask_ratio must be a float in \(0, 1\], got 0.0"),
        ({"mask_value": "zero"}, "mask_value must be a float, got 'zero'"),
    ],
)
def test_bad_arguments_say_what_was_expected(arguments, message):
    with pytest.raises(ValueError, match=message):
        SpecAugment(**arguments)
