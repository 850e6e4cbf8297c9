"""The config files the repository ships parse as the server (and TF Serving) reads them."""

import os

from serving.server import config_files

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_the_shipped_configs_parse():
    configs = os.path.join(REPOSITORY, "serving", "configs")
    parameters = config_files.read_batching_parameters(os.path.join(configs, "batching.config"))
    assert parameters.max_batch_size == 64 and parameters.allowed_batch_sizes == [8, 16, 32, 64]
    assert config_files.read_monitoring_config(os.path.join(configs, "monitoring.config")) == (
        "/monitoring/prometheus/metrics")
    # The example of the models.config that exports write (the file itself is generated, and not in git): the models
    # that `make demo` exports.
    example = config_files.read_model_server_config(os.path.join(REPOSITORY, "saved_models", "models.config.example"))
    assert [(m.name, m.base_path) for m in example.model_config_list.config] == [
        (n, n) for n in ("adding", "latching", "lm", "dates", "babi", "listops", "speech")]
