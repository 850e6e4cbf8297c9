"""Fixtures of the server tests: half_plus_two models on disk and servers over them."""

import socket

import pytest

from serving.server.server import ModelServer
from serving.server.server import ServerOptions
from tests.serving.testdata import half_plus_two


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def model_base(tmp_path_factory):
    """A base path with versions 1 and 2 of half_plus_two (y = 0.5 x + 2 + (version - 1))."""
    return half_plus_two.build_versions(str(tmp_path_factory.mktemp("models") / "half"), [1, 2])


def make_server(**options):
    defaults = {"port": 0, "file_system_poll_wait_seconds": 0, "max_num_load_retries": 0}
    return ModelServer(ServerOptions(**{**defaults, **options}))


@pytest.fixture(scope="module")
def server(model_base):
    """A started server (gRPC on a free port, no REST port) over half_plus_two as model "half"."""
    instance = make_server(model_name="half", model_base_path=model_base).start()
    yield instance
    instance.stop()
