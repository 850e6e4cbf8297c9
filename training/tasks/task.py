"""Task: what one training problem knows: its data, loss, metrics, model family, presets and serving signature.

The trainer (`training/trainer.py`) drives every task through this interface and nothing else.
"""

import abc
import functools
import json

import numpy as np
import tensorflow as tf

import zoo
from training import config as run_config
from training.data import batching
from training.data import splits


# What the sequence tasks' presets share (plain data): split sizes besides training, the model, the optimization.
SEQUENCE_TASK_DEFAULTS = {
    "validation_size": 1000,
    "test_size": 1000,
    "model": "lstm",
    "cell": "lstm",
    "units": 64,
    "num_layers": 1,
    "cell_options": {},
    "batch_size": 64,
    "learning_rate": 1e-3,
    "clip_global_norm": 1.0,
}


class Task(abc.ABC):
    """Base class of the tasks. A subclass sets the class attributes, implements `loss` and `metrics`, and gives its
    data one of two ways: `generate(config, count, rng)`, returning `count` examples `(inputs, targets)` drawn with
    `rng` (a `numpy.random.Generator`), from which the default `split_data` draws disjoint splits; or its own
    `split_data` (data read from files, or splits that must not be de-duplicated). Everything else has a default that
    fits sequence-in, tensor-out problems.

    Class attributes:
        name: the task's name on the command line.
        presets: {preset name: flat dict of plain values}: data sizes, model preset and arguments, optimization.
        default_preset: the preset used when none is named.
        monitor: (metric name, "min" or "max"): the validation metric that picks the best checkpoint.
        model_keys: config keys passed to `zoo.models.get(config["model"], ...)`, besides `cell` and the task's
            fixed `model_head` (output size, activation, where the read-out happens).
        warm_start_keys: config keys that `warm_start_config` takes from the run a model is initialised from (a
            resumed run keeps its own).
    """

    name = None
    presets = {}
    default_preset = "default"
    monitor = ("loss", "min")
    model_keys = ("units", "num_layers", "cell_options")
    warm_start_keys = ()

    # What a task supplies.

    @abc.abstractmethod
    def loss(self, config, targets, predictions):
        """Per-example loss [batch], float32."""

    @abc.abstractmethod
    def metrics(self, config, targets, predictions):
        """{metric name: per-example value [batch]}; the trainer averages them over the weighted examples."""

    # Defaults.

    def train_predictions(self, config, model, inputs, step):
        """The model's predictions on a training batch, in the trainer's replica step (under its gradient tape and,
        with a strategy, once per replica): `model(inputs, training=True)`. A task whose training calls the model
        on a schedule (the translation task's scheduled sampling) reads `step`: an int64 scalar tensor, the number
        of training steps taken before this one (0 at the first; a resumed run goes on from its checkpoint's)."""
        return model(inputs, training=True)

    def eval_predictions(self, config, model, inputs):
        """The model's predictions on an evaluation batch (validation, test), in the trainer's replica step:
        `model(inputs, training=False)`. A task whose metrics need more than the teacher-forced outputs (the speech
        task's attention model decodes each utterance, for its word error rate) returns what its `loss` and
        `metrics` read."""
        return model(inputs, training=False)

    def train_scalars(self, config, step):
        """{name: float}: the values of the task's training schedules at `step` (counted as in
        `train_predictions`), which the trainer writes to TensorBoard beside the training loss. Empty by default."""
        return {}

    def after_validation(self, config, model, epoch, metrics, best):
        """Called by the trainer after each epoch's validation pass, before it keeps the best checkpoint: `epoch` is
        the number of epochs finished (from 1), `metrics` the validation metrics, `best` the best value of the
        monitored metric (`monitor`) before this pass (inf or -inf at first). A task may change the model here
        (the bAbI task ends linear start); what it changes must live in the model's variables, which the
        checkpoint saves. Does nothing by default."""

    def check_config(self, config):
        """Raises a ValueError naming the first config value that is out of range: every numeric value
        (`training.config.NUMERIC`), then what a task needs of their combination."""
        run_config.check(config)

    def warm_start_config(self, config, source_config):
        """The config of a run whose model starts from the weights of a run with `source_config` (`--init_from`):
        `config` with what the weights depend on beyond their shapes (e.g. a vocabulary: which id is which token)
        taken from the source, or a ValueError when the two cannot agree. The keys it may set are `warm_start_keys`."""
        return dict(config)

    def summarize(self, config, means):
        """The metrics reported for a split from `means` ({metric: mean over examples}); a task adds the metrics that
        are not means over examples, such as a perplexity from summed token log-likelihoods and token counts."""
        return means

    def decode_metrics(self, config, model, split):
        """{metric: value} that need the model's decoded outputs rather than its per-example predictions (e.g. a
        translation's BLEU), on `split`: `training.evaluate` reports them beside the trainer's metrics (numbers
        among the metrics, strings such as a score's signature under "notes"). None by default."""
        return {}

    def chance_levels(self, config):
        """{metric: the value a model that ignores the long-range information gets}, for context in reports."""
        return {}

    def input_features(self, config):
        return int(self.split_data(config)["test"][0][0].shape[-1])

    def split_sizes(self, config):
        return {
            "train": config["train_size"],
            "validation": config["validation_size"],
            "test": config["test_size"],
        }

    def split_data(self, config):
        """{split: (inputs, targets)}, drawn from `generate` once per config and seed (cached)."""
        return _cached_splits(self, json.dumps(config, sort_keys=True))

    def steps_per_epoch(self, config, global_batch_size):
        if config.get("steps_per_epoch"):
            return int(config["steps_per_epoch"])
        size = config["train_size"] if "train_size" in config else len(self.split_data(config)["train"][1])
        steps = size // global_batch_size
        if steps < 1:
            raise ValueError(
                f"the training split ({size} examples) is smaller than one global batch ({global_batch_size}); "
                "raise train_size or lower batch_size"
            )
        return steps

    def dataset(self, config, split, batch_size, *, input_context=None, skip_batches=0, pad_to_multiple=None):
        """The `(inputs, targets, weights)` batches of one split.

        "train" is one endless stream for the whole run, its order fixed by the seed: `skip_batches` resumes it
        exactly. The other splits are one pass in order, padded to `pad_to_multiple` examples with weight 0.
        """
        inputs, targets = self.split_data(config)[split]
        training = split == "train"
        return batching.sequence_dataset(
            inputs,
            targets,
            batch_size,
            input_context=input_context,
            shuffle_seed=config["seed"] if training else None,
            skip_batches=skip_batches,
            pad_to_multiple=None if training else pad_to_multiple,
        )

    # Token streams (truncated back-propagation through time).

    def streams(self, config):
        """Whether this config trains on token streams with a carried state: each batch is the next window of
        parallel streams (`stream_data`), and the model's state at the end of a window is the initial state of the
        next, its gradient stopped (truncated BPTT; Williams & Peng 1990). False by default. A task that says True
        implements `stream_data`, and its model `initial_state(batch_size)` and a call that takes and returns a
        state (`stream_predictions`); `loss` and `metrics` then get targets [batch, T] of a window, padded with id
        0, and the trainer weights every stream alike."""
        return False

    def stream_data(self, config, split, batch_size, *, input_context=None, skip_windows=0):
        """The `training.data.streams.StreamBatch` windows of a split cut into parallel streams, `batch_size` per
        replica: "train" endless, its windows fixed by the seed (`skip_windows` resumes it exactly); the other
        splits one pass over the whole split, every token scored."""
        raise NotImplementedError(f"task {self.name!r} does not train on streams")

    def initial_state(self, config, model, batch_size):
        """The state a stream starts from: a tuple of tensors [batch_size, ...] (`model.initial_state`)."""
        return tuple(model.initial_state(batch_size))

    def stream_predictions(self, config, model, inputs, state, mask, training):
        """(predictions, final state) of a window from the carried `state`; `mask` [batch, T] is False at padded
        positions, which must leave the state as after the last real token."""
        return model(inputs, training=training, initial_state=state, mask=mask, return_state=True)

    @abc.abstractmethod
    def model_head(self, config):
        """The model arguments the task fixes: {"output_units": ..., "output_activation": ..., ...}."""

    def build_model(self, config):
        arguments = {key: config[key] for key in self.model_keys if key in config}
        arguments["cell"] = config["cell"]
        return zoo.models.get(config["model"], **arguments, **self.model_head(config))

    def serving_signature(self, config):
        """The inputs of this task's exported `serving_default`: {name: tf.TensorSpec}."""
        return {"inputs": tf.TensorSpec([None, None, self.input_features(config)], tf.float32, name="inputs")}

    def serving_outputs(self, config, predictions):
        """{output name: dense tensor} that `serving_default` returns for the model's predictions."""
        return {"outputs": tf.cast(predictions, tf.float32)}

    def serving_functions(self, config, model):
        """{signature name: tf.function with an input signature}: `serving_default`, plus the task's own (e.g.
        `regress` or `classify` over serialized tf.Examples). Every output is dense."""
        spec = self.serving_signature(config)["inputs"]

        @tf.function(input_signature=[spec])
        def serving_default(inputs):
            return self.serving_outputs(config, model(inputs, training=False))

        return {"serving_default": serving_default}

    def serving_module(self, config, model):
        """The `tf.Module` an export saves besides the model: its `functions` attribute holds the signatures
        (`serving_functions`); a task whose signatures use resources of their own (vocabulary tables) keeps them on
        this module, so that the SavedModel tracks them. A module that writes files for the save (the language
        model's vocabulary file, which the SavedModel copies under assets/) has a `close()` that removes them; the
        export calls it once the SavedModel is written. Every input TensorSpec of a signature has a name: it is
        the input's key in the signature and in its dict endpoint (`serving.export.dict_endpoint`)."""
        module = tf.Module()
        module.functions = self.serving_functions(config, model)
        return module

    def warmup_inputs(self, config, count=2):
        """{input name: value} of `serving_default` for the export's warmup requests: the first `count` test
        examples."""
        return {"inputs": tf.constant(self.split_data(config)["test"][0][:count], tf.float32)}

    def example_features(self, config):
        """{feature name: (tf.train.Example feature spec, step-feature index)} of the tf.Example form of an input
        sequence (one float list of length T per input feature), or None when lengths vary."""
        if config.get("length_jitter", 0.0):
            return None
        length, features = self.split_data(config)["test"][0].shape[1:]
        return {f"x{i}": tf.io.FixedLenFeature([length], tf.float32) for i in range(features)}

    def sequences_from_examples(self, config, serialized):
        """A [batch, T, F] float tensor from serialized tf.Examples with the features of `example_features`."""
        features = self.example_features(config)
        parsed = tf.io.parse_example(serialized, features)
        return tf.stack([parsed[name] for name in sorted(features, key=lambda n: int(n[1:]))], axis=-1)


@functools.lru_cache(maxsize=8)
def _cached_splits(task, config_json):
    config = json.loads(config_json)
    return splits.disjoint_splits(
        lambda count, rng: task.generate(config, count, rng), task.split_sizes(config), config["seed"]
    )


def mean_squared_error(targets, predictions):
    """Per-example MSE over every axis but the first."""
    error = tf.square(tf.cast(predictions, tf.float32) - tf.cast(targets, tf.float32))
    return tf.reduce_mean(tf.reshape(error, [tf.shape(error)[0], -1]), axis=1)


def length_jittered(base_length, jitter, count, rng):
    """Sequence lengths drawn uniformly from [T, T + jitter * T] (LSTM'97's experiments use jitter 0.1)."""
    high = base_length + int(np.floor(jitter * base_length))
    return rng.integers(base_length, high + 1, size=count)
