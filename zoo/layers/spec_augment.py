"""SpecAugment's masking: bands of frequency channels and spans of time set to zero while training (D. S. Park et
al. 2019, "SpecAugment: a simple data augmentation method for automatic speech recognition"; time warping is left
out, as the paper finds it the least useful)."""

import keras
from keras import ops


def band_mask(size, widths, starts):
    """bool [batch, size]: True inside the band [start, start + width) of each row.

    Args:
        size: int, the axis's length.
        widths, starts: int [batch, masks]: each row's bands.
    Returns:
        bool [batch, size], True where any of the row's bands covers the position.
    """
    positions = ops.arange(size)[None, None, :]
    inside = (positions >= starts[:, :, None]) & (positions < (starts + widths)[:, :, None])
    return ops.any(inside, axis=1)


@keras.saving.register_keras_serializable(package="zoo")
class SpecAugment(keras.layers.Layer):
    """Masks features [batch, frames, channels] in training; the identity otherwise.

    Each example draws, independently (uniform integers):
        `freq_masks` bands of f ~ U{0..F} channels from f_0 ~ U{0..channels - f}      F: `freq_mask_width`
        `time_masks` spans of t ~ U{0..min(T, p * frames)} frames from t_0 ~ U{0..frames - t}
                                              T: `time_mask_width`, p: `time_mask_ratio`, frames: the row's own
    and sets them to `mask_value` (default 0: the mean of standardized features, `LogMelSpectrogram`'s). The
    paper's LibriSpeech basic policy is F = 27 of 80 channels, T = 100 frames, p = 1, one mask each; its smaller
    policies lower T and p.

    Args:
        freq_masks: int >= 0, bands per example (default 2).
        freq_mask_width: int >= 0, F (default 27).
        time_masks: int >= 0, spans per example (default 2).
        time_mask_width: int >= 0, T (default 40).
        time_mask_ratio: float in (0, 1], p (default 0.05).
        mask_value: float (default 0.0).
        seed: int or None, for the layer's random draws.

    Call arguments:
        inputs: float [batch, frames, channels].
        training: masks only when True.
        mask: optional bool [batch, frames]: a row's spans are drawn within its real frames (passed on unchanged).
    """

    def __init__(self, freq_masks=2, freq_mask_width=27, time_masks=2, time_mask_width=40, time_mask_ratio=0.05,
                 mask_value=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.freq_masks = _count("freq_masks", freq_masks)
        self.freq_mask_width = _count("freq_mask_width", freq_mask_width)
        self.time_masks = _count("time_masks", time_masks)
        self.time_mask_width = _count("time_mask_width", time_mask_width)
        if isinstance(time_mask_ratio, bool) or not isinstance(time_mask_ratio, (int, float)) or not (
            0.0 < time_mask_ratio <= 1.0
        ):
            raise ValueError(f"time_mask_ratio must be a float in (0, 1], got {time_mask_ratio!r}")
        self.time_mask_ratio = float(time_mask_ratio)
        if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float)):
            raise ValueError(f"mask_value must be a float, got {mask_value!r}")
        self.mask_value = float(mask_value)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def _draw(self, batch, count, limits, high):
        """int32 (widths, starts) [batch, count]: widths ~ U{0..limits} (limits [batch, 1]), starts ~
        U{0..high - width} (high [batch, 1])."""
        u = keras.random.uniform((batch, count, 2), seed=self.seed_generator)
        limits = ops.cast(limits, "float32")
        widths = ops.cast(ops.floor(u[..., 0] * (limits + 1.0)), "int32")
        widths = ops.minimum(widths, ops.cast(limits, "int32"))
        room = ops.cast(high, "int32") - widths
        starts = ops.cast(ops.floor(u[..., 1] * ops.cast(room + 1, "float32")), "int32")
        return widths, ops.clip(starts, 0, ops.maximum(room, 0))

    def call(self, inputs, training=False, mask=None):
        if not training or (self.freq_masks == 0 and self.time_masks == 0):
            return inputs
        batch, frames, channels = ops.shape(inputs)[0], ops.shape(inputs)[1], inputs.shape[-1]
        if mask is None:
            lengths = ops.full((batch, 1), frames, "int32")
        else:
            lengths = ops.sum(ops.cast(mask, "int32"), axis=1, keepdims=True)
        masked = ops.zeros((batch, frames, channels), "bool")
        if self.freq_masks:
            widths, starts = self._draw(batch, self.freq_masks, ops.full((batch, 1), min(self.freq_mask_width,
                                                                                        channels)),
                                        ops.full((batch, 1), channels))
            masked = masked | band_mask(channels, widths, starts)[:, None, :]
        if self.time_masks:
            limit = ops.minimum(ops.cast(self.time_mask_width, "float32"),
                                ops.floor(self.time_mask_ratio * ops.cast(lengths, "float32")))
            widths, starts = self._draw(batch, self.time_masks, limit, lengths)
            masked = masked | band_mask(frames, widths, starts)[:, :, None]
        return ops.where(masked, ops.cast(self.mask_value, inputs.dtype), inputs)

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "freq_masks": self.freq_masks,
            "freq_mask_width": self.freq_mask_width,
            "time_masks": self.time_masks,
            "time_mask_width": self.time_mask_width,
            "time_mask_ratio": self.time_mask_ratio,
            "mask_value": self.mask_value,
            "seed": self.seed,
        }


def _count(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return value
