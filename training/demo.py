"""`make demo`: train a small zoo recurrent network on the adding problem and print its test error.

    python -m training.demo [--cell=lstm] [--length=30] [--epochs=6]

The adding problem (Hochreiter & Schmidhuber 1997, in the two-channel form of Le, Jaitly & Hinton 2015): each step
carries a value drawn from U[0, 1] and a marker; exactly two steps are marked, one in each half of the sequence, and
the target is the sum of the two marked values. Always answering the mean (1.0) gives MSE = Var(X1 + X2) = 1/6 ~
0.167, so a model that beats 0.167 by a wide margin has learnt to carry the first value across the sequence.
"""

from absl import app
from absl import flags

from training.startup import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402
import numpy as np  # noqa: E402

import zoo  # noqa: E402

BASELINE_MSE = 1.0 / 6.0

LAYERS = {
    "elman": zoo.rnn.ElmanRNN,
    "jordan": zoo.rnn.JordanRNN,
    "leaky": zoo.rnn.LeakyRNN,
    "lstm": zoo.rnn.LSTM,
    "gru": zoo.rnn.GRU,
}

FLAGS = flags.FLAGS
flags.DEFINE_enum("cell", "lstm", sorted(LAYERS), "Which zoo recurrence to train.")
flags.DEFINE_integer("length", 30, "Sequence length T.", lower_bound=4)
flags.DEFINE_integer("units", 32, "Hidden units.", lower_bound=1)
flags.DEFINE_integer("epochs", 6, "Training epochs.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the data and the weights.")


def adding_problem(count, length, rng):
    """(inputs [count, length, 2], targets [count, 1]): values and markers; target = sum of the marked values."""
    values = rng.uniform(size=(count, length)).astype("float32")
    first = rng.integers(0, length // 2, size=count)
    second = rng.integers(length // 2, length, size=count)
    markers = np.zeros((count, length), "float32")
    markers[np.arange(count), first] = 1.0
    markers[np.arange(count), second] = 1.0
    targets = (values * markers).sum(axis=1, keepdims=True)
    return np.stack([values, markers], axis=-1), targets


def dataset(inputs, targets, batch_size, shuffle_seed=None):
    data = tf.data.Dataset.from_tensor_slices((inputs, targets))
    if shuffle_seed is not None:
        data = data.shuffle(len(inputs), seed=shuffle_seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    rng = np.random.default_rng(FLAGS.seed)
    train = adding_problem(8000, FLAGS.length, rng)
    test = adding_problem(1000, FLAGS.length, rng)
    model = keras.Sequential(
        [
            keras.Input((FLAGS.length, 2)),
            LAYERS[FLAGS.cell](FLAGS.units),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2, clipnorm=1.0), loss="mse")
    print(f"adding problem, T={FLAGS.length}: training zoo {FLAGS.cell} ({model.count_params()} weights)")
    model.fit(dataset(*train, 64, shuffle_seed=FLAGS.seed), epochs=FLAGS.epochs, verbose=2)
    mse = model.evaluate(dataset(*test, 256), verbose=0)
    print(f"test MSE {mse:.4f}  (predicting the mean: {BASELINE_MSE:.4f}; {BASELINE_MSE / mse:.1f}x better)")


if __name__ == "__main__":
    app.run(main)
