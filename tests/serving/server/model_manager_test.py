"""Versions come and go as TF Serving's manager moves them (tf_serving_api.md §3)."""

import os
import shutil

import pytest
from tensorflow_serving.config import model_server_config_pb2

from serving.server.errors import ServingError
from serving.server.model_manager import ModelManager
from serving.server.model_manager import validate_config
from tests.serving.testdata import half_plus_two


def config(base, policy=None, labels=None, name="half"):
    result = model_server_config_pb2.ModelServerConfig()
    model = result.model_config_list.config.add(name=name, base_path=str(base))
    if policy == "all":
        model.model_version_policy.all.SetInParent()
    elif isinstance(policy, int):
        model.model_version_policy.latest.num_versions = policy
    elif isinstance(policy, (list, tuple)):
        model.model_version_policy.specific.versions.extend(policy)
    for label, version in (labels or {}).items():
        model.version_labels[label] = version
    return result


def predict(manager, x=1.0, **spec):
    import numpy as np

    return float(manager.servable("half", **spec).predict("", {"x": np.array([x], np.float32)})["y"][0])


def corrupt(path):
    os.makedirs(path)
    with open(os.path.join(path, "saved_model.pb"), "wb") as f:
        f.write(b"this is not a SavedModel")


@pytest.fixture
def base(tmp_path):
    return half_plus_two.build_versions(str(tmp_path / "half"), [1, 2, 3])


@pytest.mark.parametrize(
    "policy, loaded",
    [(None, [3]), (2, [3, 2]), ("all", [3, 2, 1]), ([1, 3, 7], [3, 1])],
)
def test_version_policies(base, policy, loaded):
    manager = ModelManager(config(base, policy), poll_seconds=0)
    assert [v for v, state, _, _ in manager.status("half") if state == "AVAILABLE"] == loaded
    assert manager.servable("half").version == loaded[0]  # Latest is the highest available version


def test_a_new_version_takes_over_and_the_old_one_is_unloaded(base, tmp_path):
    manager = ModelManager(config(base), poll_seconds=0)
    assert predict(manager) == 4.5  # version 3: 0.5 x + 4
    half_plus_two.build(os.path.join(base, "4"), offset=3.0)
    manager.poll()
    assert predict(manager) == 5.5
    assert [(v, s) for v, s, _, _ in manager.status("half")] == [(4, "AVAILABLE"), (3, "END")]
    with pytest.raises(ServingError, match=r"Servable not found for request: Specific\(half, 3\)"):
        manager.servable("half", version=3)


def test_a_corrupt_version_ends_with_its_error_and_the_old_one_keeps_serving(base):
    manager = ModelManager(config(base), poll_seconds=0, max_load_retries=0)
    corrupt(os.path.join(base, "9"))
    manager.poll()
    status = manager.status("half")
    assert status[0][:2] == (9, "END") and status[0][2] != "OK" and status[0][3]
    assert status[1][:2] == (3, "AVAILABLE")
    assert predict(manager) == 4.5


def test_a_removed_version_is_unloaded_but_never_the_last_one(base):
    manager = ModelManager(config(base, 2), poll_seconds=0)
    shutil.rmtree(os.path.join(base, "3"))
    manager.poll()
    # Version 3 left the disk; 2 and 1 are now the latest two: 1 loads, 3 unloads.
    assert [(v, s) for v, s, _, _ in manager.status("half")] == [(3, "END"), (2, "AVAILABLE"), (1, "AVAILABLE")]
    for version in ("2", "1"):
        shutil.rmtree(os.path.join(base, version))
    manager.poll()
    # Neither is aspired now: the smallest unloads, and the other stays, the only version loaded.
    assert [(v, s) for v, s, _, _ in manager.status("half")] == [(3, "END"), (2, "AVAILABLE"), (1, "END")]
    assert predict(manager) == 3.5


def test_labels(base):
    manager = ModelManager(config(base, "all", {"stable": 1, "canary": 3}), poll_seconds=0)
    assert predict(manager, label="stable") == 2.5 and predict(manager, label="canary") == 4.5
    with pytest.raises(ServingError, match="Unrecognized servable version label: beta"):
        manager.servable("half", label="beta")
    with pytest.raises(ServingError, match="Request to assign label to version 7 of model half, which is not "
                                           "currently available for inference"):
        ModelManager(config(base, "all", {"stable": 7}), poll_seconds=0)
    ModelManager(config(base, "all", {"stable": 7}), poll_seconds=0, allow_labels_for_unavailable=True)


def test_reload_adds_and_removes_models(base, tmp_path):
    manager = ModelManager(config(base), poll_seconds=0)
    other = half_plus_two.build_versions(str(tmp_path / "other"), [1])
    both = config(base)
    both.model_config_list.config.add(name="other", base_path=other)
    manager.reload(both)
    assert manager.model_names() == ["half", "other"]
    manager.reload(config(other, name="other"))
    assert manager.model_names() == ["other"]
    with pytest.raises(ServingError, match=r"Servable not found for request: Latest\(half\)"):
        manager.servable("half")


def test_config_errors(base, tmp_path):
    twice = config(base)
    twice.model_config_list.config.add(name="half", base_path=str(base))
    with pytest.raises(ServingError, match="Illegal to list model half multiple times in config list"):
        validate_config(twice)
    with pytest.raises(ServingError, match="Expected model half to have an absolute path or URI"):
        validate_config(config("relative/half"))
    validate_config(config("relative/half"), config_dir=str(tmp_path))  # relative to the config file: ours only


def test_no_versions_yet_is_not_found_until_one_appears(tmp_path):
    base = str(tmp_path / "late")
    os.makedirs(base)
    manager = ModelManager(config(base), poll_seconds=0)
    with pytest.raises(ServingError, match=r"Servable not found for request: Latest\(half\)"):
        manager.servable("half")
    half_plus_two.build(os.path.join(base, "00000123"))
    manager.poll()
    assert manager.servable("half").version == 123
