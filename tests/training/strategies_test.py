import json

import pytest
import tensorflow as tf

from training import strategies


def test_default_strategy_is_one_replica_and_the_chief():
    strategy = strategies.make("default")
    assert strategy.num_replicas_in_sync == 1
    assert strategies.is_chief(strategy) and strategies.worker_index(strategy) == 0
    assert strategies.is_chief(tf.distribute.MirroredStrategy())


@pytest.mark.parametrize(
    "name, tpu, tf_config, message",
    [
        ("horovod", None, None, r"unknown strategy 'horovod'; valid strategies: \['default', 'mirrored', "),
        ("tpu", None, None, r"--strategy=tpu needs --tpu=ADDRESS"),
        ("mirrored", "grpc://10.0.0.2:8470", None, r"--tpu is only used with --strategy=tpu, got --strategy=mirrored"),
        ("multi_worker", None, None, r"--strategy=multi_worker needs the TF_CONFIG environment variable"),
        ("multi_worker", None, "{not json", r"TF_CONFIG must be JSON with cluster.worker"),
        ("multi_worker", None, json.dumps({"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}),
         r"TF_CONFIG cluster.worker must be a non-empty list of host:port"),
    ],
)
def test_bad_strategy_requests_say_what_to_fix(monkeypatch, name, tpu, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match=message):
        strategies.make(name, tpu)
