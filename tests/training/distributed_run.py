"""Training runs for the distribution tests, as their own process (strategies must be set up before TF starts).

    python tests/training/distributed_run.py STRATEGY MODEL_DIR OUTPUT.npz [options]

STRATEGY: "default" (one device, global batch 32), "mirrored2" (MirroredStrategy over two logical CPUs, 16 per
replica) or "multi_worker" (MultiWorkerMirroredStrategy from TF_CONFIG, 16 per worker). A small adding problem
(T = 10, 16 units), 32 steps per epoch at 1024 training examples.

Writes to OUTPUT.npz the final weights (w0, w1, ...), the per-epoch training loss, the final validation MSE, and with
the options:

    --record            the training examples (indices into the training split) that this worker's pipelines yield
                        at every step of the run, [steps, local replicas, batch] as "indices"
    --replay FILE.npy   (one device) train on these global batches, [steps, 32] indices into the training split,
                        instead of the task's own training stream
    --interrupt_at N    train to step N, then resume from that checkpoint with a new Trainer to the run's end (in
                        MODEL_DIR-split), besides the uninterrupted run (in MODEL_DIR): the resumed run's weights are
                        "resumed_w0", ..., what it printed "resumed_printed"
    --overrides JSON    config overrides, e.g. '{"train_size": 512, "epochs": 2}'
"""

import argparse
import io
import json

from training.startup import import_tensorflow

tf = import_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from training import config as run_config  # noqa: E402
from training import strategies  # noqa: E402
from training import tasks  # noqa: E402
from training.tasks.adding import AddingTask  # noqa: E402
from training.trainer import DEFAULTS  # noqa: E402
from training.trainer import Trainer  # noqa: E402

GLOBAL_BATCH = 32


class ReplayedAdding(AddingTask):
    """The adding task whose training stream is a given list of global batches (indices into the training split)."""

    def __init__(self, batches):
        self.batches = np.asarray(batches, "int64")

    def dataset(self, config, split, batch_size, *, input_context=None, skip_batches=0, pad_to_multiple=None):
        if split != "train":
            return super().dataset(config, split, batch_size, input_context=input_context,
                                   skip_batches=skip_batches, pad_to_multiple=pad_to_multiple)
        if batch_size != self.batches.shape[1]:
            raise ValueError(
                f"the replayed batches hold {self.batches.shape[1]} examples; the run asks for {batch_size} a step"
            )
        inputs, targets = (tf.constant(column) for column in self.split_data(config)["train"])
        return tf.data.Dataset.from_tensor_slices(self.batches).skip(skip_batches).map(
            lambda indices: (tf.gather(inputs, indices), tf.gather(targets, indices), tf.ones_like(indices, tf.float32))
        )


def make_strategy(kind):
    if kind == "mirrored2":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    return strategies.make(kind)


def recorded_indices(trainer, task, config):
    """The training examples each local replica's batch holds at every step of the run, [steps, replicas, batch]:
    the run's training stream read again from its start (its order is fixed by the seed), each example found in the
    training split by its values."""
    inputs = task.split_data(config)["train"][0]
    where = {example.tobytes(): index for index, example in enumerate(inputs)}
    total = config["steps"] or config["epochs"] * trainer.steps_per_epoch
    steps = []
    for _, batch in zip(range(total), trainer.train_data()):
        local = trainer.strategy.experimental_local_results(batch[0])
        steps.append([[where[example.tobytes()] for example in replica.numpy()] for replica in local])
    return np.array(steps, "int64")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["default", "mirrored2", "multi_worker"])
    parser.add_argument("model_dir")
    parser.add_argument("output")
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--replay")
    parser.add_argument("--interrupt_at", type=int)
    parser.add_argument("--overrides", default="{}")
    args = parser.parse_args()
    strategy = make_strategy(args.kind)
    per_replica = GLOBAL_BATCH // strategy.num_replicas_in_sync
    task = ReplayedAdding(np.load(args.replay)) if args.replay else tasks.get("adding")
    overrides = {"length": 10, "train_size": 1024, "validation_size": 128, "test_size": 128, "units": 16,
                 "batch_size": per_replica, "epochs": 3, "learning_rate": 0.01, **json.loads(args.overrides)}
    config = {"task": "adding", "preset": "short", **run_config.resolve(DEFAULTS, task.presets, "short", overrides)}

    def train(model_dir, **changes):
        out = io.StringIO()
        trainer = Trainer(task, {**config, **changes}, model_dir, strategy=strategy, out=out)
        return trainer, trainer.fit(), out.getvalue()

    def final_weights(trainer):
        return [keras.ops.convert_to_numpy(v) for v in trainer.model.weights]

    trainer, metrics, _ = train(args.model_dir)
    results = {
        "losses": np.array([h["train"]["loss"] for h in trainer.history]),
        "validation": metrics["validation"]["mse"],
        "replicas": strategy.num_replicas_in_sync,
        **{f"w{i}": w for i, w in enumerate(final_weights(trainer))},
    }
    if args.record:
        results["indices"] = recorded_indices(trainer, task, config)
    if args.interrupt_at:
        split = f"{args.model_dir}-split"
        train(split, steps=args.interrupt_at)
        resumed, metrics, printed = train(split)
        results["resumed_printed"] = printed
        results["resumed_validation"] = metrics["validation"]["mse"]
        results.update({f"resumed_w{i}": w for i, w in enumerate(final_weights(resumed))})
    np.savez(args.output, **results)


if __name__ == "__main__":
    main()
