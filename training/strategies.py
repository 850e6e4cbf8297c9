"""Distribution strategies by name, and which worker writes the run's files.

    default        one device (the first GPU if there is one, else the CPU)
    mirrored       MirroredStrategy: synchronous data parallelism over this machine's GPUs (or its CPU)
    multi_worker   MultiWorkerMirroredStrategy over the workers listed in the TF_CONFIG environment variable
    tpu            TPUStrategy on the TPU named by --tpu (an address, a name, or "local")
"""

import json
import os

import tensorflow as tf

NAMES = ("default", "mirrored", "multi_worker", "tpu")


def make(name, tpu=None):
    """Creates strategy `name`. Call it first: MultiWorkerMirroredStrategy must exist before any other TF op runs."""
    if name not in NAMES:
        raise ValueError(f"unknown strategy {name!r}; valid strategies: {list(NAMES)}")
    if name == "tpu" and not tpu:
        raise ValueError("--strategy=tpu needs --tpu=ADDRESS (a TPU name, grpc:// address, or 'local')")
    if name != "tpu" and tpu:
        raise ValueError(f"--tpu is only used with --strategy=tpu, got --strategy={name}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="" if tpu == "local" else tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def _check_tf_config():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError(
            "--strategy=multi_worker needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
        )
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        config["task"]["type"], config["task"]["index"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            f"TF_CONFIG must be JSON with cluster.worker (a list of host:port) and task.type/task.index, got {raw!r}"
        ) from None
    if not isinstance(workers, list) or not workers:
        raise ValueError(f"TF_CONFIG cluster.worker must be a non-empty list of host:port, got {workers!r}")


def worker_index(strategy):
    """This worker's index (0 when there is one worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 0
    if resolver.task_type == "chief":
        return 0
    return int(resolver.task_id) + (1 if "chief" in resolver.cluster_spec().as_dict() else 0)


def is_chief(strategy):
    """Whether this worker writes the run's logs, config, metrics and checkpoints."""
    return worker_index(strategy) == 0
