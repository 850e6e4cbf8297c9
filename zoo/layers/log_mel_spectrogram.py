"""LogMelSpectrogram: the log-mel filterbank front end of speech recognizers, raw audio in (S. B. Davis &
P. Mermelstein 1980, "Comparison of parametric representations for monosyllabic word recognition"; the mel scale of
S. S. Stevens, J. Volkmann & E. B. Newman 1937, in HTK's form)."""

import keras
import numpy as np
from keras import ops

from zoo import arguments


def hertz_to_mel(frequencies):
    """HTK's mel scale: m = 1127 ln(1 + f / 700)."""
    return 1127.0 * np.log1p(np.asarray(frequencies, np.float64) / 700.0)


def mel_filterbank(num_mel_bins, num_spectrogram_bins, sample_rate, lower_edge_hertz, upper_edge_hertz):
    """W [num_spectrogram_bins, num_mel_bins]: triangular filters, evenly spaced on the mel scale between the two
    edges, each rising from 0 at its lower neighbour's centre to 1 at its own and back to 0 at its upper
    neighbour's; the 0 Hz (DC) bin is left out. `tf.signal.linear_to_mel_weight_matrix` builds the same matrix."""
    frequencies = np.linspace(0.0, sample_rate / 2.0, num_spectrogram_bins)[1:]
    mels = hertz_to_mel(frequencies)[:, None]
    edges = np.linspace(hertz_to_mel(lower_edge_hertz), hertz_to_mel(upper_edge_hertz), num_mel_bins + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (mels - lower) / (centre - lower)
    falling = (upper - mels) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.pad(weights, [[1, 0], [0, 0]]).astype(np.float32)


def frame_count(lengths, frame_length, frame_step):
    """Frames of `lengths` samples: 1 + (length - frame_length) // frame_step, and 0 for a shorter signal (frames
    never run past the signal's end)."""
    lengths = ops.cast(lengths, "int32")
    return ops.where(lengths >= frame_length, (lengths - frame_length) // frame_step + 1, 0)


@keras.saving.register_keras_serializable(package="zoo")
class LogMelSpectrogram(keras.layers.Layer):
    """Log-mel features of raw audio: [batch, samples] -> [batch, frames, num_mel_bins].

    Frame f holds samples x[f s, f s + N) (N = `frame_length`, s = `frame_step`; frames never run past the end, so
    frames = 1 + (samples - N) // s):

        X_f = DFT_N(w * x[f s : f s + N])        w: the periodic Hann window of N samples
        P_f = |X_f|^2                            the power spectrum, N // 2 + 1 bins
        M_f = P_f W                              W: [N // 2 + 1, num_mel_bins] triangular mel filters
                                                     (`mel_filterbank`; a constant, not a weight)
        y_f = ln(M_f + log_offset)

    With `normalize` (default) each utterance's features are then standardized per mel bin over its own real
    frames, y_f <- (y_f - mean) / sqrt(var + 1e-5): a gain on the signal, a constant shift of the log, no longer
    matters. The DFT is N samples long: the frames are `tf.signal.stft`'s with `fft_length=frame_length`.

    The layer has no weights. It runs on every Keras backend (`keras.ops.stft`); on TensorFlow it exports as core
    ops, so a SavedModel takes raw audio.

    Args:
        sample_rate: positive int, Hz of the audio (default 16000).
        frame_length: positive int, samples per frame and DFT size (default 400: 25 ms at 16 kHz).
        frame_step: positive int, samples between frame starts (default 160: 10 ms).
        num_mel_bins: positive int (default 80).
        lower_edge_hertz, upper_edge_hertz: the filterbank's range (default 20 Hz to the Nyquist frequency).
        log_offset: positive float added before the log (default 1e-6).
        normalize: standardize each utterance's features (default True).

    Call arguments:
        inputs: float [batch, samples].
        mask: optional bool [batch, samples], True at the samples of the signal (a row's real samples come first):
            frames past a row's end are zero, left out of its statistics, and masked in the output mask
            (`compute_mask`). Or pass `lengths` int [batch] instead.

    Example:
        ```python
        features = LogMelSpectrogram()(audio)  # audio [batch, 16000] -> [batch, 98, 80]
        ```
    """

    def __init__(self, sample_rate=16000, frame_length=400, frame_step=160, num_mel_bins=80, lower_edge_hertz=20.0,
                 upper_edge_hertz=None, log_offset=1e-6, normalize=True, **kwargs):
        super().__init__(**kwargs)
        self.sample_rate = arguments.positive_int("sample_rate", sample_rate)
        self.frame_length = arguments.positive_int("frame_length", frame_length)
        self.frame_step = arguments.positive_int("frame_step", frame_step)
        self.num_mel_bins = arguments.positive_int("num_mel_bins", num_mel_bins)
        nyquist = self.sample_rate / 2.0
        upper = nyquist if upper_edge_hertz is None else upper_edge_hertz
        if isinstance(lower_edge_hertz, bool) or not isinstance(lower_edge_hertz, (int, float)) or not (
            0.0 <= lower_edge_hertz < upper <= nyquist
        ):
            raise ValueError(
                f"the filterbank's edges must satisfy 0 <= lower_edge_hertz < upper_edge_hertz <= sample_rate / 2 "
                f"({nyquist:g}), got lower_edge_hertz={lower_edge_hertz!r}, upper_edge_hertz={upper_edge_hertz!r}"
            )
        self.lower_edge_hertz = float(lower_edge_hertz)
        self.upper_edge_hertz = None if upper_edge_hertz is None else float(upper_edge_hertz)
        if isinstance(log_offset, bool) or not isinstance(log_offset, (int, float)) or log_offset <= 0:
            raise ValueError(f"log_offset must be a positive float, got {log_offset!r}")
        self.log_offset = float(log_offset)
        self.normalize = arguments.boolean("normalize", normalize)
        self.filterbank = mel_filterbank(self.num_mel_bins, self.frame_length // 2 + 1, self.sample_rate,
                                         self.lower_edge_hertz, upper)
        self.supports_masking = True

    def frame_lengths(self, lengths):
        """int32 [batch]: the frames of signals of `lengths` samples."""
        return frame_count(lengths, self.frame_length, self.frame_step)

    def _lengths(self, inputs, mask, lengths):
        if lengths is not None:
            return ops.cast(lengths, "int32")
        if mask is not None:
            return ops.sum(ops.cast(mask, "int32"), axis=-1)
        return None

    def call(self, inputs, mask=None, lengths=None):
        if len(inputs.shape) != 2:
            raise ValueError(f"LogMelSpectrogram takes audio [batch, samples], got shape {tuple(inputs.shape)}")
        x = ops.cast(inputs, "float32")
        # Shorter than one frame: padded to one, which the frame mask then leaves out. (A static length is known to
        # every backend but TensorFlow's symbolic graphs, where the padding is a tensor.)
        samples = x.shape[1]
        short = self.frame_length - (ops.shape(x)[1] if samples is None else samples)
        if samples is None or short > 0:
            x = ops.pad(x, [[0, 0], [0, ops.maximum(short, 0)]])
        real, imaginary = ops.stft(x, self.frame_length, self.frame_step, self.frame_length, window="hann",
                                   center=False)
        power = ops.square(real) + ops.square(imaginary)
        features = ops.log(ops.matmul(power, ops.convert_to_tensor(self.filterbank)) + self.log_offset)
        sample_lengths = self._lengths(inputs, mask, lengths)
        frames = ops.shape(features)[1]
        if sample_lengths is None:
            valid = ops.ones(ops.shape(features)[:2], "float32")
        else:
            valid = ops.cast(ops.arange(frames)[None, :] < self.frame_lengths(sample_lengths)[:, None], "float32")
        valid = valid[:, :, None]
        if self.normalize:
            count = ops.maximum(ops.sum(valid, axis=1, keepdims=True), 1.0)
            mean = ops.sum(features * valid, axis=1, keepdims=True) / count
            variance = ops.sum(ops.square(features - mean) * valid, axis=1, keepdims=True) / count
            features = (features - mean) * ops.rsqrt(variance + 1e-5)
        return features * valid

    def compute_mask(self, inputs, mask=None, lengths=None):
        sample_lengths = self._lengths(inputs, mask, lengths)
        if sample_lengths is None:
            return None
        frames = frame_count(ops.maximum(ops.shape(inputs)[1], self.frame_length), self.frame_length,
                             self.frame_step)
        return ops.arange(frames)[None, :] < self.frame_lengths(sample_lengths)[:, None]

    def compute_output_shape(self, input_shape):
        batch, samples = input_shape
        frames = None if samples is None else max(1 + (samples - self.frame_length) // self.frame_step, 1)
        return (batch, frames, self.num_mel_bins)

    def get_config(self):
        return {
            **super().get_config(),
            "sample_rate": self.sample_rate,
            "frame_length": self.frame_length,
            "frame_step": self.frame_step,
            "num_mel_bins": self.num_mel_bins,
            "lower_edge_hertz": self.lower_edge_hertz,
            "upper_edge_hertz": self.upper_edge_hertz,
            "log_offset": self.log_offset,
            "normalize": self.normalize,
        }
