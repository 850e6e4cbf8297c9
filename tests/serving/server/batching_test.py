"""Server-side batching (tf_serving_api.md §3, Batching): merging, padding, splitting, queue-full, task size."""

import threading

import numpy as np
import pytest

from serving.server.batching import Batcher
from serving.server.batching import BatchingParameters
from serving.server.errors import ServingError
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
