"""The Neural Turing Machine's algorithmic tasks (Graves, Wayne & Danihelka 2014, §4): copy, repeat copy,
associative recall and priority sort, one preset each (`training.data.algorithmic` has the channel layouts).

Training reads fresh sequences, as in the paper: batch i of input pipeline p is drawn with the seed
`(seed, p, i)`, so the stream is fixed by the run's seed and a resumed run (`skip_batches`) reads exactly the batches
it would have read. The validation and test splits are fixed sets drawn once per config. The test split's lengths are
`eval_min_length`..`eval_max_length` (default: the training lengths), and `eval_generator_options` replaces generator
options there (e.g. more repeats), so a trained run is evaluated beyond its training lengths with
`python -m training.evaluate --model_dir=RUN --override=eval_min_length=40,eval_max_length=40`.

Curriculum on length (`curriculum_steps` > 0): at training step s, lengths are drawn uniformly from
[min_length, min_length + floor((max_length - min_length) * min(1, s / curriculum_steps))]; the step is computed
from the batch index in the pipeline, so a resumed run continues the same curriculum. 0 (the default) draws from
[min_length, max_length] throughout.

The model reads the inputs [batch, T, width] and writes logits [batch, T, target width] at every step; the read-out
is a sigmoid (in the loss and in the export). Loss: the sigmoid cross-entropy summed over the bits and the answer
steps (the target mask; nats per sequence). Metric: `bit_errors`, the bits of the rounded outputs that differ from
the targets over the answer steps, per sequence. Targets are stored as [T, target width + 1]: the last channel is
the mask (0 on padding too).

The model is `config["model"]` from the zoo (each preset's NTM: `ntm_copy`, `ntm_repeat_copy`,
`ntm_associative_recall`, `ntm_priority_sort`, the configuration of Collier & Beel 2018), built with `model_options`
and the head the task fixes: `output_units` (the target width) and, where the model takes them,
`output_activation=None` (logits), `per_step_outputs=True` and `mask_padding=False` (the answer steps have all-zero
inputs: they must not be skipped as padding). The LSTM baseline is `--override=model=lstm,model_options={"units":
120}` (the zoo's one-layer LSTM; 120 units have 63,368 parameters with the copy head, the NTM 62,536).
"""

import functools
import json
import math

import numpy as np
import tensorflow as tf

import zoo
from training.data import algorithmic
from training.tasks.task import Task

_COMMON = {
    # The model: a zoo preset (each task names its NTM preset; "lstm" with model_options {"units": ...} is the
    # baseline) and its arguments.
    "model_options": {},
    # Collier & Beel (2018): Adam 1e-3, batch 32, global-norm clip 50; about 1M sequences in 31 epochs of 32,000.
    "batch_size": 32,
    "learning_rate": 1e-3,
    "clip_global_norm": 50.0,
    "train_size": 32000,  # training sequences per epoch (fresh ones every batch)
    "epochs": 31,
    "validation_size": 640,
    "test_size": 640,
    "curriculum_steps": 0,
    "eval_min_length": None,
    "eval_max_length": None,
    "generator_options": {},
    "eval_generator_options": {},
}

# The head arguments passed only to models that take them.
_OPTIONAL_HEAD = {"output_activation": None, "per_step_outputs": True, "mask_padding": False}


class NTMTask(Task):
    name = "ntm"
    monitor = ("bit_errors", "min")
    default_preset = "copy"
    presets = {
        # 8-bit vectors, length 1..20.
        "copy": {**_COMMON, "model": "ntm_copy", "algorithm": "copy", "bits": 8, "min_length": 1, "max_length": 20},
        # Length 1..10, 1..10 repeats (fed as repeats / 10).
        "repeat_copy": {
            **_COMMON,
            "model": "ntm_repeat_copy", "algorithm": "repeat_copy",
            "bits": 8,
            "min_length": 1,
            "max_length": 10,
            "generator_options": {"min_repeats": 1, "max_repeats": 10, "repeat_scale": 10.0},
        },
        # 2..6 items of three 6-bit vectors.
        "associative_recall": {
            **_COMMON,
            "model": "ntm_associative_recall", "algorithm": "associative_recall",
            "bits": 6,
            "min_length": 2,
            "max_length": 6,
            "generator_options": {"item_length": 3},
        },
        # The 16 highest-priority of 20 8-bit vectors.
        "priority_sort": {
            **_COMMON,
            "model": "ntm_priority_sort", "algorithm": "priority_sort",
            "bits": 8,
            "min_length": 20,
            "max_length": 20,
            "generator_options": {"num_outputs": 16},
        },
    }

    def check_config(self, config):
        super().check_config(config)
        if config["algorithm"] not in algorithmic.GENERATORS:
            raise ValueError(
                f"algorithm must be one of {sorted(algorithmic.GENERATORS)}, got {config['algorithm']!r}"
            )
        for key in ("generator_options", "eval_generator_options"):
            if not isinstance(config[key], dict):
                raise ValueError(f"{key} must be a dict of generator arguments, got {config[key]!r}")
        # The generator checks the rest (lengths in order, options it knows), on one example of each kind.
        for split in ("validation", "test"):
            try:
                algorithmic.GENERATORS[config["algorithm"]](np.random.default_rng(0), **self.arguments(config, split))
            except (TypeError, ValueError) as error:
                raise ValueError(
                    f"the {split} split's generator arguments do not fit {config['algorithm']}: {error}"
                ) from error

    # Data.

    def arguments(self, config, split, step=None):
        """The generator arguments of `split`; for training at `step`, with the curriculum's longest length."""
        arguments = {"bits": config["bits"], **config["generator_options"],
                     "min_length": config["min_length"], "max_length": config["max_length"]}
        if split == "test":
            arguments.update(config["eval_generator_options"])
            if config["eval_min_length"] is not None:
                arguments["min_length"] = config["eval_min_length"]
            if config["eval_max_length"] is not None:
                arguments["max_length"] = config["eval_max_length"]
        elif split == "train" and step is not None:
            arguments["max_length"] = self.curriculum_max_length(config, step)
        return arguments

    def curriculum_max_length(self, config, step):
        """The longest training length at `step` (the number of steps taken before it)."""
        low, high, steps = config["min_length"], config["max_length"], config["curriculum_steps"]
        if not steps:
            return high
        return low + int(math.floor((high - low) * min(1.0, step / steps)))

    def train_scalars(self, config, step):
        if not config["curriculum_steps"]:
            return {}
        return {"curriculum_max_length": float(self.curriculum_max_length(config, int(step)))}

    def split_data(self, config):
        """{split: (inputs, targets)}: lists of [T, width] and [T, target width + 1] (mask last). "train" is a fixed
        sample of the training distribution (for evaluation); training itself reads the stream of `dataset`."""
        return _cached_splits(self, json.dumps(config, sort_keys=True))

    def dataset(self, config, split, batch_size, *, input_context=None, skip_batches=0, pad_to_multiple=None):
        if split != "train":
            return super().dataset(config, split, batch_size, input_context=input_context,
                                   pad_to_multiple=pad_to_multiple)
        pipeline, replicas = 0, 1
        if input_context is not None:
            pipeline = input_context.input_pipeline_id
            replicas = input_context.num_replicas_in_sync // input_context.num_input_pipelines
        in_width, out_width = algorithmic.widths(config["algorithm"], config["bits"])

        def draw(index):
            index = int(index)
            rng = np.random.default_rng([config["seed"], pipeline, index])
            arguments = self.arguments(config, "train", step=index // replicas)
            inputs, targets, mask = algorithmic.batch(config["algorithm"], rng, batch_size, **arguments)
            return inputs, _with_mask(targets, mask), np.ones(batch_size, "float32")

        def gather(index):
            inputs, targets, weights = tf.numpy_function(draw, [index], [tf.float32] * 3, stateful=False)
            inputs.set_shape([batch_size, None, in_width])
            targets.set_shape([batch_size, None, out_width + 1])
            weights.set_shape([batch_size])
            return inputs, targets, weights

        data = tf.data.Dataset.counter(start=skip_batches)
        data = data.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return data.prefetch(tf.data.AUTOTUNE)

    def input_features(self, config):
        return algorithmic.widths(config["algorithm"], config["bits"])[0]

    def example_features(self, config):
        return None  # lengths vary

    def warmup_inputs(self, config, count=2):
        inputs = self.split_data(config)["test"][0][:count]
        padded = np.zeros((len(inputs), max(len(x) for x in inputs), inputs[0].shape[-1]), "float32")
        for row, x in enumerate(inputs):
            padded[row, : len(x)] = x
        return {"inputs": tf.constant(padded)}

    # The model.

    def model_head(self, config):
        return {"output_units": algorithmic.widths(config["algorithm"], config["bits"])[1], **_OPTIONAL_HEAD}

    def build_model(self, config):
        accepted = set(zoo.models.arguments_of(config["model"]))
        head = {k: v for k, v in self.model_head(config).items() if k == "output_units" or k in accepted}
        return zoo.models.get(config["model"], **config["model_options"], **head)

    def serving_outputs(self, config, predictions):
        return {"outputs": tf.sigmoid(tf.cast(predictions, tf.float32))}

    # Loss and metrics.

    def loss(self, config, targets, predictions):
        bits, mask = _bits_and_mask(targets)
        cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(labels=bits, logits=tf.cast(predictions, tf.float32))
        return tf.reduce_sum(tf.reduce_sum(cross_entropy, axis=-1) * mask, axis=1)

    def metrics(self, config, targets, predictions):
        bits, mask = _bits_and_mask(targets)
        rounded = tf.cast(tf.cast(predictions, tf.float32) > 0.0, tf.float32)  # sigmoid(logit) > 0.5
        errors = tf.reduce_sum(tf.abs(rounded - bits), axis=-1) * mask
        return {"bit_errors": tf.reduce_sum(errors, axis=1)}


def _with_mask(targets, mask):
    return np.concatenate([targets, mask[..., None]], axis=-1).astype("float32")


def _bits_and_mask(targets):
    targets = tf.cast(targets, tf.float32)
    return targets[..., :-1], targets[..., -1]


@functools.lru_cache(maxsize=8)
def _cached_splits(task, config_json):
    config = json.loads(config_json)
    sizes = {"train": config["validation_size"], "validation": config["validation_size"], "test": config["test_size"]}
    splits = {}
    for key, split in enumerate(("train", "validation", "test")):
        rng = np.random.default_rng([config["seed"], key])
        split_arguments = task.arguments(config, split)
        inputs, targets, masks = algorithmic.examples(config["algorithm"], rng, sizes[split], **split_arguments)
        splits[split] = (inputs, [_with_mask(y, m) for y, m in zip(targets, masks)])
    return splits
