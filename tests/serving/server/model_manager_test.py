"""Versions come and go as TF Serving's manager moves them (tf_serving_api.md §3)."""

import collections
import logging
import os
import re
import shutil
import threading
import time

import pytest
from tensorflow_serving.config import model_server_config_pb2

from serving.server import model_manager
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


# Rollback, parallel loads and retries, reload errors and client-facing load errors.


def models_config(**bases):
    """A config of several models ({name: base path}), each with the default policy (the latest version)."""
    result = model_server_config_pb2.ModelServerConfig()
    for name, base in bases.items():
        result.model_config_list.config.add(name=name, base_path=str(base))
    return result


def states(manager, name="half"):
    return [(v, state) for v, state, _, _ in manager.status(name)]


def publish(build, base, version):
    """Writes a version aside and renames it into the base path, as a version should be published: a poll never
    sees it half written."""
    staging = os.path.join(os.path.dirname(base), "staging", os.path.basename(base), str(version))
    build(staging)
    os.rename(staging, os.path.join(base, str(version)))


def wait_for(condition, timeout, failure):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{failure} after {timeout} s")
        time.sleep(0.02)


@pytest.fixture
def load_attempts(monkeypatch):
    """{(model, version): how many times the manager tried to load it}."""
    counts = collections.Counter()
    lock = threading.Lock()
    real = model_manager.Servable

    def counting(name, version, path):
        with lock:
            counts[(name, version)] += 1
        return real(name, version, path)

    monkeypatch.setattr(model_manager, "Servable", counting)
    return counts


def test_a_version_unloaded_earlier_serves_again_when_the_newer_one_is_removed(tmp_path):
    base = half_plus_two.build_versions(str(tmp_path / "half"), [1])
    manager = ModelManager(config(base), poll_seconds=0)
    half_plus_two.build(os.path.join(base, "2"), offset=1.0)
    manager.poll()
    assert states(manager) == [(2, "AVAILABLE"), (1, "END")] and predict(manager) == 3.5
    shutil.rmtree(os.path.join(base, "2"))
    manager.poll()
    # Version 1 is aspired again: it loads again, and then 2, no longer aspired, unloads.
    assert states(manager) == [(2, "END"), (1, "AVAILABLE")]
    assert predict(manager) == 2.5


def test_a_failed_version_is_not_retried_while_aspired_and_loads_again_when_republished(tmp_path, load_attempts):
    base = half_plus_two.build_versions(str(tmp_path / "half"), [1])
    manager = ModelManager(config(base), poll_seconds=0, max_load_retries=0)
    corrupt(os.path.join(base, "2"))
    manager.poll()
    manager.poll()
    assert load_attempts[("half", 2)] == 1  # still aspired, still failed: not loaded again on every poll
    assert states(manager) == [(2, "END"), (1, "AVAILABLE")]
    shutil.rmtree(os.path.join(base, "2"))
    manager.poll()  # no longer aspired: its failure is forgotten (its END entry stays in the status list)
    assert states(manager) == [(2, "END"), (1, "AVAILABLE")] and manager.status("half")[0][2] != "OK"
    half_plus_two.build(os.path.join(base, "2"), offset=1.0)  # a fixed copy under the same number
    manager.poll()
    assert states(manager) == [(2, "AVAILABLE"), (1, "END")] and manager.status("half")[0][2:] == ("OK", "")
    assert load_attempts[("half", 2)] == 2
    assert predict(manager) == 3.5


def test_a_failed_version_pushed_out_by_a_newer_one_is_loaded_again_when_the_newer_one_goes(tmp_path, load_attempts):
    base = half_plus_two.build_versions(str(tmp_path / "half"), [1])
    manager = ModelManager(config(base), poll_seconds=0, max_load_retries=0)
    corrupt(os.path.join(base, "2"))
    manager.poll()
    half_plus_two.build(os.path.join(base, "3"))
    manager.poll()
    assert states(manager) == [(3, "AVAILABLE"), (2, "END"), (1, "END")]
    os.remove(os.path.join(base, "2", "saved_model.pb"))  # fixed in place while 3 is the latest
    shutil.copytree(os.path.join(base, "3"), os.path.join(base, "2"), dirs_exist_ok=True)
    shutil.rmtree(os.path.join(base, "3"))
    manager.poll()
    assert states(manager) == [(3, "END"), (2, "AVAILABLE"), (1, "END")]
    assert load_attempts[("half", 2)] == 2


def test_a_model_retrying_a_load_does_not_hold_up_another_models_new_version(tmp_path, load_attempts):
    a = half_plus_two.build_versions(str(tmp_path / "a"), [1])
    b = half_plus_two.build_versions(str(tmp_path / "b"), [1])
    manager = ModelManager(models_config(a=a, b=b), poll_seconds=0.05, max_load_retries=3, load_retry_seconds=2)
    manager.start()
    try:
        publish(corrupt, a, 2)
        publish(half_plus_two.build, b, 2)
        # Model a retries for 3 x 2 s; model b's new version does not wait for that.
        wait_for(lambda: states(manager, "b") == [(2, "AVAILABLE"), (1, "END")], 4.0, "b's version 2 is not available")
        assert states(manager, "a") == [(2, "LOADING"), (1, "AVAILABLE")]
        assert 1 <= load_attempts[("a", 2)] < 4
        wait_for(lambda: states(manager, "a")[0] == (2, "END"), 15.0, "a's version 2 still retries")
        assert load_attempts[("a", 2)] == 4 and manager.status("a")[0][2] != "OK"
        assert states(manager, "a")[1] == (1, "AVAILABLE")
    finally:
        manager.stop()


def test_a_poll_that_does_not_wait_returns_at_once_and_the_old_version_unloads_when_the_new_one_is_available(base):
    manager = ModelManager(config(base), poll_seconds=0)
    publish(half_plus_two.build, base, 4)
    manager.poll(wait=False)
    assert states(manager)[0] in ((4, "START"), (4, "LOADING")) and states(manager)[1] == (3, "AVAILABLE")
    wait_for(lambda: states(manager)[0] == (4, "AVAILABLE"), 10.0, "version 4 is not available")
    assert states(manager)[:2] == [(4, "AVAILABLE"), (3, "END")]


def test_an_explicit_poll_waits_for_the_retries_of_the_loads_it_started(base, load_attempts):
    manager = ModelManager(config(base), poll_seconds=0, max_load_retries=2, load_retry_seconds=0.05)
    corrupt(os.path.join(base, "9"))
    manager.poll()
    assert states(manager)[:2] == [(9, "END"), (3, "AVAILABLE")]
    assert load_attempts[("half", 9)] == 3


def test_stop_cancels_pending_retries_and_leaves_no_thread(tmp_path, load_attempts):
    before = set(threading.enumerate())
    base = half_plus_two.build_versions(str(tmp_path / "half"), [1])
    manager = ModelManager(config(base), poll_seconds=0, max_load_retries=5, load_retry_seconds=60)
    publish(corrupt, base, 2)
    manager.poll(wait=False)
    wait_for(lambda: load_attempts[("half", 2)] == 1, 10.0, "version 2 was not tried")
    started = time.monotonic()
    manager.stop()
    assert time.monotonic() - started < 2
    assert [t.name for t in set(threading.enumerate()) - before if t.is_alive()] == []
    assert load_attempts[("half", 2)] == 1


def test_reload_answers_an_error_when_a_model_it_adds_does_not_become_available(base, tmp_path):
    manager = ModelManager(config(base), poll_seconds=0, max_load_retries=1, load_retry_seconds=0.05)
    broken = str(tmp_path / "broken")
    corrupt(os.path.join(broken, "1"))
    empty = str(tmp_path / "empty")  # no versions yet: nothing to wait for, not an error
    os.makedirs(empty)
    new = models_config(half=base, broken=broken, empty=empty)
    with pytest.raises(ServingError) as raised:
        manager.reload(new)
    assert raised.value.code == "UNKNOWN"
    assert re.fullmatch(
        r"1 model\(s\) did not become available: \{\{\{name: broken version: 1\} due to error: UNKNOWN: the version "
        r"could not be loaded: Error parsing message[^{}]*\}, \}",
        raised.value.message,
    ), raised.value.message
    assert str(tmp_path) not in raised.value.message
    # The config is in effect all the same: the other models serve.
    assert manager.model_names() == ["broken", "empty", "half"]
    assert states(manager, "broken") == [(1, "END")] and predict(manager) == 4.5
    manager.reload(new)  # broken is not new any more: nothing to wait for


def test_reload_stops_waiting_at_its_timeout(base, tmp_path):
    manager = ModelManager(config(base), poll_seconds=0, max_load_retries=5, load_retry_seconds=60)
    try:
        broken = str(tmp_path / "broken")
        corrupt(os.path.join(broken, "1"))
        started = time.monotonic()
        with pytest.raises(ServingError) as raised:
            manager.reload(models_config(half=base, broken=broken), timeout=0.5)
        assert time.monotonic() - started < 5
        assert raised.value.code == "UNKNOWN"
        assert raised.value.message == (
            "1 model(s) did not become available: {{{name: broken version: 1} due to error: DEADLINE_EXCEEDED: "
            "still loading when the reload's timeout of 0.5 s passed}, }"
        )
        assert states(manager, "broken") == [(1, "LOADING")]
    finally:
        manager.stop()


def test_load_errors_name_no_server_path_and_no_python_class(base, tmp_path, caplog):
    manager = ModelManager(config(base, "all"), poll_seconds=0, max_load_retries=0)
    corrupt(os.path.join(base, "8"))
    os.makedirs(os.path.join(base, "9", "variables"))  # a version directory without its saved_model.pb
    with caplog.at_level(logging.WARNING, logger="serving.server"):
        manager.poll()
    status = {v: (state, code, message) for v, state, code, message in manager.status("half")}
    for version in (8, 9):
        state, code, message = status[version]
        assert (state, code) == ("END", "UNKNOWN")
        assert str(tmp_path) not in message and os.path.realpath(tmp_path) not in message
        assert "Error:" not in message and "Exception" not in message
    assert status[8][2].startswith("the version could not be loaded: Error parsing message")
    assert status[9][2] == (
        "the version could not be loaded: [Errno 2] No such file or directory: "
        "'<base path of model half>/9/saved_model.pb'"
    )
    # The full errors are in the server's log.
    assert "DecodeError" in caplog.text and os.path.join(base, "9", "saved_model.pb") in caplog.text


def test_client_load_error_hides_every_absolute_path(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    error = ServingError(
        "NOT_FOUND",
        f"nothing at {real}/3/saved_model.pb (nor at {link}/3.); see /etc/serving/notes.txt, not "
        f"{real}ish/3 or variables/variables.index or a / b",
    )
    assert model_manager.client_load_error(error, "half", str(link)) == (
        "NOT_FOUND",
        "nothing at <base path of model half>/3/saved_model.pb (nor at <base path of model half>/3.); see <path>, "
        "not <path> or variables/variables.index or a / b",
    )
    assert model_manager.client_load_error(KeyError("signature"), "half", str(link)) == (
        "UNKNOWN",
        "the version could not be loaded: 'signature'",
    )
    assert model_manager.client_load_error(RuntimeError(), "half", str(link)) == (
        "UNKNOWN",
        "the version could not be loaded",
    )


def test_models_that_serve_nothing_say_why(base, tmp_path, caplog):
    broken = str(tmp_path / "broken")
    corrupt(os.path.join(broken, "1"))
    empty = str(tmp_path / "empty")
    os.makedirs(empty)
    missing = str(tmp_path / "missing")
    with caplog.at_level(logging.WARNING, logger="serving.server"):
        manager = ModelManager(models_config(half=base, broken=broken, empty=empty, missing=missing), poll_seconds=0,
                               max_load_retries=0)
    assert manager.unavailable_models() == {
        "broken": "failed to load", "empty": "no versions yet", "missing": "base path missing",
    }
    # A missing base path and an empty one are told apart in the log, each once.
    assert caplog.text.count(f"Could not find base path {missing} for servable missing: no such directory") == 1
    assert caplog.text.count(f"No versions of servable empty found under base path {empty}") == 1
    assert f"base path {empty} for servable" not in caplog.text and f"under base path {missing}" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="serving.server"):
        os.makedirs(missing)  # the directory appears, still without a version
        manager.poll()
        manager.poll()
    assert manager.unavailable_models()["missing"] == "no versions yet"
    assert caplog.text.count(f"No versions of servable missing found under base path {missing}") == 1
    shutil.copytree(os.path.join(base, "3"), os.path.join(missing, "1"))
    manager.poll()
    assert "missing" not in manager.unavailable_models()
