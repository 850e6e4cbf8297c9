"""Real-valued series from CSV files: reading, chronological splits, per-feature scaling fitted on the training split
only, and sliding windows of (past, future) steps inside one split."""

import csv
import importlib.util
import math
import numbers
import os

import numpy as np

FILLS = ("interpolate", "drop")

# name -> (PyPI package that ships the file, its path inside the package)
PACKAGED_SERIES = {
    # Yearly mean sunspot numbers, 1700-2008 (309 rows): YEAR, SUNACTIVITY.
    "sunspots": ("statsmodels", "datasets/sunspots/sunspots.csv"),
    # Weekly atmospheric CO2 at Mauna Loa, 1958-2001 (ppm), with gaps: date (yyyymmdd), co2.
    "co2": ("statsmodels", "datasets/co2/co2.csv"),
}

_MISSING = {"", "na", "nan", "null", "none"}


def read_series_csv(path, columns, date_column=None, fill=None):
    """Reads numeric columns of a CSV file with a header row.

    Args:
        path: the CSV file.
        columns: the column names to read (a list, or one name), in the order of the returned features.
        date_column: optional name of a column returned as raw strings (not parsed: formats vary from file to file).
        fill: what to do with missing values (empty cells, "NA", "NaN"): `None` (default) raises; "interpolate"
            fills each gap linearly between its neighbours in the same column (the ends take the nearest value);
            "drop" drops every row that has one.

    Returns:
        (values float32 [N, F], dates: a NumPy array of N strings, or None without `date_column`).
    """
    if isinstance(columns, str):
        columns = [columns]
    columns = list(columns)
    if not columns or not all(isinstance(c, str) for c in columns):
        raise ValueError(f"columns must be a non-empty list of column names, got {columns!r}")
    if fill is not None and fill not in FILLS:
        raise ValueError(f"fill must be None, 'interpolate' or 'drop', got {fill!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no CSV file at {path!r}")
    with open(path, newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path} is empty: expected a header row naming the columns")
        header = [name.strip() for name in header]
        wanted = columns + ([date_column] if date_column is not None else [])
        missing = [name for name in wanted if name not in header]
        if missing:
            raise ValueError(f"{path} has no column(s) {missing}; its columns are {header}")
        positions = [header.index(name) for name in columns]
        date_position = header.index(date_column) if date_column is not None else None
        rows, dates, lines = [], [], []
        for row in reader:
            line = reader.line_num
            if not row:
                continue  # a blank line
            if len(row) < len(header):
                raise ValueError(f"{path}, line {line}: {len(row)} fields, expected {len(header)} as in the header")
            rows.append([_number(row[p], path, line, header[p]) for p in positions])
            lines.append(line)
            if date_position is not None:
                dates.append(row[date_position].strip())
    if not rows:
        raise ValueError(f"{path} has a header but no rows")
    values = np.asarray(rows, dtype="float64")
    dates = np.asarray(dates, dtype=str) if date_column is not None else None
    gaps = np.isnan(values)
    if gaps.any():
        if fill is None:
            first_row, first_column = np.argwhere(gaps)[0]
            raise ValueError(
                f"{path} has {int(gaps.sum())} missing value(s) in columns {columns} (the first at line "
                f"{lines[first_row]}, column {columns[first_column]!r}); pass fill='interpolate' to fill them "
                "linearly between their neighbours, or fill='drop' to drop the rows that have them"
            )
        if fill == "drop":
            keep = ~gaps.any(axis=1)
            values = values[keep]
            dates = dates[keep] if dates is not None else None
            if not len(values):
                raise ValueError(f"{path}: every row has a missing value; fill='drop' leaves nothing")
        else:
            for index, name in enumerate(columns):
                column, known = values[:, index], ~gaps[:, index]
                if not known.any():
                    raise ValueError(f"{path}: column {name!r} has no values at all, nothing to interpolate from")
                steps = np.arange(len(column))
                values[:, index] = np.interp(steps, steps[known], column[known])
    return values.astype("float32"), dates


def _number(text, path, line, column):
    text = text.strip()
    if text.lower() in _MISSING:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{path}, line {line}: column {column!r} has the non-numeric value {text!r}") from None


def packaged_series(name):
    """The path of a CSV series that ships inside an installed PyPI package, found without importing the package.

    Args:
        name: one of `PACKAGED_SERIES`: "sunspots" (yearly, column SUNACTIVITY, dates in YEAR) or "co2" (weekly,
            column co2 with gaps, dates in date).
    """
    if name not in PACKAGED_SERIES:
        raise ValueError(f"unknown packaged series {name!r}; known series: {sorted(PACKAGED_SERIES)}")
    package, relative = PACKAGED_SERIES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the {name!r} series ships with the {package!r} package, which is not installed: pip install {package}"
        )
    for location in spec.submodule_search_locations:
        path = os.path.join(location, *relative.split("/"))
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"the installed {package!r} package has no {relative} (looked in {list(spec.submodule_search_locations)}); "
        f"reinstall it with pip install --force-reinstall {package}"
    )


def chronological_splits(values, fractions=(0.7, 0.15, 0.15)):
    """Splits a series into train, validation and test parts in time order: no shuffling, no overlap.

    Args:
        values: [N, ...], a series, oldest first.
        fractions: three positive fractions summing to 1: the share of each split. Split boundaries are rounded
            down, so the test split takes what rounding leaves.

    Returns:
        (train [N_train, ...], validation [N_validation, ...], test [N_test, ...]), consecutive parts of `values`.
    """
    if (
        not isinstance(fractions, (tuple, list))
        or len(fractions) != 3
        or not all(isinstance(f, numbers.Real) and not isinstance(f, bool) and f > 0 for f in fractions)
        or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6)
    ):
        raise ValueError(
            f"fractions must be three positive numbers (train, validation, test) summing to 1, got {fractions!r}"
        )
    values = np.asarray(values)
    count = len(values)
    # Rounded down, with a little slack so that e.g. 100 * (0.7 + 0.2) = 89.99999999999999 counts as 90.
    train_end = int(count * fractions[0] + 1e-9)
    validation_end = int(count * (fractions[0] + fractions[1]) + 1e-9)
    parts = (values[:train_end], values[train_end:validation_end], values[validation_end:])
    empty = [name for name, part in zip(("train", "validation", "test"), parts) if not len(part)]
    if empty:
        raise ValueError(
            f"a series of {count} steps split by fractions {tuple(fractions)} leaves the {' and '.join(empty)} "
            "split(s) empty; use a longer series or larger fractions for them"
        )
    return parts


class Scaler:
    """Standardises every feature by the mean and standard deviation of the training split: (x - mean) / std.

    Fit it on the training split only, so that nothing about the validation and test steps leaks into training;
    then transform every split with it, and `inverse_transform` forecasts back to the series' units.

    Example:
        ```python
        train, validation, test = chronological_splits(values)
        scaler = Scaler().fit(train)
        train, validation, test = (scaler.transform(part) for part in (train, validation, test))
        forecast = scaler.inverse_transform(model(inputs))
        ```
    """

    def __init__(self, mean=None, std=None):
        self.mean = None if mean is None else np.asarray(mean, dtype="float64")
        self.std = None if std is None else np.asarray(std, dtype="float64")
        if (self.mean is None) != (self.std is None):
            raise ValueError("Scaler takes both mean and std, or neither (then call fit)")
        if self.mean is not None:
            if self.mean.ndim != 1 or self.mean.shape != self.std.shape:
                raise ValueError(
                    "mean and std must be lists of one value per feature, of the same length; got shapes "
                    f"{self.mean.shape} and {self.std.shape}"
                )
            _check_std(self.std)

    def fit(self, train):
        """Learns the mean and std of every feature of `train` [N, F]; returns the scaler."""
        train = _features(train, "train")
        if len(train) < 2:
            raise ValueError(f"fitting a Scaler needs at least 2 training steps, got {len(train)}")
        if np.isnan(train).any():
            raise ValueError("the training data has NaNs; read it with fill='interpolate' or fill='drop'")
        std = train.std(axis=0)
        _check_std(std)
        self.mean, self.std = train.mean(axis=0), std
        return self

    def transform(self, values):
        """(values - mean) / std, float32, for values [..., F]."""
        values = self._check(values)
        return ((values - self.mean) / self.std).astype("float32")

    def inverse_transform(self, values):
        """values * std + mean, float32, for values [..., F]: scaled values back in the series' units."""
        values = self._check(values)
        return (values * self.std + self.mean).astype("float32")

    def _check(self, values):
        if self.mean is None:
            raise ValueError("this Scaler is not fitted: call fit(train) first")
        values = np.asarray(values, dtype="float64")
        if values.ndim < 1 or values.shape[-1] != len(self.mean):
            raise ValueError(
                f"this Scaler was fitted on {len(self.mean)} feature(s); got values of shape {values.shape}"
            )
        return values

    def get_config(self):
        """{"mean": [...], "std": [...]}: plain lists, for a run's config file."""
        if self.mean is None:
            return {"mean": None, "std": None}
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _features(values, name):
    values = np.asarray(values, dtype="float64")
    if values.ndim != 2:
        raise ValueError(
            f"{name} must be a series of shape [steps, features], got shape {values.shape}"
            + ("; for one feature use values[:, None]" if values.ndim == 1 else "")
        )
    return values


def _check_std(std):
    constant = [int(i) for i in np.flatnonzero(~(np.asarray(std) > 0))]
    if constant:
        raise ValueError(
            f"feature(s) {constant} have standard deviation 0 (constant in the training data): they cannot be "
            "standardised; drop them from the columns"
        )


def windows(values, input_length, horizon):
    """Every (past, future) pair of one split, sliding by one step: the forecaster's examples.

    Window i reads steps i .. i + input_length - 1 and predicts steps i + input_length .. i + input_length +
    horizon - 1. Call it on each split separately, so that no window straddles two splits.

    Args:
        values: [N, F], one split of a series.
        input_length: positive int, the steps the model sees.
        horizon: positive int, the steps it forecasts.

    Returns:
        (inputs float32 [n, input_length, F], targets float32 [n, horizon, F]), n = N - input_length - horizon + 1.
    """
    for name, value in (("input_length", input_length), ("horizon", horizon)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    values = _features(values, "values")
    span = input_length + horizon
    if len(values) < span:
        raise ValueError(
            f"a split of {len(values)} steps is too short for one window of input_length + horizon = "
            f"{input_length} + {horizon} = {span} steps; shorten the windows or give this split a larger fraction"
        )
    count = len(values) - span + 1
    index = np.arange(count)[:, None]
    inputs = values[index + np.arange(input_length)]
    targets = values[index + input_length + np.arange(horizon)]
    return inputs.astype("float32"), targets.astype("float32")
