"""The model server's text-format config files, read with protobuf's text format as TF Serving reads them.

models.config is a `tensorflow.serving.ModelServerConfig` (its proto ships with tensorflow-serving-api). The batching
parameters file (`tensorflow.serving.BatchingParameters`) and the monitoring config (`tensorflow.serving.
MonitoringConfig`) come from protos that the pip package does not ship; their messages are declared here with TF
Serving's field names and numbers, so the same files parse, and a misspelt field is the same parse error.
"""

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
from google.protobuf import text_format
from google.protobuf import wrappers_pb2  # noqa: F401  (loads wrappers.proto into the default pool)
from tensorflow_serving.config import model_server_config_pb2

from serving.server.batching import BatchingParameters

_F = descriptor_pb2.FieldDescriptorProto


def _declare():
    pool = descriptor_pool.Default()
    name = "seqzoo/serving/tf_serving_config_subset.proto"
    try:
        pool.FindFileByName(name)
    except KeyError:
        file = descriptor_pb2.FileDescriptorProto(
            name=name, package="tensorflow.serving", syntax="proto3", dependency=["google/protobuf/wrappers.proto"]
        )
        batching = file.message_type.add(name="BatchingParameters")
        for number, field, kind in [
            (1, "max_batch_size", ".google.protobuf.Int64Value"),
            (2, "batch_timeout_micros", ".google.protobuf.Int64Value"),
            (3, "thread_pool_name", ".google.protobuf.StringValue"),
            (4, "num_batch_threads", ".google.protobuf.Int64Value"),
            (5, "max_enqueued_batches", ".google.protobuf.Int64Value"),
            (8, "enable_large_batch_splitting", ".google.protobuf.BoolValue"),
            (9, "max_execution_batch_size", ".google.protobuf.Int64Value"),
        ]:
            batching.field.add(name=field, number=number, type=_F.TYPE_MESSAGE, type_name=kind,
                               label=_F.LABEL_OPTIONAL)
        batching.field.add(name="allowed_batch_sizes", number=6, type=_F.TYPE_INT64, label=_F.LABEL_REPEATED)
        batching.field.add(name="pad_variable_length_inputs", number=7, type=_F.TYPE_BOOL, label=_F.LABEL_OPTIONAL)
        prometheus = file.message_type.add(name="PrometheusConfig")
        prometheus.field.add(name="enable", number=1, type=_F.TYPE_BOOL, label=_F.LABEL_OPTIONAL)
        prometheus.field.add(name="path", number=2, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
        monitoring = file.message_type.add(name="MonitoringConfig")
        monitoring.field.add(name="prometheus_config", number=1, type=_F.TYPE_MESSAGE,
                             type_name=".tensorflow.serving.PrometheusConfig", label=_F.LABEL_OPTIONAL)
        pool.Add(file)
    get = lambda full_name: message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))  # noqa: E731
    return get("tensorflow.serving.BatchingParameters"), get("tensorflow.serving.MonitoringConfig")


BatchingParametersProto, MonitoringConfigProto = _declare()

DEFAULT_MONITORING_PATH = "/monitoring/prometheus/metrics"


def _parse(path, message, what):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as error:
        raise ValueError(f"cannot read the {what} file {path}: {error.strerror}") from None
    try:
        return text_format.Parse(text, message)
    except text_format.ParseError as error:
        raise ValueError(f"Error parsing text-format {message.DESCRIPTOR.full_name} in {path}: {error}") from None


def read_model_server_config(path):
    return _parse(path, model_server_config_pb2.ModelServerConfig(), "model config")


def read_batching_parameters(path):
    proto = _parse(path, BatchingParametersProto(), "batching parameters")
    if proto.HasField("enable_large_batch_splitting") and proto.enable_large_batch_splitting.value:
        raise ValueError("enable_large_batch_splitting is not supported by this server (see serving/README.md)")

    def value(field, default):
        return getattr(proto, field).value if proto.HasField(field) else default

    return BatchingParameters(
        max_batch_size=value("max_batch_size", 1000),
        batch_timeout_micros=value("batch_timeout_micros", 0),
        max_enqueued_batches=value("max_enqueued_batches", 10),
        num_batch_threads=value("num_batch_threads", None),
        allowed_batch_sizes=list(proto.allowed_batch_sizes),
        pad_variable_length_inputs=proto.pad_variable_length_inputs,
    )


def read_monitoring_config(path):
    """The Prometheus page's path, or None when the config does not enable it."""
    proto = _parse(path, MonitoringConfigProto(), "monitoring config")
    if not proto.prometheus_config.enable:
        return None
    return proto.prometheus_config.path or DEFAULT_MONITORING_PATH
