"""Server-side batching with TensorFlow Serving's parameters (its BatchingParameters and shared batch scheduler).

Concurrent Predict requests for the same model version, signature and input layout are merged along dimension 0,
padded up to the next allowed batch size with copies of a row (the first row of the last request), run once, and
the outputs split back. A batch closes when it reaches `max_batch_size`; a worker (one of `num_batch_threads`)
takes it, or takes an open batch once `batch_timeout_micros` have passed since its first request (0: as soon as a
worker is free, so batches grow exactly while every worker is busy). More than `max_enqueued_batches` waiting
batches make a new request fail with UNAVAILABLE, as TF Serving's queue-full error does.

A request never fails because of the requests batched with it:
- one that leaves while queued (its caller gave up: a REST timeout, a cancelled future) or whose deadline has passed
  when its batch starts is taken out of the batch, and nothing is ever delivered to it afterwards;
- when a batched run fails with INVALID_ARGUMENT (one request's values broke a check of the model), the batch is
  split in halves and each half run again, down to the offending requests alone, so that only they get the error.
  With k offending requests in a batch of n this costs about 2 k log2(n / k) extra runs, and nothing when no run
  fails (TF Serving fails the whole batch instead).
"""

import collections
import threading
import time
from concurrent.futures import Future
from concurrent.futures import InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np

from serving.server.errors import ServingError
from serving.server.errors import invalid_argument


class BatchingParameters:
    """TF Serving's defaults: max_batch_size 1000, batch_timeout_micros 0, max_enqueued_batches 10, num_batch_threads
    the number of CPUs."""

    def __init__(self, max_batch_size=1000, batch_timeout_micros=0, max_enqueued_batches=10, num_batch_threads=None,
                 allowed_batch_sizes=(), pad_variable_length_inputs=False):
        import os

        self.max_batch_size = int(max_batch_size)
        self.batch_timeout_micros = int(batch_timeout_micros)
        self.max_enqueued_batches = int(max_enqueued_batches)
        self.num_batch_threads = int(num_batch_threads or os.cpu_count() or 1)
        self.allowed_batch_sizes = [int(s) for s in allowed_batch_sizes]
        self.pad_variable_length_inputs = bool(pad_variable_length_inputs)
        if self.max_batch_size < 1 or self.num_batch_threads < 1 or self.max_enqueued_batches < 1:
            raise ValueError("max_batch_size, num_batch_threads and max_enqueued_batches must be positive")
        if self.allowed_batch_sizes:
            if self.allowed_batch_sizes != sorted(set(self.allowed_batch_sizes)):
                raise ValueError(f"allowed_batch_sizes must increase, got {self.allowed_batch_sizes}")
            if self.allowed_batch_sizes[-1] != self.max_batch_size:
                raise ValueError(
                    f"the last allowed_batch_sizes entry ({self.allowed_batch_sizes[-1]}) must equal max_batch_size "
                    f"({self.max_batch_size})"
                )


class _Task:
    def __init__(self, inputs, size, timeout):
        self.inputs = inputs
        self.size = size
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.future = Future()


class _Batch:
    def __init__(self, key, servable, signature):
        self.key, self.servable, self.signature = key, servable, signature
        self.tasks = []
        self.size = 0
        self.opened = time.monotonic()


class Batcher:
    """Batches `predict(servable, signature, inputs)` calls from many threads; see the module docstring."""

    def __init__(self, parameters, metrics=None):
        self.parameters = parameters
        self.metrics = metrics
        self._lock = threading.Condition()
        self._open = {}  # key -> _Batch accepting tasks
        self._closed = collections.deque()  # full batches waiting for a worker
        self._stopped = False
        self._workers = [
            threading.Thread(target=self._work, name=f"batch-worker-{i}", daemon=True)
            for i in range(parameters.num_batch_threads)
        ]
        for worker in self._workers:
            worker.start()

    def stop(self):
        with self._lock:
            self._stopped = True
            self._lock.notify_all()

    def predict(self, servable, signature, inputs, timeout=None):
        """Runs one request through a batch; blocks until all its outputs are ready, or `timeout` seconds have
        passed."""
        future = self.submit(servable, signature, inputs, timeout)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()  # still queued: its batch drops it
            raise ServingError("DEADLINE_EXCEEDED", "Deadline Exceeded") from None

    def submit(self, servable, signature, inputs, timeout=None):
        """Queues one request; returns a concurrent.futures.Future of all its outputs (for async callers).

        Errors a request can be told before it is queued (sizes, a full queue) are raised here. `timeout` (seconds)
        is the request's deadline: a batch's run is cut (RunOptions timeout) once every request in it is past its
        own, as TF Serving's batching session times a batch by its latest deadline.
        """
        sizes = {value.shape[0] if value.ndim else None for value in inputs.values()}
        if None in sizes or len(sizes) != 1:
            raise invalid_argument("Batching session Run() input tensors must have equal 0th-dimension size")
        (size,) = sizes
        if size > self.parameters.max_batch_size:
            raise invalid_argument(
                f"Task size {size} is larger than maximum input batch size {self.parameters.max_batch_size}"
            )
        task = _Task(inputs, size, timeout)
        if size == 0:
            task.future.set_result(servable.predict(signature, inputs, (), timeout))
            return task.future
        key = (id(servable), signature) + tuple(
            (name, value.dtype.str, value.ndim if self.parameters.pad_variable_length_inputs else value.shape[1:])
            for name, value in sorted(inputs.items())
        )
        with self._lock:
            batch = self._open.get(key)
            if batch is not None and batch.size + size > self.parameters.max_batch_size:
                self._close(key)
                batch = None
            if batch is None:
                if len(self._closed) >= self.parameters.max_enqueued_batches:
                    raise ServingError(
                        "UNAVAILABLE",
                        "The batch scheduling queue to which this task was submitted is full; try again later",
                    )
                batch = self._open[key] = _Batch(key, servable, signature)
            batch.tasks.append(task)
            batch.size += size
            if batch.size == self.parameters.max_batch_size:
                self._close(key)
            self._lock.notify()
        return task.future

    def _close(self, key):
        self._closed.append(self._open.pop(key))

    def _next_batch(self):
        """Waits for work: a closed batch, or an open one whose timeout has passed. Called with the lock held."""
        timeout = self.parameters.batch_timeout_micros / 1e6
        while not self._stopped:
            if self._closed:
                return self._closed.popleft()
            now = time.monotonic()
            due = [b for b in self._open.values() if now - b.opened >= timeout]
            if due:
                batch = min(due, key=lambda b: b.opened)
                del self._open[batch.key]
                return batch
            waits = [timeout - (now - b.opened) for b in self._open.values()]
            self._lock.wait(timeout=min(waits) if waits else None)
        return None

    def _work(self):
        while True:
            with self._lock:
                batch = self._next_batch()
            if batch is None:
                return
            # A request whose caller has gone (a cancelled future) is dropped here; once running it cannot be.
            tasks = [task for task in batch.tasks if task.future.set_running_or_notify_cancel()]
            try:
                self._run(batch, tasks)
            except BaseException as error:  # noqa: BLE001 (every waiting request must get an answer)
                for task in tasks:
                    _settle(task.future, error=error)

    def _run(self, batch, tasks):
        """Runs `tasks` (started, none past its deadline) as one batch and answers each; on INVALID_ARGUMENT, runs
        each half again (see the module docstring), so only the requests that cause it get it."""
        tasks = [task for task in tasks if _before_deadline(task)]
        if not tasks:
            return
        try:
            outputs = self._run_merged(batch, tasks)
        except ServingError as error:
            if error.code != "INVALID_ARGUMENT" or len(tasks) == 1:
                for task in tasks:
                    _settle(task.future, error=error)
                return
            middle = len(tasks) // 2
            if self.metrics is not None:
                self.metrics.record_batch_split(batch.servable.name)
            self._run(batch, tasks[:middle])
            self._run(batch, tasks[middle:])
            return
        start = 0
        for task in tasks:
            _settle(task.future, result={name: value[start : start + task.size] for name, value in outputs.items()})
            start += task.size

    def _run_merged(self, batch, tasks):
        """The outputs of `tasks` run as one batch, padded to an allowed size (padding rows cut off)."""
        size = sum(task.size for task in tasks)
        target = size
        for allowed in self.parameters.allowed_batch_sizes:
            if allowed >= size:
                target = allowed
                break
        padding = target - size
        merged = {}
        for name in sorted(tasks[0].inputs):
            parts = [task.inputs[name] for task in tasks]
            if self.parameters.pad_variable_length_inputs:
                parts = _pad_to_common_shape(parts)
            if padding:
                parts = parts + [np.repeat(parts[-1][:1], padding, axis=0)]
            merged[name] = np.concatenate(parts, axis=0)
        deadlines = [task.deadline for task in tasks]
        timeout = None if None in deadlines else max(deadlines) - time.monotonic()
        outputs = batch.servable.predict(batch.signature, merged, (), timeout)
        if self.metrics is not None:
            self.metrics.record_batch(batch.servable.name, target, padding)
        for name, value in outputs.items():
            if value.ndim == 0 or value.shape[0] != target:
                raise ServingError(
                    "INTERNAL",
                    f"Batched output tensor {name} has 0th dimension {value.shape[0] if value.ndim else 'none'} "
                    f"but the batch has {target} rows",
                )
        return outputs


def _before_deadline(task):
    """True if the task's deadline has not passed; otherwise answers it DEADLINE_EXCEEDED and returns False."""
    if task.deadline is not None and task.deadline <= time.monotonic():
        _settle(task.future, error=ServingError("DEADLINE_EXCEEDED", "Deadline Exceeded"))
        return False
    return True


def _settle(future, result=None, error=None):
    """Completes a request's future once; a future already completed is left as it is."""
    if future.done():
        return
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:  # completed meanwhile
        pass


def _pad_to_common_shape(parts):
    """Zero-pads every non-batch dimension to the largest among `parts` (pad_variable_length_inputs)."""
    target = [max(p.shape[axis] for p in parts) for axis in range(1, parts[0].ndim)]
    padded = []
    for part in parts:
        widths = [(0, 0)] + [(0, t - s) for t, s in zip(target, part.shape[1:])]
        if any(w for _, w in widths):
            part = np.pad(part, widths, constant_values=b"" if part.dtype == object else 0)
        padded.append(part)
    return padded
