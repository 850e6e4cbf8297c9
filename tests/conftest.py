"""Test-session set-up: TensorFlow is imported once, without its start-up banner; the `jax` and `jax_pass_only`
markers are declared, and the JAX pass is scheduled first. What the tasks cache (synthesized speech) goes to a
directory of the test run's own, never to the user's cache."""

import atexit
import os
import shutil
import tempfile

from training.startup import import_tensorflow

import_tensorflow()

if "SEQZOO_CACHE" not in os.environ:
    os.environ["SEQZOO_CACHE"] = tempfile.mkdtemp(prefix="seqzoo-test-cache-")
    atexit.register(shutil.rmtree, os.environ["SEQZOO_CACHE"], ignore_errors=True)

# The one test that runs the `jax`-marked tests in a pytest process of its own (about 9 to 11 minutes on 2 cores).
_JAX_PASS = "tests/zoo/jax_backend_test.py::test_marked_zoo_tests_pass_under_jax"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "jax: also runs under Keras's JAX backend, in the pytest process started by tests/zoo/jax_backend_test.py",
    )
    config.addinivalue_line(
        "markers",
        "jax_pass_only: needs what the JAX pass is handed (SEQZOO_TENSORFLOW_KERAS_FILES); not collected elsewhere",
    )


def pytest_collection_modifyitems(config, items):
    # A test that can only run inside the JAX pass is left out elsewhere rather than skipped.
    if "SEQZOO_TENSORFLOW_KERAS_FILES" not in os.environ:
        left_out = [item for item in items if item.get_closest_marker("jax_pass_only")]
        if left_out:
            config.hook.pytest_deselected(items=left_out)
            items[:] = [item for item in items if not item.get_closest_marker("jax_pass_only")]
    # Collected last (tests/zoo), the JAX pass would start when the other xdist worker has little left to do and
    # lengthen `make test` by its whole duration; started first, it runs beside the rest of the suite.
    items.sort(key=lambda item: item.nodeid != _JAX_PASS)
