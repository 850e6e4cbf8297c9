"""Serving throughput and latency: the model server over REST and gRPC against in-process signature calls.

    python -m benchmarks.serving              # what `make bench` runs; rewrites its section of docs/performance.md
    python -m benchmarks.serving --seconds=2 --rounds=1 --output=

A small adding-problem LSTM (T = 30, 32 units) is trained for a few steps and exported. The baseline runs its
`serving_default` signature in this process, one example per call, from 1, 8 and 64 threads, in the two ways a
TensorFlow program can: the TF2 loader's concrete function (`tf.saved_model.load`), and the TF1 session loader with
a Session callable (what the server, like TF Serving, runs). The faster of the two is the baseline of the targets.

The server runs in processes of its own, one without and one with batching (serving/configs/batching.config), and is
loaded from other processes with C load generators from Debian: REST by `wrk` (package wrk), gRPC by `h2load` (package
nghttp2-client) sending a prebuilt gRPC Predict frame over HTTP/2; every gRPC answer is checked to be OK through
the server's own request counters. At concurrency 1 the in-process and server runs alternate for `--rounds`
rounds, so that slow spells of a shared machine hit both; the overhead is the median over rounds of the per-round
difference of p50s. Each round also measures the protocol stacks alone, with requests that run no model (REST: GET
the model's status; gRPC: grpc.health.v1 Check): the floor under a Predict request's overhead. Clients and servers
share this machine's cores, so the figures are lower bounds for a server with cores of its own.

Targets: at concurrency 1, the server's p50 minus the in-process p50 <= 0.5 ms; at concurrency 64 with batching,
throughput >= 1.0x the best unbatched in-process rate.
"""

import collections
import datetime
import json
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from absl import app
from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow
from training.startup import run

tf = import_tensorflow()


from benchmarks import report  # noqa: E402
from benchmarks.adding_export import free_port  # noqa: E402
from benchmarks.adding_export import prepare  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("seconds", 3, "Duration of each load run, in seconds.", lower_bound=1)
flags.DEFINE_integer("rounds", 3, "Alternating rounds of the concurrency-1 runs.", lower_bound=1)
flags.DEFINE_list("concurrency", ["1", "8", "64"], "Concurrent clients.")
flags.DEFINE_string("output", "docs/performance.md", "Markdown file whose serving section is rewritten; empty: none.")

OVERHEAD_TARGET_MS = 0.5
BATCHED_THROUGHPUT_TARGET = 1.0


def percentiles(latencies):
    ordered = sorted(latencies)
    pick = lambda q: 1e3 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return pick(0.5), pick(0.99)


def closed_loop(call, concurrency, seconds):
    """Runs `call()` from `concurrency` threads for `seconds`; returns (requests/s, p50 ms, p99 ms)."""
    latencies, stop = [], time.perf_counter() + seconds
    lock = threading.Lock()

    def worker():
        mine = []
        while time.perf_counter() < stop:
            start = time.perf_counter()
            call()
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (len(latencies) / (time.perf_counter() - began), *percentiles(latencies))


def in_process_callers(base, example):
    """{way: call()} running the signature once in this process, each way a TensorFlow program can."""
    from serving.server.servable import Servable

    path = os.path.join(base, "adding", "1")
    signature = tf.saved_model.load(path).signatures["serving_default"]
    inputs = tf.constant(example)
    servable = Servable("adding", 1, path)
    callers = {
        "TF2 concrete function": lambda: signature(inputs=inputs)["sum"].numpy(),
        "TF1 session callable": lambda: servable.predict("serving_default", {"inputs": example}),
    }
    for call in callers.values():
        for _ in range(50):
            call()
    return callers


def _ok_count(rest_port):
    """(OK, not OK) Predict requests so far, from the server's Prometheus page."""
    page = urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/monitoring/prometheus/metrics").read().decode()
    ok = bad = 0
    for status, value in re.findall(r':tensorflow:serving:request_count_total\{model_name="adding",status="(\w+)"\} '
                                    r"([\d.e+]+)", page):
        if status == "OK":
            ok += float(value)
        else:
            bad += float(value)
    return ok, bad


def _grpc_frame(path, message):
    """Writes one gRPC length-prefixed message (uncompressed) for h2load to send."""
    if not os.path.exists(path):
        data = message.SerializeToString()
        with open(path, "wb") as f:
            f.write(b"\0" + struct.pack(">I", len(data)) + data)
    return path


def _h2load(url, frame, concurrency, scratch):
    """h2load posting `frame` as a gRPC call: (h2load's report, requests/s, [latency s])."""
    log = os.path.join(scratch, "h2load.log")
    if os.path.exists(log):
        os.remove(log)
    output = subprocess.run(["h2load", f"-c{concurrency}", "-m1", f"-D{FLAGS.seconds}", "--warm-up-time=1",
                             "-d", frame, "-H", "content-type: application/grpc", "-H", "te: trailers",
                             f"--log-file={log}", url], capture_output=True, text=True, check=True).stdout
    with open(log) as f:
        latencies = [int(line.split()[2]) / 1e6 for line in f if line.strip()]  # microseconds
    rate = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", output).group(1))
    return output, rate, latencies


def grpc_load(ports, example, concurrency, scratch):
    """h2load against PredictionService/Predict: (requests/s, p50 ms, p99 ms); fails on any non-OK answer."""
    from tensorflow_serving.apis import predict_pb2

    grpc_port, rest_port = ports
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "adding"
    request.inputs["inputs"].CopyFrom(tf.make_tensor_proto(example))
    frame = _grpc_frame(os.path.join(scratch, "predict.grpc"), request)
    before = _ok_count(rest_port)
    output, rate, latencies = _h2load(f"http://127.0.0.1:{grpc_port}/tensorflow.serving.PredictionService/Predict",
                                      frame, concurrency, scratch)
    after = _ok_count(rest_port)
    if after[1] != before[1] or after[0] - before[0] < len(latencies) or not latencies:
        raise RuntimeError(f"gRPC requests failed ({after[1] - before[1]:.0f} not OK):\n{output}")
    return (rate, *percentiles(latencies))


def grpc_floor(ports, example, concurrency, scratch):
    """The same load on grpc.health.v1 Check, which runs no model: what the gRPC stack alone costs."""
    del example
    from grpc_health.v1 import health_pb2

    frame = _grpc_frame(os.path.join(scratch, "health.grpc"), health_pb2.HealthCheckRequest())
    output, rate, latencies = _h2load(f"http://127.0.0.1:{ports[0]}/grpc.health.v1.Health/Check", frame,
                                      concurrency, scratch)
    if not latencies or not re.search(r"\s0 failed, 0 errored", output):
        raise RuntimeError(f"health checks failed:\n{output}")
    return (rate, *percentiles(latencies))


def _wrk(url, concurrency, script=None):
    """wrk against `url` (GET, or what `script` sets): (requests/s, p50 ms, p99 ms); fails on any non-2xx answer."""
    scripted = ["-s", script] if script else []
    subprocess.run(["wrk", "-t1", "-c1", "-d1s", *scripted, url], capture_output=True, check=True)  # warm up
    threads = 1 if concurrency == 1 else 2
    output = subprocess.run(["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{FLAGS.seconds}s", "--latency",
                             *scripted, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw failed requests:\n{output}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = {q: _ms(re.search(rf"\s{q}%\s+([\d.]+\w+)", output).group(1)) for q in ("50", "99")}
    return rate, latency["50"], latency["99"]


def rest_load(ports, example, concurrency, scratch):
    script = os.path.join(scratch, "post.lua")
    with open(script, "w") as f:
        body = json.dumps({"instances": example.tolist()})
        f.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                'wrk.headers["Content-Type"] = "application/json"\n')
    return _wrk(f"http://127.0.0.1:{ports[1]}/v1/models/adding:predict", concurrency, script)


def rest_floor(ports, example, concurrency, scratch):
    """wrk on GET /v1/models/adding (model status), which runs no model: what the REST stack alone costs."""
    del example, scratch
    return _wrk(f"http://127.0.0.1:{ports[1]}/v1/models/adding", concurrency)


def _ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def serve(base, batching):
    grpc_port, rest_port = free_port(), free_port()
    command = [sys.executable, "-m", "serving.server", f"--model_config_file={os.path.join(base, 'models.config')}",
               f"--port={grpc_port}", f"--rest_api_port={rest_port}", "--file_system_poll_wait_seconds=0",
               "--monitoring_config_file=serving/configs/monitoring.config", "--enable_grpc_healthcheck_service"]
    if batching:
        command += ["--enable_batching", "--batching_parameters_file=serving/configs/batching.config"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    if "REST on" not in line:
        process.kill()
        raise RuntimeError(f"the server did not start: {line}")
    return process, grpc_port, rest_port


def _median_round(runs):
    """The run whose p50 is the median of the rounds'."""
    return sorted(runs, key=lambda run: run[1])[len(runs) // 2]


def section(results, ways, concurrencies):
    top = max(concurrencies)
    best_in_process = max(run[0] for (kind, _, _), runs in results.items() if kind == "in-process" for run in runs)
    lines = [
        "## Serving: the model server against in-process signature calls (`benchmarks/serving.py`)",
        "",
        f"Command: `python -m benchmarks.serving --seconds={FLAGS.seconds} --rounds={FLAGS.rounds} "
        f"--concurrency={','.join(FLAGS.concurrency)}`, {datetime.date.today().isoformat()}.",
        f"Machine: {report.machine()}.",
        "",
        "One adding-problem example ([1, 30, 2], LSTM 32) per request; closed loops of concurrent clients. REST load "
        "from `wrk`, gRPC load from `h2load` (HTTP/2 with gRPC framing, every answer checked OK); clients and servers "
        f"share the cores. Concurrency 1: median of {FLAGS.rounds} alternating rounds.",
        "",
        "| path | batching | concurrency | requests/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for concurrency in concurrencies:
        for way in ways:
            rate, p50, p99 = _median_round(results[("in-process", way, concurrency)])
            lines.append(f"| in-process, {way} | — | {concurrency} | {rate:.0f} | {p50:.2f} | {p99:.2f} |")
        for protocol in ("REST", "gRPC"):
            for batching in (False, True):
                rate, p50, p99 = _median_round(results[(protocol, batching, concurrency)])
                lines.append(f"| {protocol} | {'on' if batching else 'off'} | {concurrency} | {rate:.0f} | {p50:.2f} | "
                             f"{p99:.2f} |")
        for protocol, request in (("REST", "GET model status"), ("gRPC", "grpc.health.v1 Check")):
            if ("no model", protocol, concurrency) in results:
                rate, p50, p99 = _median_round(results[("no model", protocol, concurrency)])
                lines.append(f"| {protocol}, no model run ({request}) | off | {concurrency} | {rate:.0f} | {p50:.2f} | "
                             f"{p99:.2f} |")
    lines += ["", "| target | measured | verdict |", "|---|---|---|"]
    baseline_p50 = [min(results[("in-process", way, 1)][r][1] for way in ways) for r in range(FLAGS.rounds)]
    for protocol in ("REST", "gRPC"):
        server_p50 = [run[1] for run in results[(protocol, False, 1)]]
        overhead = statistics.median(s - b for s, b in zip(server_p50, baseline_p50))
        verdict = "meets" if overhead <= OVERHEAD_TARGET_MS else "**misses**"
        lines.append(f"| {protocol}, concurrency 1: p50 overhead over the faster in-process call <= "
                     f"{OVERHEAD_TARGET_MS} ms | {overhead:.2f} ms | {verdict} |")
    for protocol in ("REST", "gRPC"):
        ratio = _median_round(results[(protocol, True, top)])[0] / best_in_process
        verdict = "meets" if ratio >= BATCHED_THROUGHPUT_TARGET else "**misses**"
        lines.append(f"| {protocol}, concurrency {top} with batching: throughput >= {BATCHED_THROUGHPUT_TARGET:.1f}x "
                     f"the best unbatched in-process rate ({best_in_process:.0f}/s) | {ratio:.2f}x | {verdict} |")
    floor = {protocol: statistics.median(run[1] for run in results[("no model", protocol, 1)])
             for protocol in ("REST", "gRPC")}
    lines += ["", f"A request that runs no model (the rows \"no model run\") has a p50 of {floor['REST']:.2f} ms over "
              f"REST and {floor['gRPC']:.2f} ms over gRPC at concurrency 1: what the protocol stack alone (uvicorn and "
              "httptools; grpcio's server) and the load generator cost on these shared cores, a floor under the "
              "overhead of a Predict request."]
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    absl_warnings_only()
    for tool, package in (("wrk", "wrk"), ("h2load", "nghttp2-client")):
        if shutil.which(tool) is None:
            raise app.UsageError(f"this benchmark generates load with {tool}: install it (apt-get install {package})")
    concurrencies = sorted(int(c) for c in FLAGS.concurrency)
    loads = {"REST": rest_load, "gRPC": grpc_load}
    floors = {"REST": rest_floor, "gRPC": grpc_floor}
    results = collections.defaultdict(list)
    with tempfile.TemporaryDirectory() as scratch:
        base, example = prepare(scratch)
        callers = in_process_callers(base, example)
        servers = {batching: serve(base, batching) for batching in (False, True)}
        try:
            for concurrency in concurrencies:
                for round_ in range(FLAGS.rounds if concurrency == 1 else 1):
                    print(f"concurrency {concurrency}, round {round_ + 1}...", flush=True)
                    for way, call in callers.items():
                        results[("in-process", way, concurrency)].append(closed_loop(call, concurrency, FLAGS.seconds))
                    for batching, (_, grpc_port, rest_port) in servers.items():
                        for protocol, load in loads.items():
                            run = load((grpc_port, rest_port), example, concurrency, scratch)
                            results[(protocol, batching, concurrency)].append(run)
                    if concurrency == 1:
                        for protocol, load in floors.items():
                            run = load(servers[False][1:], example, concurrency, scratch)
                            results[("no model", protocol, concurrency)].append(run)
        finally:
            for process, _, _ in servers.values():
                process.terminate()
                process.wait(timeout=60)
    report.publish(section(results, list(callers), concurrencies), FLAGS.output, "benchmarks.serving")


if __name__ == "__main__":
    run(main)
