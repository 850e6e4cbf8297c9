"""The speech experiment on a tiny budget: two presets trained, measured on the test voices, noisy and clean, and
reported with both figures."""

import pytest

from training.experiments import speech as experiment

PNG = b"\x89PNG\r\n\x1a\n"
TINY = {"train_size": 32, "validation_size": 8, "test_size": 8, "clean_digits_size": 4, "batch_size": 16, "steps": 2}


@pytest.mark.slow
def test_two_presets_measured_and_reported(tmp_path):
    overrides = {**TINY, "cache_dir": str(tmp_path / "cache")}
    results, models = [], {}
    for preset in ("ctc", "plain"):
        result, models[preset] = experiment.run_preset(preset, 0, str(tmp_path / "runs"), overrides, [10.0], 4,
                                                       record_dir=str(tmp_path / "records"))
        results.append(result)
        assert result["steps"] == 2 and result["parameters"] > 0
        # Two steps are one epoch of 32 utterances in batches of 16, timed whole.
        assert result["timed_epochs"] == result["epochs"] == 1
        assert experiment.minutes_cell(result) == f"{result['minutes']:.1f}"
        assert set(result["snr"]) == {"10", "clean"} and all(0 <= v for v in result["snr"].values())
    assert "wer_beam" in results[0]["decoded"] and "wer_beam" not in results[1]["decoded"]
    # The SNR sets are synthesized once: a second call reads the same utterances.
    task, config, _ = models["ctc"]
    first, again = experiment.snr_set(config, 10.0, 4), experiment.snr_set(config, 10.0, 4)
    assert [e.text for e in first] == [e.text for e in again] and {e.snr_db for e in first} == {10.0}
    # A finished preset is recorded: asked again with the same settings, it is not trained (nor measured) again.
    again, trained = experiment.run_preset("plain", 0, str(tmp_path / "elsewhere"), overrides, [10.0], 4,
                                           record_dir=str(tmp_path / "records"))
    assert trained is None and again == results[1] and not (tmp_path / "elsewhere").exists()
    output = tmp_path / "docs"
    figures = {"snr": experiment.draw_snr(results, [10.0], str(output / "speech_snr.png"))}
    figures["spectrogram"] = experiment.draw_spectrogram(
        task, config, models["ctc"][2], task.corpus(config).examples["test_clean_digits"][0],
        str(output / "speech_spectrogram.png"))
    settings = {"command": "python -m training.experiments.speech --snrs=10", "seed": 0, "snrs": [10.0], "snr_size": 4}
    text = open(experiment.write_report(results, settings, str(output), figures)).read()
    assert "| CTC, bidirectional LSTM (`ctc`) |" in text and "| frame labeller, no feedback (`plain`) |" in text
    assert "Target: the CTC model at <= 5% WER on clean digit strings" in text and "**missed**" in text
    assert "| model | 10 dB | clean |" in text
    for name in ("speech_snr.png", "speech_spectrogram.png"):
        assert (output / name).read_bytes().startswith(PNG)


def test_the_minutes_say_when_a_resumed_run_timed_only_its_last_epochs():
    assert experiment.minutes_cell({"epochs": 20, "timed_epochs": 20, "minutes": 8.04}) == "8.0"
    assert experiment.minutes_cell({"epochs": 20, "timed_epochs": 15, "minutes": 6.5}) == (
        "6.5 (the last 15 epochs; resumed)")
    assert experiment.minutes_cell({"epochs": 20, "timed_epochs": 0, "minutes": None}) == "–"
