import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from training.data import series


def write(tmp_path, text, name="series.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_read_series_csv(tmp_path):
    path = write(tmp_path, 'date,a,"b",c\n2001-01,1,10,100\n2001-02,2.5,20,200\n\n2001-03,-3e-1,30,300\n')
    values, dates = series.read_series_csv(path, ["c", "a"], date_column="date")
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, np.array([[100, 1], [200, 2.5], [300, -0.3]], "float32"))
    assert dates.tolist() == ["2001-01", "2001-02", "2001-03"]
    values, dates = series.read_series_csv(path, "b")
    assert values.shape == (3, 1) and dates is None


def test_missing_file_and_column(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no CSV file at '.*nowhere.csv'"):
        series.read_series_csv(str(tmp_path / "nowhere.csv"), ["a"])
    path = write(tmp_path, "a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"has no column\(s\) \['c'\]; its columns are \['a', 'b'\]"):
        series.read_series_csv(path, ["a", "c"])
    with pytest.raises(ValueError, match=r"has no column\(s\) \['when'\]; its columns are \['a', 'b'\]"):
        series.read_series_csv(path, ["a"], date_column="when")
    with pytest.raises(ValueError, match=r"is empty: expected a header row"):
        series.read_series_csv(write(tmp_path, "", "empty.csv"), ["a"])
    with pytest.raises(ValueError, match=r"has a header but no rows"):
        series.read_series_csv(write(tmp_path, "a,b\n", "header.csv"), ["a"])


def test_non_numeric_values_name_their_line(tmp_path):
    path = write(tmp_path, "a,b\n1,2\n3,4\n5,six\n")
    with pytest.raises(ValueError, match=r"series.csv, line 4: column 'b' has the non-numeric value 'six'"):
        series.read_series_csv(path, ["a", "b"])
    assert series.read_series_csv(path, ["a"])[0].shape == (3, 1)  # the bad column is not read
    with pytest.raises(ValueError, match=r"line 3: 1 fields, expected 2 as in the header"):
        series.read_series_csv(write(tmp_path, "a,b\n1,2\n3\n", "short.csv"), ["a"])


def test_missing_values(tmp_path):
    path = write(tmp_path, "t,a,b\n0,1,10\n1,,20\n2,NA,NaN\n3,4,40\n4,5,\n")
    with pytest.raises(
        ValueError,
        match=r"has 4 missing value\(s\) in columns \['a', 'b'\] \(the first at line 3, column 'a'\); "
        r"pass fill='interpolate' .* or fill='drop'",
    ):
        series.read_series_csv(path, ["a", "b"])
    values, dates = series.read_series_csv(path, ["a", "b"], date_column="t", fill="interpolate")
    np.testing.assert_allclose(values, [[1, 10], [2, 20], [3, 30], [4, 40], [5, 40]])  # the end takes its neighbour
    assert dates.tolist() == ["0", "1", "2", "3", "4"]
    values, dates = series.read_series_csv(path, ["a", "b"], date_column="t", fill="drop")
    np.testing.assert_array_equal(values, [[1, 10], [4, 40]])
    assert dates.tolist() == ["0", "3"]
    with pytest.raises(ValueError, match=r"fill must be None, 'interpolate' or 'drop', got 'mean'"):
        series.read_series_csv(path, ["a"], fill="mean")
    with pytest.raises(ValueError, match=r"column 'b' has no values at all"):
        series.read_series_csv(write(tmp_path, "a,b\n1,\n2,\n", "empty_b.csv"), ["a", "b"], fill="interpolate")


def test_packaged_sunspots():
    path = series.packaged_series("sunspots")
    assert path.endswith("sunspots.csv")
    values, years = series.read_series_csv(path, ["SUNACTIVITY"], date_column="YEAR")
    assert values.shape == (309, 1)
    assert years[0] == "1700" and years[-1] == "2008"
    np.testing.assert_allclose(values[:4, 0], [5, 11, 16, 23])  # the first years of the yearly record
    assert values.min() >= 0


def test_packaged_co2_has_gaps_that_fill_handles():
    path = series.packaged_series("co2")
    with pytest.raises(ValueError, match=r"missing value\(s\) in columns \['co2'\]"):
        series.read_series_csv(path, ["co2"])
    values, dates = series.read_series_csv(path, ["co2"], date_column="date", fill="interpolate")
    assert not np.isnan(values).any() and dates[0] == "19580329"
    assert 300 < values.min() and values.max() < 400  # ppm


def test_packaged_series_finds_files_without_importing_the_package():
    check = (
        "import sys; from training.data import series; series.packaged_series('sunspots'); "
        "assert 'statsmodels' not in sys.modules, 'statsmodels was imported'"
    )
    repository = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(series.__file__))))
    subprocess.run([sys.executable, "-c", check], check=True, cwd=repository)


def test_packaged_series_errors(monkeypatch):
    with pytest.raises(ValueError, match=r"unknown packaged series 'ozone'; known series: \['co2', 'sunspots'\]"):
        series.packaged_series("ozone")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=r"ships with the 'statsmodels' package, .* pip install statsmodels"):
        series.packaged_series("sunspots")


def test_chronological_splits():
    values = np.arange(20, dtype="float32")[:, None]
    train, validation, test = series.chronological_splits(values)
    assert (len(train), len(validation), len(test)) == (14, 3, 3)
    np.testing.assert_array_equal(np.concatenate([train, validation, test]), values)  # in order, no overlap
    assert [len(part) for part in series.chronological_splits(np.zeros(100), (0.7, 0.2, 0.1))] == [70, 20, 10]
    train, validation, test = series.chronological_splits(values, (0.5, 0.25, 0.25))
    assert train[-1, 0] == 9 and validation[0, 0] == 10 and test[0, 0] == 15
    with pytest.raises(ValueError, match=r"fractions must be three positive numbers .* summing to 1, got \(0.7, 0.2\)"):
        series.chronological_splits(values, (0.7, 0.2))
    with pytest.raises(ValueError, match=r"summing to 1, got \(0.7, 0.2, 0.2\)"):
        series.chronological_splits(values, (0.7, 0.2, 0.2))
    with pytest.raises(ValueError, match=r"a series of 5 steps split by fractions \(0.9, 0.05, 0.05\) leaves the "
                       r"validation split\(s\) empty"):
        series.chronological_splits(values[:5], (0.9, 0.05, 0.05))


def test_scaler_is_fitted_on_training_data_only():
    rng = np.random.default_rng(0)
    values = np.stack([rng.normal(5.0, 2.0, 300), rng.normal(-1.0, 0.1, 300)], axis=1)
    values[210:] += 100.0  # the future differs: it must not leak into the scaling
    train, validation, test = series.chronological_splits(values)
    scaler = series.Scaler().fit(train)
    np.testing.assert_allclose(scaler.mean, train.mean(axis=0))
    np.testing.assert_allclose(scaler.std, train.std(axis=0))
    scaled = scaler.transform(train)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(scaler.transform(test), (test - train.mean(0)) / train.std(0), rtol=1e-5)
    assert scaler.transform(test)[:, 0].mean() > 40  # the test split is not re-centred
    # Forecasts [n, horizon, F] go back to the series' units.
    forecast = scaler.transform(test)[None, :5]
    np.testing.assert_allclose(scaler.inverse_transform(forecast)[0], test[:5], rtol=1e-5)


def test_scaler_config_is_plain_data():
    scaler = series.Scaler().fit(np.array([[1.0, 10.0], [3.0, 30.0]]))
    config = scaler.get_config()
    assert config == {"mean": [2.0, 20.0], "std": [1.0, 10.0]}
    assert json.loads(json.dumps(config)) == config
    clone = series.Scaler.from_config(config)
    np.testing.assert_array_equal(clone.transform([[5.0, 0.0]]), [[3.0, -2.0]])
    assert series.Scaler().get_config() == {"mean": None, "std": None}


def test_scaler_errors():
    with pytest.raises(ValueError, match=r"feature\(s\) \[1\] have standard deviation 0 \(constant in the training"):
        series.Scaler().fit(np.array([[1.0, 7.0], [2.0, 7.0], [3.0, 7.0]]))
    with pytest.raises(ValueError, match=r"feature\(s\) \[0\] have standard deviation 0"):
        series.Scaler(mean=[1.0], std=[0.0])
    with pytest.raises(ValueError, match=r"this Scaler is not fitted: call fit\(train\) first"):
        series.Scaler().transform([[1.0]])
    scaler = series.Scaler().fit(np.array([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(ValueError, match=r"fitted on 2 feature\(s\); got values of shape \(3, 3\)"):
        scaler.transform(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"train must be a series of shape \[steps, features\], got shape \(4,\); "
                       r"for one feature use values\[:, None\]"):
        series.Scaler().fit(np.arange(4.0))
    with pytest.raises(ValueError, match=r"the training data has NaNs"):
        series.Scaler().fit(np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match=r"Scaler takes both mean and std, or neither"):
        series.Scaler(mean=[1.0])


def test_windows():
    values = np.arange(20, dtype="float32").reshape(10, 2)  # step i holds [2i, 2i + 1]
    inputs, targets = series.windows(values, input_length=3, horizon=2)
    assert inputs.shape == (6, 3, 2) and targets.shape == (6, 2, 2)
    assert inputs.dtype == np.float32 and targets.dtype == np.float32
    for i in range(6):
        np.testing.assert_array_equal(inputs[i], values[i : i + 3])
        np.testing.assert_array_equal(targets[i], values[i + 3 : i + 5])
    # The last target is the last step of the split: windows stay inside it.
    np.testing.assert_array_equal(targets[-1, -1], values[-1])
    inputs, targets = series.windows(values, input_length=9, horizon=1)
    assert inputs.shape == (1, 9, 2)


def test_windows_never_cross_splits():
    values = np.arange(100, dtype="float32")[:, None]
    splits = series.chronological_splits(values)
    for part in splits:
        inputs, targets = series.windows(part, input_length=4, horizon=3)
        steps = np.concatenate([inputs.ravel(), targets.ravel()])
        assert steps.min() >= part.min() and steps.max() <= part.max()


def test_windows_errors():
    values = np.zeros((5, 2), "float32")
    with pytest.raises(ValueError, match=r"a split of 5 steps is too short for one window of input_length \+ horizon "
                       r"= 4 \+ 2 = 6 steps"):
        series.windows(values, 4, 2)
    with pytest.raises(ValueError, match=r"horizon must be a positive int, got 0"):
        series.windows(values, 2, 0)
    with pytest.raises(ValueError, match=r"input_length must be a positive int, got 2.0"):
        series.windows(values, 2.0, 1)
    with pytest.raises(ValueError, match=r"values must be a series of shape \[steps, features\], got shape \(5,\)"):
        series.windows(np.zeros(5), 2, 1)
