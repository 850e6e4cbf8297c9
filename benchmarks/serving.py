"""Serving throughput and latency: the model server over REST and gRPC against in-process signature calls.

    python -m benchmarks.serving              # what `make bench` runs; rewrites its section of docs/performance.md
    python -m benchmarks.serving --seconds=2 --output=

A small adding-problem LSTM (T = 30, 32 units) is trained for a few steps and exported. The baseline calls its
`serving_default` signature in this process (tf.saved_model.load), one example per call, from 1, 8 and 64 threads.
The server then runs in its own process, without and with batching (deploy/batching.config), and is loaded from
other processes: REST by `wrk` (Debian's package; install it with `apt-get install wrk`), gRPC by a Python process
with one thread per concurrent client and the official stubs. Client and server share this machine's cores, so the
figures are lower bounds for a server with cores of its own.

Targets: at concurrency 1, the server's p50 minus the in-process p50 <= 0.5 ms; at concurrency 64 with batching,
throughput >= 1.0x the best unbatched in-process rate.
"""

import datetime
import json
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from absl import app
from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow

tf = import_tensorflow()

import numpy as np  # noqa: E402

from benchmarks import report  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("seconds", 5, "Duration of each load run, in seconds.", lower_bound=1)
flags.DEFINE_list("concurrency", ["1", "8", "64"], "Concurrent clients.")
flags.DEFINE_string("output", "docs/performance.md", "Markdown file whose serving section is rewritten; empty: none.")

OVERHEAD_TARGET_MS = 0.5
BATCHED_THROUGHPUT_TARGET = 1.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(scratch):
    """Trains a tiny run and exports it; returns (export base, one example [1, T, 2] as a list)."""
    run = os.path.join(scratch, "run")
    base = os.path.join(scratch, "saved")
    subprocess.run([sys.executable, "-m", "training.train", "--task=adding", "--preset=short", f"--model_dir={run}",
                    "--steps=20", "--override=train_size=512,validation_size=64,test_size=64"],
                   check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "serving.export", f"--model_dir={run}", "--name=adding",
                    f"--export_base={base}"], check=True, capture_output=True)
    example = np.random.default_rng(0).uniform(size=(1, 30, 2)).astype("float32")
    example[0, :, 1] = 0.0
    example[0, [3, 20], 1] = 1.0
    return base, example


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


def in_process(base, example, concurrencies):
    signature = tf.saved_model.load(os.path.join(base, "adding", "1")).signatures["serving_default"]
    inputs = tf.constant(example)
    call = lambda: signature(inputs=inputs)["sum"].numpy()  # noqa: E731
    for _ in range(50):
        call()
    return {c: closed_loop(call, c, FLAGS.seconds) for c in concurrencies}


def _grpc_load(port, example, concurrency, seconds, queue):
    """Runs in its own process: `concurrency` threads calling Predict through the official stub."""
    import grpc
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "adding"
    request.inputs["inputs"].CopyFrom(tf.make_tensor_proto(example))
    for _ in range(20):
        stub.Predict(request)
    queue.put(closed_loop(lambda: stub.Predict(request), concurrency, seconds))


def grpc_load(port, example, concurrency):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_grpc_load, args=(port, example, concurrency, FLAGS.seconds, queue))
    process.start()
    result = queue.get(timeout=FLAGS.seconds + 300)
    process.join()
    return result


def rest_load(port, example, concurrency, scratch):
    script = os.path.join(scratch, "post.lua")
    with open(script, "w") as f:
        body = json.dumps({"instances": example.tolist()})
        f.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                'wrk.headers["Content-Type"] = "application/json"\n')
    url = f"http://127.0.0.1:{port}/v1/models/adding:predict"
    subprocess.run(["wrk", "-t1", "-c1", "-d1s", "-s", script, url], capture_output=True, check=True)  # warm up
    threads = 1 if concurrency == 1 else 2
    output = subprocess.run(["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{FLAGS.seconds}s", "--latency",
                             "-s", script, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw failed requests:\n{output}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = {q: _ms(re.search(rf"\s{q}%\s+([\d.]+\w+)", output).group(1)) for q in ("50", "99")}
    return rate, latency["50"], latency["99"]


def _ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def serve(base, batching):
    grpc_port, rest_port = free_port(), free_port()
    command = [sys.executable, "-m", "serving.server", f"--model_config_file={os.path.join(base, 'models.config')}",
               f"--port={grpc_port}", f"--rest_api_port={rest_port}", "--file_system_poll_wait_seconds=0"]
    if batching:
        command += ["--enable_batching", "--batching_parameters_file=deploy/batching.config"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    if "REST on" not in line:
        process.kill()
        raise RuntimeError(f"the server did not start: {line}")
    return process, grpc_port, rest_port


def section(rows, baseline):
    c1 = baseline[1]
    best_in_process = max(rate for rate, _, _ in baseline.values())
    lines = [
        "## Serving: the model server against in-process signature calls (`benchmarks/serving.py`)",
        "",
        f"Command: `python -m benchmarks.serving --seconds={FLAGS.seconds} --concurrency={','.join(FLAGS.concurrency)}`"
        f", {datetime.date.today().isoformat()}.",
        f"Machine: {report.machine()}.",
        "",
        "One adding-problem example ([1, 30, 2], LSTM 32) per request; closed loops of concurrent clients. REST load "
        "from `wrk`, gRPC load from a Python process with the official stubs; client and server share the cores.",
        "",
        "| path | batching | concurrency | requests/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for concurrency, (rate, p50, p99) in sorted(baseline.items()):
        lines.append(f"| in-process signature call | — | {concurrency} | {rate:.0f} | {p50:.2f} | {p99:.2f} |")
    for (protocol, batching, concurrency), (rate, p50, p99) in rows.items():
        lines.append(f"| {protocol} | {'on' if batching else 'off'} | {concurrency} | {rate:.0f} | {p50:.2f} | "
                     f"{p99:.2f} |")
    lines += ["", "| target | measured | verdict |", "|---|---|---|"]
    for protocol in ("REST", "gRPC"):
        overhead = rows[(protocol, False, 1)][1] - c1[1]
        verdict = "meets" if overhead <= OVERHEAD_TARGET_MS else "**misses**"
        lines.append(f"| {protocol}, concurrency 1: p50 overhead over in-process <= {OVERHEAD_TARGET_MS} ms | "
                     f"{overhead:.2f} ms | {verdict} |")
    top = max(int(c) for c in FLAGS.concurrency)
    for protocol in ("REST", "gRPC"):
        ratio = rows[(protocol, True, top)][0] / best_in_process
        verdict = "meets" if ratio >= BATCHED_THROUGHPUT_TARGET else "**misses**"
        lines.append(f"| {protocol}, concurrency {top} with batching: throughput >= {BATCHED_THROUGHPUT_TARGET:.1f}x "
                     f"the best unbatched in-process rate ({best_in_process:.0f}/s) | {ratio:.2f}x | {verdict} |")
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    absl_warnings_only()
    if shutil.which("wrk") is None:
        raise app.UsageError("this benchmark generates REST load with wrk: install it (apt-get install wrk)")
    concurrencies = [int(c) for c in FLAGS.concurrency]
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        base, example = prepare(scratch)
        print("in-process baseline...", flush=True)
        baseline = in_process(base, example, concurrencies)
        for batching in (False, True):
            process, grpc_port, rest_port = serve(base, batching)
            try:
                for concurrency in concurrencies:
                    print(f"batching {'on' if batching else 'off'}, concurrency {concurrency}...", flush=True)
                    rows[("REST", batching, concurrency)] = rest_load(rest_port, example, concurrency, scratch)
                    rows[("gRPC", batching, concurrency)] = grpc_load(grpc_port, example, concurrency)
            finally:
                process.terminate()
                process.wait(timeout=60)
    ordered = {key: rows[key] for key in sorted(rows, key=lambda k: (k[0], k[1], k[2]))}
    report.publish(section(ordered, baseline), FLAGS.output, "benchmarks.serving")


if __name__ == "__main__":
    app.run(main)
