"""One training run for the distribution tests, as its own process (strategies must be set up before TF starts).

    python tests/training/distributed_run.py STRATEGY MODEL_DIR OUTPUT.npz

STRATEGY: "default" (one device, global batch 32), "mirrored2" (MirroredStrategy over two logical CPUs, 16 per
replica) or "multi_worker" (MultiWorkerMirroredStrategy from TF_CONFIG, 16 per worker). Writes the final weights and
the per-epoch training loss to OUTPUT.npz.
"""

import io
import sys

from training.startup import import_tensorflow

tf = import_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from training import config as run_config  # noqa: E402
from training import strategies  # noqa: E402
from training import tasks  # noqa: E402
from training.trainer import DEFAULTS  # noqa: E402
from training.trainer import Trainer  # noqa: E402


def main(kind, model_dir, output):
    if kind == "mirrored2":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        strategy = strategies.make(kind)
    per_replica = 32 // strategy.num_replicas_in_sync
    task = tasks.get("adding")
    overrides = {"length": 10, "train_size": 1024, "validation_size": 128, "test_size": 128, "units": 16,
                 "batch_size": per_replica, "epochs": 3, "learning_rate": 0.01}
    config = {"task": "adding", "preset": "short", **run_config.resolve(DEFAULTS, task.presets, "short", overrides)}
    trainer = Trainer(task, config, model_dir, strategy=strategy, out=io.StringIO())
    trainer.fit()
    np.savez(
        output,
        losses=np.array([h["train"]["loss"] for h in trainer.history]),
        validation=np.array([h["validation"]["mse"] for h in trainer.history]),
        replicas=strategy.num_replicas_in_sync,
        **{f"w{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(trainer.model.weights)},
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
