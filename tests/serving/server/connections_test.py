"""Connections cannot exhaust the server: idle and slow REST connections are closed, open connections are capped
(idle ones make room, and with none idle a new one is answered 503 at once), and gRPC has the same limits."""

import os
import resource
import socket
import subprocess
import sys
import time

import grpc
import httpx2 as httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving.server.connections import default_max_connections
from tests.serving.server.conftest import free_port
from tests.serving.server.conftest import make_server
from tests.serving.testdata import spin

PREDICT = b'{"instances": [1.0]}'


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(10)
    return sock


def closed_by_server(sock, within):
    """True if the server closes `sock` (EOF or reset) within `within` seconds; reads and discards any answer."""
    sock.settimeout(within)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return False


def post_request(path=b"/v1/models/half:predict", body=PREDICT):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


def answer(sock, within=10):
    """The status line and body of one HTTP answer on `sock` (a small one, read until its Content-Length)."""
    sock.settimeout(within)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(
        b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head.split(b"\r\n")[0].decode(), body


@pytest.fixture(scope="module")
def rest_server(model_base):
    server = make_server(model_name="half", model_base_path=model_base, rest_api_port=free_port(),
                         rest_api_idle_timeout_in_ms=500, rest_api_header_timeout_in_ms=800,
                         rest_api_body_timeout_in_ms=800, rest_api_num_threads=2).start()
    yield server
    server.stop()


def test_idle_connections_are_closed(rest_server):
    # A connection that never sends a byte, and one idle after its answer, are closed after the idle timeout.
    silent = connect(rest_server.rest_port)
    served = connect(rest_server.rest_port)
    served.sendall(post_request())
    assert answer(served) == ("HTTP/1.1 200 OK", b'{"predictions": [3.5]}')
    assert closed_by_server(silent, within=5)
    assert closed_by_server(served, within=5)
    assert rest_server.connections.counts["idle_timeout"] >= 2


def test_headers_sent_a_byte_at_a_time_are_cut_off(rest_server):
    # Each byte comes before the idle timeout, but the headers are not all in within the header timeout.
    sock = connect(rest_server.rest_port)
    started = time.monotonic()
    request = post_request()
    try:
        for byte in request[:-10]:
            sock.sendall(bytes([byte]))
            time.sleep(0.1)
            if time.monotonic() - started > 10:
                break
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert closed_by_server(sock, within=5)
    assert time.monotonic() - started < 10, "the server waited for the whole slow request"


def test_oversized_headers_are_answered_431(rest_server):
    # uvicorn keeps whatever headers arrive; the request line and headers are held to 64 KiB.
    sock = connect(rest_server.rest_port)
    sock.sendall(b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
    status, body = answer(sock)
    assert status == "HTTP/1.1 431 Request Header Fields Too Large"
    assert b"larger than the limit of 65536 bytes" in body
    assert closed_by_server(sock, within=5)
    long_url = connect(rest_server.rest_port)
    long_url.sendall(post_request(path=b"/v1/models/" + b"h" * 70_000 + b":predict"))
    assert answer(long_url)[0] == "HTTP/1.1 431 Request Header Fields Too Large"


def test_a_body_that_does_not_arrive_is_answered_408(rest_server):
    sock = connect(rest_server.rest_port)
    sock.sendall(post_request()[:-5])  # headers and part of the body
    status, body = answer(sock)
    assert status == "HTTP/1.1 408 Request Timeout"
    assert b"did not arrive within 0.8 s of its headers" in body
    assert closed_by_server(sock, within=5)


def test_the_cap_makes_room_by_closing_idle_connections_first(model_base, tmp_path):
    # Four connections at most. One has a request in progress (its body is still coming); the others are idle. A
    # new client is served, in the place of the longest-idle connection; the one in progress is never closed.
    server = make_server(model_name="half", model_base_path=model_base, rest_api_port=free_port(),
                         rest_api_max_connections=4, rest_api_num_threads=1, rest_api_body_timeout_in_ms=10000).start()
    try:
        busy = connect(server.rest_port)
        request = post_request()
        busy.sendall(request[:-3])
        idle = [connect(server.rest_port) for _ in range(3)]
        time.sleep(0.8)  # long enough idle to be closed for a newcomer
        newcomers = []
        for _ in range(3):  # each new client (which stays connected) takes the place of the longest-idle one
            newcomers.append(connect(server.rest_port))
            newcomers[-1].sendall(request)
            assert answer(newcomers[-1]) == ("HTTP/1.1 200 OK", b'{"predictions": [3.5]}')
        assert all(closed_by_server(sock, within=5) for sock in idle)
        busy.sendall(request[-3:])
        assert answer(busy) == ("HTTP/1.1 200 OK", b'{"predictions": [3.5]}')
        assert server.connections.counts["evicted"] >= 3
    finally:
        server.stop()


def test_with_every_connection_busy_a_new_one_is_answered_503_at_once(model_base):
    server = make_server(model_name="half", model_base_path=model_base, rest_api_port=free_port(),
                         rest_api_max_connections=3, rest_api_num_threads=1, rest_api_body_timeout_in_ms=10000).start()
    try:
        request = post_request()
        busy = [connect(server.rest_port) for _ in range(3)]
        for sock in busy:
            sock.sendall(request[:-3])
        time.sleep(0.3)
        started = time.monotonic()
        extra = connect(server.rest_port)
        extra.sendall(request)
        status, body = answer(extra, within=5)
        assert status == "HTTP/1.1 503 Service Unavailable", status
        assert b"open connections, its limit" in body
        assert time.monotonic() - started < 5
        for sock in busy:  # the requests in progress are unaffected
            sock.sendall(request[-3:])
            assert answer(sock) == ("HTTP/1.1 200 OK", b'{"predictions": [3.5]}')
    finally:
        server.stop()


def test_thousands_of_connections_under_a_low_descriptor_limit_do_not_lock_clients_out(model_base):
    # The server runs with 256 file descriptors. 1,500 connections are opened (and kept open) against it; every
    # client that comes after them is still served. (Before, the idle connections were never closed and used up
    # the descriptors: new clients waited forever.)
    port = free_port()

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    process = subprocess.Popen(
        [sys.executable, "-m", "serving.server", "--model_name=half", f"--model_base_path={model_base}",
         f"--port={free_port()}", f"--rest_api_port={port}", "--file_system_poll_wait_seconds=0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=low_limit,
    )
    flood = []
    try:
        assert "REST on" in process.stdout.readline(), process.stderr.read()
        for _ in range(1500):
            try:
                flood.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                break
        assert len(flood) >= 1000, f"only {len(flood)} connections could be opened"
        time.sleep(1)  # they sit idle (a burst of new connections does not close each other: none has waited)
        for _ in range(5):
            response = httpx.post(f"http://127.0.0.1:{port}/v1/models/half:predict", content=PREDICT, timeout=10)
            assert response.json() == {"predictions": [3.5]}
    finally:
        for sock in flood:
            sock.close()
        process.terminate()
        process.wait(timeout=30)
    assert default_max_connections(256) < 256 // 2


# gRPC.


def spin_request(steps):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "spin"
    request.inputs["steps"].CopyFrom(tf.make_tensor_proto(np.asarray([steps], np.int64)))
    return request


@pytest.fixture(scope="module")
def spin_base(tmp_path_factory):
    base = tmp_path_factory.mktemp("spin") / "spin"
    spin.build(str(base / "1"))
    return str(base)


def own_channel(port):
    """A channel with a connection of its own (channels otherwise share connections to the same address)."""
    return grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])


def test_grpc_limits_connections_calls_and_idle_time(spin_base):
    server = make_server(model_name="spin", model_base_path=spin_base, grpc_max_connections=2,
                         grpc_max_concurrent_rpcs=2, grpc_max_connection_idle_ms=500).start()
    channels = [own_channel(server.grpc_port) for _ in range(3)]
    try:
        stubs = [prediction_service_pb2_grpc.PredictionServiceStub(channel) for channel in channels]
        # Two connections are served; the third is refused.
        for stub in stubs[:2]:
            assert tf.make_ndarray(stub.Predict(spin_request(3), timeout=10).outputs["done"]).tolist() == [3]
        with pytest.raises(grpc.RpcError) as refused:
            stubs[2].Predict(spin_request(3), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        # Two calls may run at once: a third is answered RESOURCE_EXHAUSTED while they spin.
        running = [stub.Predict.future(spin_request(10**12), timeout=1.5) for stub in stubs[:2]]
        time.sleep(0.5)
        with pytest.raises(grpc.RpcError) as exhausted:
            stubs[0].Predict(spin_request(3), timeout=5)
        assert exhausted.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        for future in running:
            assert future.exception(timeout=30).code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # A connection without calls for 0.5 s is closed by the server: the channel goes idle.
        states = []
        channels[0].subscribe(states.append)
        deadline = time.monotonic() + 10
        while grpc.ChannelConnectivity.IDLE not in states[1:] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert grpc.ChannelConnectivity.IDLE in states[1:], states
    finally:
        for channel in channels:
            channel.close()
        server.stop()


def test_grpc_channel_arguments_override_the_defaults():
    from serving.server.server import ServerOptions

    options = dict(ServerOptions(model_base_path="/x", grpc_channel_arguments="grpc.max_concurrent_streams=7, "
                                 "grpc.some_text=abc").grpc_options())
    assert options["grpc.max_concurrent_streams"] == 7 and options["grpc.some_text"] == "abc"
    assert options["grpc.max_receive_message_length"] == 64 * 1024 * 1024
    with pytest.raises(ValueError, match="--grpc_channel_arguments takes key=value pairs"):
        ServerOptions(model_base_path="/x", grpc_channel_arguments="novalue")
    assert os.cpu_count()
