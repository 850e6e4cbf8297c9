"""Prometheus metrics under TensorFlow Serving's names (its `/tensorflow/serving/...` metrics, with `/` -> `:`).

Counters carry the `_total` suffix that the Prometheus client library gives every counter (TF Serving's own
exporter omits it); see serving/README.md.
"""

import prometheus_client

# Microseconds, 10 us to about 10 s in steps of about 1.8x.
_LATENCY_BUCKETS = tuple(10 * 1.8**i for i in range(24))
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """The server's metrics, in their own registry (so several servers can live in one process, as in tests)."""

    def __init__(self):
        # TF Serving exports no *_created series; neither do we.
        prometheus_client.disable_created_metrics()
        self.registry = prometheus_client.CollectorRegistry(auto_describe=True)
        self.request_count = prometheus_client.Counter(
            ":tensorflow:serving:request_count",
            "The total number of requests.",
            ["model_name", "status"],
            registry=self.registry,
        )
        self.request_latency = prometheus_client.Histogram(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "API", "entrypoint"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.runtime_latency = prometheus_client.Histogram(
            ":tensorflow:serving:runtime_latency",
            "Distribution of wall time (in microseconds) for Tensorflow runtime.",
            ["model_name", "API", "runtime"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = prometheus_client.Histogram(
            ":tensorflow:serving:batching_session:processed_batch_size",
            "Tracks the batch size distribution on processing.",
            ["model_name"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.padding_size = prometheus_client.Histogram(
            ":tensorflow:serving:batching_session:padding_size",
            "Tracks the padding size distribution on batches.",
            ["model_name"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_splits = prometheus_client.Counter(
            ":seqzoo:serving:batching:split_batches",
            "Batches run again in halves because a batched run failed with INVALID_ARGUMENT (so that only the "
            "offending requests fail).",
            ["model_name"],
            registry=self.registry,
        )

        self._children = {}

    def _child(self, metric, *labels):
        """`metric.labels(*labels)`, looked up once per label set (the library's lookup costs more than the
        update)."""
        key = (metric,) + labels
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def record_request(self, model_name, api, entrypoint, status, seconds):
        self._child(self.request_count, model_name, status).inc()
        self._child(self.request_latency, model_name, api, entrypoint).observe(seconds * 1e6)

    def record_runtime(self, model_name, api, seconds):
        self._child(self.runtime_latency, model_name, api, "TF").observe(seconds * 1e6)

    def record_batch(self, model_name, size, padding):
        self._child(self.batch_size, model_name).observe(size)
        self._child(self.padding_size, model_name).observe(padding)

    def record_batch_split(self, model_name):
        self._child(self.batch_splits, model_name).inc()

    def exposition(self):
        """The text page served at the monitoring path."""
        return prometheus_client.generate_latest(self.registry)
