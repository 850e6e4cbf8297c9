"""Test-session set-up: TensorFlow is imported once, without its start-up banner; the `jax` marker is declared, and
the JAX pass is scheduled first."""

from training.startup import import_tensorflow

import_tensorflow()

# The one test that runs the `jax`-marked tests in a pytest process of its own (about 1.5 minutes).
_JAX_PASS = "tests/zoo/jax_backend_test.py::test_marked_zoo_tests_pass_under_jax"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "jax: also runs under Keras's JAX backend, in the pytest process started by tests/zoo/jax_backend_test.py",
    )


def pytest_collection_modifyitems(items):
    # Collected last (tests/zoo), the JAX pass would start when the other xdist worker has little left to do and
    # lengthen `make test` by its whole duration; started first, it runs beside the rest of the suite.
    items.sort(key=lambda item: item.nodeid != _JAX_PASS)
