"""Soak: valid traffic through an attack. Does any valid request fail, is every hostile one a client error, does
memory stay bounded, and what does the attack cost in latency?

    python -m benchmarks.soak                       # what `make bench` runs; writes docs/reliability.md
    python -m benchmarks.soak --baseline_seconds=5 --attack_seconds=10 --output=

Two servers run in processes of their own, one without and one with batching (serving/configs/batching.config), each
under a file-descriptor limit of 1024 and with the timeouts and connection cap below, over two models: the adding-problem
LSTM (trained for a few steps and exported, as benchmarks/serving.py does) and `checked` (sqrt with an input check:
a negative value fails the run with INVALID_ARGUMENT). A client process sends valid requests to both servers over
REST and gRPC in closed loops for the whole run. After the baseline phase, an attacker process starts:

- hostile requests, in turn: malformed JSON of every kind, bodies far over the JSON and size limits, gzip bombs,
  headers over the limit, bytes that are not HTTP, unknown models, versions and signatures; TensorProtos claiming
  2^40 elements, DT_VARIANT tensors, 50 MB messages that are refused, messages over the size limit, a reload from
  a client; each must be answered with a client error (4xx, or a gRPC code that blames the request);
- invalid values among valid ones: bursts of concurrent requests to `checked`, one of each burst negative, so
  batches hold an offender: the valid ones must succeed (they are counted with the valid traffic);
- slow and idle connections: idle sockets, headers sent a byte at a time, bodies that never finish, and a flood of
  connections past the cap, each held open until the server closes it;

while the adding model's versions change under both servers: a new version is published, then a corrupt one, then
both are deleted (a rollback to version 1). Memory (VmRSS) of each server is sampled throughout.

The isolation of batched requests is also measured on its own: the time a batch of 16 requests takes when one of
them is invalid (the batch is split down to it), against a batch of 16 valid ones, in this process.
"""

import collections
import datetime
import json
import multiprocessing
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow
from training.startup import run

# The isolation measure runs failing batches in this process: TensorFlow's C++ runtime would log each.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = import_tensorflow()

import numpy as np  # noqa: E402

from benchmarks import report  # noqa: E402
from benchmarks.adding_export import free_port  # noqa: E402
from benchmarks.adding_export import prepare  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("baseline_seconds", 20, "Valid traffic alone (the first 3 s warm the servers up).",
                     lower_bound=5)
flags.DEFINE_integer("attack_seconds", 60, "Valid traffic under attack.", lower_bound=4)
flags.DEFINE_string("output", "docs/reliability.md", "Markdown file whose soak section is rewritten; empty: none.")

SERVER_FLAGS = [
    "--rest_api_max_connections=256", "--rest_api_idle_timeout_in_ms=5000", "--rest_api_header_timeout_in_ms=3000",
    "--rest_api_body_timeout_in_ms=5000", "--file_system_poll_wait_seconds=0.5", "--max_num_load_retries=0",
]
DESCRIPTOR_LIMIT = 1024
WARM_UP_SECONDS = 3
CLIENT_ERROR_CODES = {"INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "OUT_OF_RANGE", "RESOURCE_EXHAUSTED",
                      "PERMISSION_DENIED", "UNAUTHENTICATED"}
PREAMBLE = ("# Reliability\n\nWritten by `benchmarks/soak.py` (`make bench`): the model server under valid traffic "
            "and an attack at once.\n\n")


# Servers.


def write_models(base, scratch):
    """Adds the `checked` model beside the adding export; returns the path of a models.config serving both."""
    from tests.serving.testdata import checked

    checked.build(os.path.join(base, "checked", "1"))
    config = os.path.join(scratch, "soak.config")
    with open(config, "w") as f:
        f.write("model_config_list {\n" + "".join(
            f'  config {{ name: "{name}" base_path: "{os.path.join(base, name)}" model_platform: "tensorflow" }}\n'
            for name in ("adding", "checked")) + "}\n")
    return config


def _low_descriptor_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTOR_LIMIT, DESCRIPTOR_LIMIT))


def start_server(config, batching):
    grpc_port, rest_port = free_port(), free_port()
    command = [sys.executable, "-m", "serving.server", f"--model_config_file={config}", f"--port={grpc_port}",
               f"--rest_api_port={rest_port}", "--monitoring_config_file=serving/configs/monitoring.config",
               *SERVER_FLAGS]
    if batching:
        command += ["--enable_batching", "--batching_parameters_file=serving/configs/batching.config"]
    log = tempfile.TemporaryFile("w+")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True,
                               preexec_fn=_low_descriptor_limit)
    line = process.stdout.readline()
    if "REST on" not in line:
        process.kill()
        log.seek(0)
        raise RuntimeError(f"the server did not start: {line}{log.read()}")
    return {"process": process, "grpc": grpc_port, "rest": rest_port, "log": log, "batching": batching}


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# Valid traffic (its own process).


def valid_traffic(servers, example, seconds, results):
    """Closed loops over REST and gRPC to both models of both servers; appends (time.monotonic() at the start,
    batching, path, seconds, ok, detail) to `results` (a list shared with the caller's process; the monotonic clock
    is the system's, the same in every process)."""
    import grpc
    import httpx2 as httpx
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    stop = time.monotonic() + seconds
    local = []

    def rest(server, model):
        body = {"instances": example.tolist()} if model == "adding" else {"instances": [4.0, 9.0]}
        with httpx.Client(base_url=f"http://127.0.0.1:{server['rest']}", timeout=60) as client:
            while time.monotonic() < stop:
                started = time.perf_counter()
                try:
                    response = client.post(f"/v1/models/{model}:predict", json=body)
                    ok, detail = response.status_code == 200, f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as error:
                    ok, detail = False, repr(error)
                local.append((time.monotonic() - (time.perf_counter() - started), server["batching"],
                              f"REST {model}", time.perf_counter() - started, ok, detail))

    def rpc(server, model):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model
        if model == "adding":
            request.inputs["inputs"].CopyFrom(tf.make_tensor_proto(example))
        else:
            request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([4.0, 9.0], np.float32)))
        with grpc.insecure_channel(f"127.0.0.1:{server['grpc']}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            while time.monotonic() < stop:
                started = time.perf_counter()
                try:
                    stub.Predict(request, timeout=60)
                    ok, detail = True, ""
                except grpc.RpcError as error:
                    ok, detail = False, f"{error.code().name} {error.details()[:200]}"
                local.append((time.monotonic() - (time.perf_counter() - started), server["batching"],
                              f"gRPC {model}", time.perf_counter() - started, ok, detail))

    threads = [threading.Thread(target=loop, args=(server, model)) for server in servers for loop in (rest, rpc)
               for model in ("adding", "checked")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.extend(local)


# The attack (its own process).


def _rest_hostile():
    """(kind, raw HTTP request bytes) of hostile REST requests; each must be answered 4xx."""
    def post(path, body, extra=b""):
        return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
                + extra + b"\r\n" + body)

    predict = b"/v1/models/adding:predict"
    import gzip

    return [
        ("invalid JSON", post(predict, b'{"instances": [1.0,')),
        ("JSON not an object", post(predict, b"[1, 2]")),
        ("wrong dtype", post(predict, b'{"instances": ["a"]}')),
        ("wrong shape", post(predict, b'{"instances": [[1.0]]}')),
        ("booleans for floats", post(predict, b'{"instances": [[[true, 1.0]]]}')),
        ("nesting 100,000 deep", post(predict, b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")),
        ("integer of 5,000 digits", post(predict, b'{"instances": [' + b"9" * 5000 + b"]}")),
        ("version of 5,000 digits", post(b"/v1/models/adding/versions/" + b"7" * 5000 + b":predict",
                                         b'{"instances": [1.0]}')),
        ("unknown model", post(b"/v1/models/nope-%d:predict" % random.randrange(10**9), b'{"instances": [1.0]}')),
        ("unknown signature", post(predict, b'{"signature_name": "nope", "instances": [1.0]}')),
        ("8 MB of empty lists", post(predict, b'{"instances": [' + b"[]," * 2_800_000 + b"[]]}")),
        ("declared body over the limit", b"POST /v1/models/adding:predict HTTP/1.1\r\nHost: x\r\n"
                                         b"Content-Length: 100000000\r\n\r\n"),
        ("gzip bomb", post(predict, gzip.compress(b'{"instances": [' + b"0," * 60_000_000 + b"0]}"),
                           b"Content-Encoding: gzip\r\n")),
        ("headers over the limit", post(predict, b'{"instances": [1.0]}', b"X-Big: " + b"a" * 100_000 + b"\r\n")),
        ("not HTTP", b"\x00\x01\x02 this is not HTTP\r\n\r\n"),
        ("bad base64", post(predict, b'{"instances": [{"b64": "!!"}]}')),
        ("lone surrogate", post(b"/v1/models/adding:regress", b'{"examples": [{"\\ud800": 1}]}')),
        ("negative value to a checked model", post(b"/v1/models/checked:predict", b'{"instances": [-1.0]}')),
    ]


def _status_of(sock):
    data = b""
    sock.settimeout(30)
    while b"\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    line = data.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else None


def _grpc_hostile():
    """(kind, method, request) of hostile gRPC calls; each must end with a client-error code."""
    from tensorflow.core.framework import tensor_pb2
    from tensorflow.core.framework import tensor_shape_pb2
    from tensorflow.core.framework import types_pb2
    from tensorflow_serving.apis import model_management_pb2
    from tensorflow_serving.apis import predict_pb2

    def predict(model="checked", key="x", proto=None):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model
        request.inputs[key].CopyFrom(proto if proto is not None else tf.make_tensor_proto(np.ones(2, np.float32)))
        return request

    def shaped(dims, dtype=types_pb2.DT_FLOAT, **values):
        return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims]), **values)

    big = np.zeros(50 * 2**20 // 4, np.float32)
    reload = model_management_pb2.ReloadConfigRequest()
    reload.config.model_config_list.config.add(name="evil", base_path="/")
    return [
        ("2^40 elements from one value", "Predict", predict(proto=shaped([2**40], float_val=[1.0]))),
        ("2^28 elements from one value", "Predict", predict(proto=shaped([2**28], float_val=[1.0]))),
        ("negative dimension", "Predict", predict(proto=shaped([-5], float_val=[1.0]))),
        ("DT_VARIANT", "Predict", predict(proto=shaped([1], dtype=types_pb2.DT_VARIANT))),
        ("DT_RESOURCE", "Predict", predict(proto=shaped([1], dtype=types_pb2.DT_RESOURCE))),
        ("50 MB with a wrong input name", "Predict", predict(key="wrong", proto=tf.make_tensor_proto(big))),
        ("50 MB of the wrong dtype", "Predict", predict(proto=tf.make_tensor_proto(big.astype(np.float64)[:len(big) // 2]))),
        ("70 MB, over the message limit", "Predict", predict(proto=tf.make_tensor_proto(
            np.zeros(70 * 2**20 // 4, np.float32)))),
        ("unknown model", "Predict", predict(model="nope")),
        ("negative value to a checked model", "Predict", predict(proto=tf.make_tensor_proto(np.array([-1.0], np.float32)))),
        ("reload from a client", "HandleReloadConfigRequest", reload),
    ]


def attack(servers, seconds, results):
    """Runs every kind of attack against both servers for `seconds`; appends (category, server, kind, outcome,
    client error?) to `results`."""
    import grpc
    import httpx2 as httpx
    from tensorflow_serving.apis import model_service_pb2_grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    stop = time.monotonic() + seconds
    local = []
    lock = threading.Lock()

    def record(*row):
        with lock:
            local.append(row)

    def hostile_rest(server):
        catalogue = _rest_hostile()
        while time.monotonic() < stop:
            for kind, raw in catalogue:
                try:
                    with socket.create_connection(("127.0.0.1", server["rest"]), timeout=30) as sock:
                        sock.sendall(raw)
                        status = _status_of(sock)
                except OSError as error:
                    status = type(error).__name__
                record("hostile", server["batching"], f"REST: {kind}", status,
                       isinstance(status, int) and 400 <= status < 500)
                if time.monotonic() > stop:
                    return

    def hostile_grpc(server):
        catalogue = _grpc_hostile()
        options = [("grpc.max_send_message_length", 2**30)]
        with grpc.insecure_channel(f"127.0.0.1:{server['grpc']}", options=options) as channel:
            stubs = {"Predict": prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict,
                     "HandleReloadConfigRequest": model_service_pb2_grpc.ModelServiceStub(
                         channel).HandleReloadConfigRequest}
            while time.monotonic() < stop:
                for kind, method, request in catalogue:
                    try:
                        stubs[method](request, timeout=30)
                        code = "OK"
                    except grpc.RpcError as error:
                        code = error.code().name
                    record("hostile", server["batching"], f"gRPC: {kind}", code, code in CLIENT_ERROR_CODES)
                    if time.monotonic() > stop:
                        return

    def bursts(server):
        # 16 concurrent requests to `checked`, one of them negative: the batching server batches them together.
        with httpx.Client(base_url=f"http://127.0.0.1:{server['rest']}", timeout=60,
                          limits=httpx.Limits(max_connections=16)) as client:
            def one(value):
                response = client.post("/v1/models/checked:predict", json={"instances": [value]})
                bad = value < 0
                record("burst", server["batching"], "invalid" if bad else "valid", response.status_code,
                       response.status_code == 400 if bad else response.status_code == 200)

            while time.monotonic() < stop:
                values = [float(i) for i in range(15)] + [-1.0]
                random.shuffle(values)
                threads = [threading.Thread(target=one, args=(value,)) for value in values]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()

    def slow(server, kind, count):
        """`count` connections of one slow kind, each held until the server closes it; records how long that
        took (None: still open when the attack ended)."""
        def hold(sock, opened):
            request = (b"POST /v1/models/adding:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
            try:
                if kind == "slow body":
                    sock.sendall(request)
                sock.settimeout(0.3)
                position = 0
                while time.monotonic() < stop + 1:
                    try:
                        if not sock.recv(65536):
                            return time.monotonic() - opened
                    except socket.timeout:
                        pass
                    if kind == "headers a byte at a time" and position < len(request):
                        sock.sendall(request[position : position + 1])
                        position += 1
                    elif kind == "slow body":
                        sock.sendall(b"0")
            except OSError:
                return time.monotonic() - opened
            return None

        def one():
            opened = time.monotonic()
            try:
                sock = socket.create_connection(("127.0.0.1", server["rest"]), timeout=30)
            except OSError as error:
                record("slow", server["batching"], kind, type(error).__name__, True)
                return
            with sock:
                closed_after = hold(sock, opened)
            record("slow", server["batching"], kind, closed_after, closed_after is not None)

        threads = [threading.Thread(target=one) for _ in range(count)]
        for thread in threads:
            thread.start()
            if kind == "flood past the cap":
                continue
            time.sleep(0.01)
        for thread in threads:
            thread.join()

    jobs = []
    for server in servers:
        jobs += [(hostile_rest, server), (hostile_grpc, server), (bursts, server)]
        jobs += [(lambda s=server, k=kind, n=count: slow(s, k, n), None)
                 for kind, count in (("idle", 100), ("headers a byte at a time", 30), ("slow body", 20),
                                     ("flood past the cap", 400))]
    threads = [threading.Thread(target=job, args=(() if arg is None else (arg,))) for job, arg in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.extend(local)


# Versions, memory, isolation cost.


def lifecycle(base, attack_start, seconds, events):
    """Publishes version 2, then a corrupt version 3, then deletes both (a rollback to 1), during the attack."""
    adding = os.path.join(base, "adding")

    def publish(version, corrupt=False):
        staging = os.path.join(base, f".staging-{version}")
        if corrupt:
            os.makedirs(staging)
            with open(os.path.join(staging, "saved_model.pb"), "wb") as f:
                f.write(b"this is not a SavedModel")
        else:
            shutil.copytree(os.path.join(adding, "1"), staging)
        os.rename(staging, os.path.join(adding, str(version)))

    steps = [(0.10, "published version 2", lambda: publish(2)),
             (0.22, "published a corrupt version 3", lambda: publish(3, corrupt=True)),
             (0.34, "deleted versions 3 and 2 (rollback to 1)",
              lambda: [shutil.rmtree(os.path.join(adding, v)) for v in ("3", "2")])]
    for share, what, step in steps:
        time.sleep(max(0.0, attack_start + share * seconds - time.monotonic()))
        step()
        events.append((time.monotonic() - attack_start, what))


def sample_memory(servers, stop, samples):
    while not stop.is_set():
        for server in servers:
            try:
                samples.append((time.monotonic(), server["batching"], rss_bytes(server["process"].pid)))
            except OSError:
                pass
        stop.wait(0.25)


def isolation_cost(base, rounds=30):
    """(ms for a batch of 16 valid requests, ms for 16 with one invalid, runs per batch with it), in process."""
    from serving.server.batching import Batcher
    from serving.server.batching import BatchingParameters
    from serving.server.errors import ServingError
    from serving.server.servable import Servable

    servable = Servable("checked", 1, os.path.join(base, "checked", "1"))
    times = {"valid": [], "one invalid": []}
    runs = []

    class Counting:
        name = "checked"

        def __init__(self):
            self.runs = 0

        def predict(self, *args):
            self.runs += 1
            return servable.predict(*args)

    gate = threading.Event()

    class Gate(Counting):
        def predict(self, *args):
            gate.wait(60)
            return super().predict(*args)

    for _ in range(rounds):
        for case in times:
            counting = Gate()
            batcher = Batcher(BatchingParameters(max_batch_size=16, num_batch_threads=1))
            gate.clear()
            futures = [batcher.submit(counting, "serving_default", {"x": np.full([1], -1.0 if case != "valid" and i == 7
                                                                                   else float(i), np.float32)})
                       for i in range(16)]
            started = time.perf_counter()
            gate.set()
            for future in futures:
                try:
                    future.result(60)
                except ServingError:
                    pass
            times[case].append(time.perf_counter() - started)
            batcher.stop()
            if case != "valid":
                runs.append(counting.runs)
    return 1e3 * statistics.median(times["valid"]), 1e3 * statistics.median(times["one invalid"]), statistics.median(runs)


# Report.


def _p(latencies, q):
    ordered = sorted(latencies)
    return 1e3 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def section(valid, hostile, samples, idle, events, splits, cost, windows):
    """The report; `windows` = (end of the warm-up, start of the attack, its end), time.monotonic() times."""
    mib = 2**20
    warm, start, end = windows
    name = {False: "batching off", True: "batching on"}
    lines = [
        "## Soak: valid traffic through an attack (`benchmarks/soak.py`)",
        "",
        f"Command: `python -m benchmarks.soak --baseline_seconds={FLAGS.baseline_seconds} "
        f"--attack_seconds={FLAGS.attack_seconds}`, {datetime.date.today().isoformat()}.",
        f"Machine: {report.machine()}.",
        "",
        f"Two servers (batching off / on), each with a file-descriptor limit of {DESCRIPTOR_LIMIT} and "
        f"`{' '.join(SERVER_FLAGS)}`; clients, attacker and servers share the cores. The attack's requests are listed "
        "in the benchmark's docstring.",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
    ]
    failed = [row for row in valid if not row[4]]
    burst_valid = [row for row in hostile if row[0] == "burst" and row[2] == "valid"]
    burst_failed = [row for row in burst_valid if not row[4]]
    total_valid, total_failed = len(valid) + len(burst_valid), len(failed) + len(burst_failed)
    lines.append(f"| valid requests that failed: 0 | {total_failed} of {total_valid} | "
                 f"{'meets' if total_failed == 0 else '**misses**'} |")
    answered = [row for row in hostile if row[0] in ("hostile", "burst") and not (row[0] == "burst"
                                                                                 and row[2] == "valid")]
    client_errors = sum(1 for row in answered if row[4])
    share = client_errors / len(answered) if answered else float("nan")
    lines.append(f"| hostile requests answered with a client error: 100% | {client_errors} of {len(answered)} "
                 f"({100 * share:.1f}%) | {'meets' if client_errors == len(answered) else '**misses**'} |")
    slow = [row for row in hostile if row[0] == "slow"]
    slow_closed = sum(1 for row in slow if row[4])
    lines.append(f"| slow and idle connections closed by the server before the attack ended | {slow_closed} of "
                 f"{len(slow)} | {'meets' if slow_closed == len(slow) else '**misses**'} |")
    for batching in (False, True):
        peak = max((rss for t, b, rss in samples if b == batching and start <= t <= end), default=0)
        after = [rss for t, b, rss in samples if b == batching and t > end]
        back = after[-1] if after else float("inf")
        lines.append(f"| memory, {name[batching]}: peak under attack stated; RSS back within 25% of idle 3 s after "
                     f"it | idle {idle[batching] / mib:.0f} MiB, peak {peak / mib:.0f} MiB (+{(peak - idle[batching]) / mib:.0f}"
                     f" MiB), {back / mib:.0f} MiB 3 s after ({100 * (back / idle[batching] - 1):+.0f}%) | "
                     f"{'meets' if back <= 1.25 * idle[batching] else '**misses**'} |")
    tenths = (end - start) / 10
    for batching in (False, True):
        peaks = [max((rss for t, b, rss in samples if b == batching and start + i * tenths <= t < start + (i + 1) *
                      tenths), default=0) / mib for i in range(10)]
        lines.append(f"\nRSS peak of each tenth of the attack, {name[batching]} (MiB): "
                     f"{', '.join(f'{peak:.0f}' for peak in peaks)}.")
    lines += ["", "The attack's largest requests are in flight one at a time per server and protocol: a 70 MB gRPC "
              "message (refused at its length prefix), 50 MB ones refused once parsed, an 8 MB JSON body refused "
              "before parsing; the peaks above are what they, the valid traffic and the slow connections take "
              "together.",
              "", "Valid requests (closed loops; p50 / p99 ms, before and during the attack):", "",
              "| server | path | requests | failed | p50 / p99 alone | p50 / p99 under attack |",
              "|---|---|---|---|---|---|"]
    groups = collections.defaultdict(lambda: ([], [], [0]))
    for when, batching, path, seconds, ok, _ in valid:
        alone, attacked, failures = groups[(batching, path)]
        if start <= when <= end:
            attacked.append(seconds)
        elif when >= warm:  # the first seconds warm the servers up (first calls, thread pools)
            alone.append(seconds)
        failures[0] += not ok
    for (batching, path), (alone, attacked, failures) in sorted(groups.items()):
        lines.append(f"| {name[batching]} | {path} | {len(alone) + len(attacked)} | {failures[0]} | "
                     f"{_p(alone, 0.5):.1f} / {_p(alone, 0.99):.1f} | {_p(attacked, 0.5):.1f} / {_p(attacked, 0.99):.1f} |")
    for row in failed[:5]:
        lines.append(f"\nA failed valid request: {row[2]} ({name[row[1]]}): {row[5]}")
    lines += ["", "Hostile requests by kind (answers seen):", "", "| kind | sent | client errors | answers |",
              "|---|---|---|---|"]
    kinds = collections.defaultdict(list)
    for row in hostile:
        if row[0] == "hostile" or (row[0] == "burst" and row[2] == "invalid"):
            kinds["REST: invalid value in a batch of 16" if row[0] == "burst" else row[2]].append(row)
    for kind, rows in sorted(kinds.items()):
        answers = collections.Counter(str(row[3]) for row in rows)
        lines.append(f"| {kind} | {len(rows)} | {sum(row[4] for row in rows)} | "
                     f"{', '.join(f'{a} x{n}' for a, n in answers.most_common())} |")
    lines += ["", "Slow and idle connections (seconds until the server closed them):", "",
              "| kind | connections | closed | median | max |", "|---|---|---|---|---|"]
    by_kind = collections.defaultdict(list)
    for row in slow:
        by_kind[row[2]].append(row[3])
    for kind, closed in sorted(by_kind.items()):
        times = [t for t in closed if isinstance(t, float)]
        lines.append(f"| {kind} | {len(closed)} | {len(times)} | {statistics.median(times) if times else float('nan'):.1f} | "
                     f"{max(times) if times else float('nan'):.1f} |")
    lines += ["", "Versions of the adding model during the attack: " + "; ".join(
        f"{what} at {at:.0f} s" for at, what in events) + ". " + splits, ""]
    valid_ms, invalid_ms, runs = cost
    lines.append(f"Cost of isolating an invalid request (in process, the `checked` model, median of 30): a batch of 16 "
                 f"valid requests takes {valid_ms:.2f} ms; with one invalid request it takes {invalid_ms:.2f} ms "
                 f"({invalid_ms / valid_ms:.1f}x, {runs:.0f} runs instead of 1: the failed batch, then halves down to "
                 "the offender).")
    return "\n".join(lines) + "\n"


def _status(server, model):
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{server['rest']}/v1/models/{model}", timeout=30) as response:
        return json.loads(response.read())["model_version_status"]


def _splits(server):
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{server['rest']}/monitoring/prometheus/metrics",
                                timeout=30) as response:
        page = response.read().decode()
    total = sum(float(line.split()[-1]) for line in page.splitlines()
                if line.startswith(":seqzoo:serving:batching:split_batches_total{"))
    return total


def main(argv):
    del argv
    absl_warnings_only()
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as scratch:
        base, example = prepare(scratch)
        config = write_models(base, scratch)
        cost = isolation_cost(base)
        servers = [start_server(config, batching) for batching in (False, True)]
        portable = [{key: server[key] for key in ("grpc", "rest", "batching")} for server in servers]
        samples, events = [], []
        stop_sampling = threading.Event()
        sampler = threading.Thread(target=sample_memory, args=(servers, stop_sampling, samples))
        try:
            time.sleep(2)
            idle = {server["batching"]: rss_bytes(server["process"].pid) for server in servers}
            sampler.start()
            manager = context.Manager()
            valid, hostile = manager.list(), manager.list()
            total = FLAGS.baseline_seconds + FLAGS.attack_seconds
            valid_process = context.Process(target=valid_traffic, args=(portable, example, total, valid))
            valid_process.start()
            warm = time.monotonic() + WARM_UP_SECONDS
            time.sleep(FLAGS.baseline_seconds)
            attack_start = time.monotonic()
            attacker = context.Process(target=attack, args=(portable, FLAGS.attack_seconds, hostile))
            attacker.start()
            lifecycle(base, attack_start, FLAGS.attack_seconds, events)
            attacker.join()
            attack_end = time.monotonic()
            valid_process.join()
            time.sleep(3)
            stop_sampling.set()
            sampler.join()
            statuses = [_status(server, "adding") for server in servers]
            splits = _splits(servers[1])
        finally:
            stop_sampling.set()
            for server in servers:
                server["process"].terminate()
                server["process"].wait(timeout=60)
        for status in statuses:
            states = {entry["version"]: entry["state"] for entry in status}
            if states.get("1") != "AVAILABLE":
                raise RuntimeError(f"the rollback did not bring version 1 back: {status}")
        split_text = (f"After the rollback, version 1 serves on both servers. The batching server split "
                      f"{splits:.0f} batches to isolate invalid requests.")
        text = section(list(valid), list(hostile), samples, idle, events, split_text, cost, (warm, attack_start, attack_end))
    report.publish(text, FLAGS.output, "benchmarks.soak", PREAMBLE)


if __name__ == "__main__":
    run(main)
