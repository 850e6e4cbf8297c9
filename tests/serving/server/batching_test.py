"""Server-side batching (tf_serving_api.md §3, Batching): merging, padding, splitting, queue-full, task size."""

import asyncio
import threading

import numpy as np
import pytest

from serving.server.batching import Batcher
from serving.server.batching import BatchingParameters
from serving.server.core import ServerCore
from serving.server.errors import ServingError
from serving.server.errors import invalid_argument
from serving.server.metrics import Metrics


class RecordingServable:
    """y = 2 x; records the batch sizes it runs."""

    name = "recording"

    def __init__(self):
        self.batches = []
        self._lock = threading.Lock()

    def predict(self, signature, inputs, output_filter=(), timeout=None):
        with self._lock:
            self.batches.append(len(inputs["x"]))
        return {"y": inputs["x"] * 2, "rows": np.arange(len(inputs["x"]))}


def concurrently(batcher, servable, inputs_list):
    results, errors = [None] * len(inputs_list), []
    barrier = threading.Barrier(len(inputs_list))

    def call(index):
        barrier.wait()
        try:
            results[index] = batcher.predict(servable, "serving_default", inputs_list[index])
        except ServingError as error:
            errors.append(error)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(inputs_list))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_concurrent_requests_are_merged_and_split_back():
    servable = RecordingServable()
    metrics = Metrics()
    batcher = Batcher(BatchingParameters(max_batch_size=16, batch_timeout_micros=200_000, num_batch_threads=1),
                      metrics)
    requests = [{"x": np.full((1 + i % 3, 2), float(i), np.float32)} for i in range(8)]
    results, errors = concurrently(batcher, servable, requests)
    assert not errors
    for request, result in zip(requests, results):
        np.testing.assert_array_equal(result["y"], request["x"] * 2)  # each request gets its own rows back
    assert sum(servable.batches) == sum(len(r["x"]) for r in requests)
    assert len(servable.batches) < len(requests), servable.batches  # and they were run together
    batcher.stop()


def test_batches_are_padded_to_the_allowed_sizes():
    servable = RecordingServable()
    metrics = Metrics()
    batcher = Batcher(BatchingParameters(max_batch_size=8, allowed_batch_sizes=[4, 8], num_batch_threads=1), metrics)
    result = batcher.predict(servable, "serving_default", {"x": np.ones((3, 1), np.float32)})
    assert servable.batches == [4] and result["y"].shape == (3, 1)
    page = metrics.exposition().decode()
    assert ':tensorflow:serving:batching_session:padding_size_sum{model_name="recording"} 1.0' in page
    batcher.stop()


class Gated(RecordingServable):
    """Its first run waits until `release` is set, so that the requests sent meanwhile queue up in one batch.

    A negative x fails a run with INVALID_ARGUMENT, as a model's own input check does."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()
        self.running = threading.Event()

    def predict(self, signature, inputs, output_filter=(), timeout=None):
        if not self.running.is_set():
            self.running.set()
            assert self.release.wait(60), "the test never released the first run"
        result = super().predict(signature, inputs, output_filter, timeout)
        if (inputs["x"] < 0).any():
            raise invalid_argument("x must be non-negative")
        return result

    def check_output_filter(self, signature, output_filter):
        pass


def queue_behind_a_running_batch(batcher, servable):
    """Submits a first request and waits until the (only) worker runs it: what is submitted next waits in a
    batch."""
    first = batcher.submit(servable, "serving_default", {"x": np.zeros((1, 1), np.float32)})
    assert servable.running.wait(60)
    return first


def test_a_request_that_leaves_the_queue_never_fails_its_batch_mates():
    # A caller that gives up while its request is queued cancels the request's future; the batch it was in runs
    # without it, and the others in that batch get their answers (it used to complete the cancelled future, and
    # the InvalidStateError that raised went to every batch-mate).
    servable = Gated()
    batcher = Batcher(BatchingParameters(max_batch_size=8, num_batch_threads=1))
    first = queue_behind_a_running_batch(batcher, servable)
    waiting = [batcher.submit(servable, "serving_default", {"x": np.full((1, 1), i, np.float32)}) for i in (1, 2, 3)]
    assert waiting[0].cancel()
    servable.release.set()
    assert first.result(60)["y"].tolist() == [[0.0]]
    assert [future.result(60)["y"].tolist() for future in waiting[1:]] == [[[4.0]], [[6.0]]]
    assert servable.batches == [1, 2]  # the cancelled request was not run
    batcher.stop()


def test_a_rest_timeout_while_queued_fails_only_that_request():
    # The REST front end's path: a request whose timeout passes while it waits in a batch answers DEADLINE_EXCEEDED
    # and leaves; the requests batched with it, whose deadlines are later, get their outputs.
    servable = Gated()
    batcher = Batcher(BatchingParameters(max_batch_size=8, num_batch_threads=1))
    core = ServerCore(Metrics(), batcher)
    first = queue_behind_a_running_batch(batcher, servable)

    async def requests():
        asyncio.get_running_loop().call_later(0.5, servable.release.set)
        calls = [core.run_predict_async(servable, "serving_default", {"x": np.full((1, 1), i, np.float32)},
                                        timeout=timeout) for i, timeout in ((1, 0.1), (2, 60), (3, 60))]
        return await asyncio.gather(*calls, return_exceptions=True)

    short, *others = asyncio.run(requests())
    assert isinstance(short, ServingError) and short.code == "DEADLINE_EXCEEDED"
    assert [result["y"].tolist() for result in others] == [[[4.0]], [[6.0]]]
    assert first.result(60)["y"].tolist() == [[0.0]]
    batcher.stop()


@pytest.mark.parametrize("bad", [[5], [0, 7], list(range(8))])
def test_an_invalid_request_fails_alone(bad):
    # A batched run that fails with INVALID_ARGUMENT is split in halves, down to the offending requests: only they
    # get the error (TF Serving fails the whole batch). One offender in 8 costs 2 log2(8) = 6 runs more.
    servable = Gated()
    metrics = Metrics()
    batcher = Batcher(BatchingParameters(max_batch_size=8, num_batch_threads=1), metrics)
    queue_behind_a_running_batch(batcher, servable)
    futures = [batcher.submit(servable, "serving_default", {"x": np.full((1, 1), -1 - i if i in bad else i, np.float32)})
               for i in range(8)]
    servable.release.set()
    for i, future in enumerate(futures):
        if i in bad:
            with pytest.raises(ServingError, match="x must be non-negative") as raised:
                future.result(60)
            assert raised.value.code == "INVALID_ARGUMENT"
        else:
            assert future.result(60)["y"].tolist() == [[2.0 * i]]
    if bad == [5]:
        assert len(servable.batches) == 1 + 7, servable.batches  # the first run, then 7 runs for this batch
    page = metrics.exposition().decode()
    assert ':seqzoo:serving:batching:split_batches_total{model_name="recording"}' in page
    batcher.stop()


def test_task_larger_than_the_maximum_batch_is_rejected():
    batcher = Batcher(BatchingParameters(max_batch_size=4, num_batch_threads=1))
    with pytest.raises(ServingError, match="Task size 5 is larger than maximum input batch size 4"):
        batcher.predict(RecordingServable(), "serving_default", {"x": np.ones((5, 1), np.float32)})
    with pytest.raises(ServingError, match="input tensors must have equal 0th-dimension size"):
        batcher.predict(RecordingServable(), "serving_default",
                        {"x": np.ones((2, 1), np.float32), "z": np.ones((3, 1), np.float32)})
    batcher.stop()


def test_a_full_queue_answers_unavailable():
    # One worker, busy with a first request until it is let go; room for one waiting batch of one: of 7 more
    # requests, exactly one waits and six are refused with TF Serving's queue-full error.
    release = threading.Event()
    running = threading.Event()

    class Blocking(RecordingServable):
        def predict(self, signature, inputs, output_filter=(), timeout=None):
            running.set()
            release.wait(60)
            return super().predict(signature, inputs, output_filter, timeout)

    servable = Blocking()
    batcher = Batcher(BatchingParameters(max_batch_size=1, max_enqueued_batches=1, num_batch_threads=1))
    first = batcher.submit(servable, "serving_default", {"x": np.ones((1, 1), np.float32)})
    assert running.wait(60)
    futures, errors = [], []
    for _ in range(7):
        try:
            futures.append(batcher.submit(servable, "serving_default", {"x": np.ones((1, 1), np.float32)}))
        except ServingError as error:
            errors.append(error)
    release.set()
    assert len(futures) == 1 and len(errors) == 6
    assert all(e.code == "UNAVAILABLE" for e in errors)
    assert "The batch scheduling queue to which this task was submitted is full" in errors[0].message
    for future in [first] + futures:  # the running batch and the queued one still finish
        np.testing.assert_array_equal(future.result(60)["y"], np.full((1, 1), 2.0))
    batcher.stop()


@pytest.mark.parametrize(
    "parameters, message",
    [
        ({"max_batch_size": 0}, "must be positive"),
        ({"max_batch_size": 8, "allowed_batch_sizes": [4, 2, 8]}, "allowed_batch_sizes must increase"),
        ({"max_batch_size": 8, "allowed_batch_sizes": [2, 4]}, r"the last allowed_batch_sizes entry \(4\) must equal"),
    ],
)
def test_bad_parameters(parameters, message):
    with pytest.raises(ValueError, match=message):
        BatchingParameters(**parameters)
