"""Data sources for the built-in trainer: .npz files, import paths, CSV/Parquet panels and
synthetic sets, checked for shape and NaN problems, and scaled on train only.

Tabular data is a matrix of rows (``x``: rows x features, or rows x time x features for the
sequence model). A *panel* (dates x assets) is held dense, ``x``: dates x assets x features with
a ``mask`` of which (date, asset) pairs exist, so that a batch is a set of whole dates and
per-date losses and metrics (IC, RankIC) need no grouping at run time.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runlab._imports import import_object
from runlab.errors import ConfigError

SPLITS = ("train", "val", "test")
NPZ_KEYS = ("X_train", "y_train", "X_val", "y_val")


@dataclass
class Split:
    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray | None = None  # panels: dates x assets, True where the pair exists

    @property
    def rows(self) -> int:
        return int(self.x.shape[0])


@dataclass
class Dataset:
    splits: dict[str, Split]
    task: str
    feature_names: list[str]
    n_classes: int | None = None
    dates: dict[str, list[str]] = field(default_factory=dict)  # panels: date labels per split
    assets: list[str] | None = None  # panels: asset ids, in column order
    scaler: dict[str, Any] = field(default_factory=lambda: {"kind": "none"})
    nan_replaced: int = 0
    target_names: list[str] | None = None  # panels: the target columns, one output each
    lookahead: list[str] = field(default_factory=list)  # features that look like the future

    @property
    def is_panel(self) -> bool:
        return self.splits["train"].mask is not None

    @property
    def in_features(self) -> int:
        return int(self.splits["train"].x.shape[-1])

    @property
    def target_shape(self) -> tuple[int, ...]:
        """The target of one row (one date and asset for a panel): ``()`` for a scalar, ``(k,)``
        for k regression outputs (an ``(n, 1)`` column is one output, ``(1,)``)."""
        y = self.splits["train"].y
        return tuple(int(d) for d in y.shape[2 if self.is_panel else 1 :])

    def columns(self) -> dict[str, Any]:
        """Which columns are features and which are targets, and the look-ahead warnings
        (run.json's ``data``, ``runlab check``)."""
        return {
            "features": list(self.feature_names),
            "targets": list(self.target_names or []),
            "lookahead": list(self.lookahead),
        }

    def describe(self) -> dict[str, Any]:
        return {
            **self.columns(),
            "features": self.in_features,
            "feature_names": list(self.feature_names),
            "layout": "panel (dates x assets)" if self.is_panel else "rows",
            **{name: list(s.x.shape) for name, s in self.splits.items()},
            "classes": self.n_classes,
            "scaler": self.scaler["kind"],
            "nan_replaced": self.nan_replaced,
        }


# ---------------------------------------------------------------------------- loading
def load_dataset(data_cfg: dict[str, Any], task: str, seed: int = 0) -> Dataset:
    from runlab.train.plugins import DATA_SOURCES

    source = str(data_cfg["source"])
    if source.startswith("synthetic.") or (source in DATA_SOURCES and ":" not in source):
        fn = DATA_SOURCES.load(source, "data.source")
        builtin = getattr(fn, "__module__", "") == __name__
        ds = fn(data_cfg, task) if builtin else _from_callable(fn, source, data_cfg, task)
    elif ":" in source and not Path(source).exists():
        ds = _from_callable(import_object(source, "data.source"), source, data_cfg, task)
    else:
        path = Path(source)
        if not path.exists():
            raise ConfigError(f"data file {source!r} not found (data.source)")
        suffix = path.suffix.lower()
        if suffix == ".npz":
            ds = _from_npz(path, task)
        elif suffix in (".csv", ".parquet", ".pq"):
            ds = _from_panel_file(path, data_cfg, task)
        else:
            raise ConfigError(
                f"data file {source!r}: unknown type {suffix!r} (use .npz, .csv or .parquet)"
            )
    _check(ds, allow_nan=bool(data_cfg["allow_nan"]))
    _scale(ds, data_cfg["scaler"], allow_nan=bool(data_cfg["allow_nan"]))
    return ds


def _arrays_to_dataset(arrays: dict[str, Any], task: str, where: str) -> Dataset:
    missing = [k for k in NPZ_KEYS if k not in arrays]
    if missing:
        found = ", ".join(sorted(arrays)) or "none"
        raise ConfigError(f"{where} has no key {missing[0]!r} (found: {found})")
    splits = {}
    for name in SPLITS:
        if f"X_{name}" in arrays and f"y_{name}" in arrays:
            x = np.asarray(arrays[f"X_{name}"])
            y = np.asarray(arrays[f"y_{name}"])
            splits[name] = Split(x=x, y=y)
    n_features = splits["train"].x.shape[-1] if splits["train"].x.ndim > 1 else 1
    return Dataset(splits=splits, task=task, feature_names=[f"x{i}" for i in range(n_features)])


def _from_npz(path: Path, task: str) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as err:
        raise ConfigError(f"data file {str(path)!r} is not a readable .npz ({err})") from err
    return _arrays_to_dataset(arrays, task, f"data file {str(path)!r}")


def _from_callable(fn: Any, source: str, data_cfg: dict[str, Any], task: str) -> Dataset:
    try:
        result = fn(**data_cfg.get("kwargs", {}))
    except Exception as err:
        raise ConfigError(f"data.source {source!r} raised {type(err).__name__}: {err}") from err
    if type(result).__name__ == "DataFrame" and hasattr(result, "columns"):
        return _from_panel_frame(result, data_cfg, task, f"data.source {source!r}")
    if isinstance(result, (tuple, list)):
        if len(result) not in (4, 6):
            raise ConfigError(
                f"data.source {source!r} returned {len(result)} arrays; expected 4 "
                "(X_train, y_train, X_val, y_val) or 6 (with X_test, y_test)"
            )
        keys = ["X_train", "y_train", "X_val", "y_val", "X_test", "y_test"]
        result = dict(zip(keys, result, strict=False))
    if not isinstance(result, dict):
        raise ConfigError(
            f"data.source {source!r} must return a dict or tuple of arrays, or a pandas "
            f"DataFrame panel (one row per date and asset), got {type(result).__name__}"
        )
    return _arrays_to_dataset(result, task, f"data.source {source!r}")


def synthetic_regression(cfg: dict[str, Any], task: str) -> Dataset:
    return _synthetic("regression", cfg, task)


def synthetic_classification(cfg: dict[str, Any], task: str) -> Dataset:
    return _synthetic("classification", cfg, task)


def synthetic_panel(cfg: dict[str, Any], task: str) -> Dataset:
    return _synthetic("panel", cfg, task)


def _synthetic(kind: str, cfg: dict[str, Any], task: str) -> Dataset:
    rng = np.random.default_rng(int(cfg["seed"]))
    n, f = int(cfg["n_samples"]), int(cfg["n_features"])
    if kind == "panel":
        return _synthetic_panel(rng, cfg, task)
    x = rng.standard_normal((n, f)).astype(np.float32)
    if kind == "regression":
        w1, w2 = rng.standard_normal((f,)) / np.sqrt(f), rng.standard_normal((f,)) / np.sqrt(f)
        y = np.sin(2 * x @ w1) + x @ w2 + float(cfg["noise"]) * rng.standard_normal(n) * 0.3
        y = y.astype(np.float32)
        n_classes = None
    elif kind == "classification":
        k = int(cfg["n_classes"])
        logits = x @ rng.standard_normal((f, k)) + float(cfg["noise"]) * rng.standard_normal((n, k))
        y = logits.argmax(axis=1).astype(np.int64)
        n_classes = k
    else:
        raise ConfigError(f"unknown synthetic source synthetic.{kind}")
    n_val = int(n * float(cfg["val_fraction"]))
    n_test = int(n * float(cfg["test_fraction"]))
    n_train = n - n_val - n_test
    cuts = {
        "train": slice(0, n_train),
        "val": slice(n_train, n_train + n_val),
        "test": slice(n_train + n_val, n),
    }
    splits = {k: Split(x=x[s], y=y[s]) for k, s in cuts.items() if s.stop > s.start}
    return Dataset(
        splits=splits, task=task, feature_names=[f"x{i}" for i in range(f)], n_classes=n_classes
    )


def _synthetic_panel(rng: np.random.Generator, cfg: dict[str, Any], task: str) -> Dataset:
    """Daily panel: next-day returns are a noisy, slightly non-linear function of features."""
    d, a, f = int(cfg["n_dates"]), int(cfg["n_assets"]), int(cfg["n_features"])
    x = rng.standard_normal((d, a, f)).astype(np.float32)
    beta = rng.standard_normal(f) / np.sqrt(f)
    signal = x @ beta + 0.5 * np.tanh(x[..., 0] * x[..., 1 % f])
    noise = float(cfg["noise"]) * 4.0 * rng.standard_normal((d, a))
    y = (0.01 * (signal + noise)).astype(np.float32)
    mask = rng.random((d, a)) > 0.05  # about 5% of (date, asset) pairs missing
    dates = [str(np.datetime64("2020-01-01") + np.timedelta64(i, "D")) for i in range(d)]
    return _panel_splits(x, y, mask, dates, cfg, task, [f"f{i}" for i in range(f)])


def _panel_splits(
    x: np.ndarray,
    y: np.ndarray,
    mask: np.ndarray,
    dates: list[str],
    cfg: dict[str, Any],
    task: str,
    features: list[str],
) -> Dataset:
    d = len(dates)
    train_end = _date_cut(dates, cfg.get("train_end"), int(d * 0.6), "data.train_end")
    val_end = _date_cut(dates, cfg.get("val_end"), int(d * 0.8), "data.val_end")
    if val_end <= train_end:
        raise ConfigError("data.val_end must come after data.train_end")
    cuts = {
        "train": slice(0, train_end),
        "val": slice(train_end, val_end),
        "test": slice(val_end, d),
    }
    splits, split_dates = {}, {}
    for name, s in cuts.items():
        if s.stop > s.start:
            splits[name] = Split(x=x[s], y=y[s], mask=mask[s])
            split_dates[name] = dates[s]
    assets = [f"A{i:03d}" for i in range(x.shape[1])]
    return Dataset(
        splits=splits, task=task, feature_names=features, dates=split_dates, assets=assets
    )


def _date_cut(dates: list[str], value: Any, default: int, key: str) -> int:
    """Index one past the last date <= value (dates sort as ISO strings)."""
    if value is None:
        return default
    bound = str(value)
    if dates and dates[0].isdigit() and bound.isdigit():  # period numbers, zero-padded
        bound = bound.zfill(len(dates[0]))
    elif dates and not dates[0].isdigit():  # the same ISO form as the labels (2024-3-31 too)
        with contextlib.suppress(ValueError, TypeError, OverflowError):
            import pandas as pd

            stamp = pd.Timestamp(bound)
            bound = stamp.strftime("%Y-%m-%dT%H:%M:%S" if "T" in dates[0] else "%Y-%m-%d")
    cut = sum(1 for dt in dates if dt <= bound)
    if cut == 0 or cut == len(dates):
        raise ConfigError(
            f"{key}={value!r} leaves a split empty (dates run {dates[0]} .. {dates[-1]})"
        )
    return cut


def _date_labels(pd: Any, column: Any, where: str, name: str) -> Any:
    """The date column as labels that sort in time: ISO dates (``2024-01-05``, with the time
    where there is one), or zero-padded numbers for a numeric column (day 9 before day 10).
    A value that is no date is refused, rather than sorted as text."""
    if pd.api.types.is_numeric_dtype(column):
        if column.isna().any() or not np.isfinite(column.to_numpy(dtype=float)).all():
            raise ConfigError(f"{where}: column {name!r} has missing dates")
        if (column < 0).any() or (column != column.round()).any():
            raise ConfigError(
                f"{where}: column {name!r} holds numbers that are not "
                "non-negative whole periods; give dates (2024-01-05) or period numbers"
            )
        width = len(str(int(column.max())))
        return column.astype(int).astype(str).str.zfill(width)
    text = column.astype(str)
    parsed = pd.to_datetime(text, errors="coerce")
    bad = parsed.isna()
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise ConfigError(
            f"{where}: {int(bad.sum())} values of column {name!r} are not "
            f"dates, first {text.iloc[row]!r} at row {row + 1}; use one format, e.g. 2024-01-05"
        )
    timed = (parsed != parsed.dt.normalize()).any()
    return parsed.dt.strftime("%Y-%m-%dT%H:%M:%S" if timed else "%Y-%m-%d")


def _from_panel_file(path: Path, cfg: dict[str, Any], task: str) -> Dataset:
    from runlab._imports import require

    pd = require("pandas", "pandas", "CSV/Parquet panels")
    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(path)
        else:
            require("pyarrow", "parquet", "Parquet panels")
            frame = pd.read_parquet(path)
    except Exception as err:
        raise ConfigError(f"data file {str(path)!r} cannot be read: {err}") from err
    return _from_panel_frame(frame, cfg, task, f"data file {str(path)!r}")


def _from_panel_frame(frame: Any, cfg: dict[str, Any], task: str, where: str) -> Dataset:
    """A long panel (one row per date and asset, from a file or a data function) as a dense
    dates x assets x features Dataset; ``data.target`` names one target column or several
    (one model output each)."""
    import pandas as pd

    date_col, asset_col = cfg["date_col"], cfg["asset_col"]
    targets = [cfg["target"]] if isinstance(cfg["target"], str) else list(cfg["target"])
    named = [(date_col, "date_col"), (asset_col, "asset_col")] + [(t, "target") for t in targets]
    for col, key in named:
        if col not in frame.columns:
            raise ConfigError(
                f"{where} has no column {col!r} (data.{key}); "
                f"columns: {', '.join(map(str, frame.columns))}"
            )
    features = cfg.get("features") or [
        c
        for c in frame.columns
        if c not in (date_col, asset_col, *targets) and pd.api.types.is_numeric_dtype(frame[c])
    ]
    absent = [c for c in features if c not in frame.columns]
    if absent:
        raise ConfigError(f"data.features: column {absent[0]!r} is not in {where}")
    overlap = [c for c in features if c in targets]
    if overlap:
        raise ConfigError(f"data.features: {overlap[0]!r} is also a target; drop it from one")
    frame = frame.assign(**{date_col: _date_labels(pd, frame[date_col], where, date_col)})
    twice = frame.duplicated([date_col, asset_col], keep=False)
    if twice.any():
        first, row = frame[twice].iloc[0], int(twice.to_numpy().argmax()) + 1
        raise ConfigError(
            f"{where} has {int(twice.sum())} rows that share a (date, asset), "
            f"first ({first[date_col]}, {first[asset_col]}) at row {row}: keep one row per "
            "date and asset"
        )
    dates = sorted(frame[date_col].unique())
    assets = sorted(frame[asset_col].astype(str).unique())
    d_idx = frame[date_col].map({v: i for i, v in enumerate(dates)}).to_numpy()
    a_idx = frame[asset_col].astype(str).map({v: i for i, v in enumerate(assets)}).to_numpy()
    x = np.zeros((len(dates), len(assets), len(features)), dtype=np.float32)
    several = not isinstance(cfg["target"], str)
    y = np.zeros((len(dates), len(assets), *((len(targets),) if several else ())), np.float32)
    mask = np.zeros((len(dates), len(assets)), dtype=bool)
    x[d_idx, a_idx] = frame[features].to_numpy(dtype=np.float32)
    values = frame[targets].to_numpy(dtype=np.float32)
    y[d_idx, a_idx] = values if several else values[:, 0]
    mask[d_idx, a_idx] = True
    ds = _panel_splits(x, y, mask, [str(d) for d in dates], cfg, task, list(map(str, features)))
    ds.assets = assets
    ds.target_names = [str(t) for t in targets]
    ds.lookahead = lookahead_features(frame, list(map(str, features)), ds.target_names)
    return ds


def lookahead_features(frame: Any, features: list[str], targets: list[str]) -> list[str]:
    """Features that look like future information, one warning each: a column whose values
    follow a target's almost exactly (|corr| > 0.98: the target itself, or a horizon of it),
    or one named like the targets (``ret_h10`` beside targets ``ret_h1, ret_h5``: another
    horizon's future return)."""
    import re

    found = []
    stems = {re.sub(r"\d+$", "", t) for t in targets if re.search(r"\d+$", t)}
    for col in features:
        stem = re.sub(r"\d+$", "", col)
        if col != stem and stem in stems:
            found.append(
                f"feature {col!r} is named like the targets ({', '.join(targets)}): if it is "
                "another horizon's future return, it leaks the future; drop it (data.features)"
            )
            continue
        for target in targets:
            both = frame[[col, target]].apply(lambda c: c.astype(float)).dropna()
            if len(both) < 3 or both[col].std() == 0 or both[target].std() == 0:
                continue
            corr = float(np.corrcoef(both[col], both[target])[0, 1])
            if abs(corr) > 0.98:
                found.append(
                    f"feature {col!r} follows target {target!r} (corr {corr:.3f}): it looks "
                    "like the future; drop it (data.features)"
                )
                break
    return found


# ---------------------------------------------------------------------------- checks
def _check(ds: Dataset, allow_nan: bool) -> None:
    if "val" not in ds.splits:
        raise ConfigError("data has no validation split (X_val, y_val or a val date range)")
    n_features = None
    for name, split in ds.splits.items():
        if split.rows == 0:
            raise ConfigError(f"data split {name!r} is empty")
        if split.x.shape[0] != split.y.shape[0]:
            raise ConfigError(
                f"data split {name!r}: X has {split.x.shape[0]} rows but y has {split.y.shape[0]}"
            )
        if split.x.ndim == 1:
            split.x = split.x[:, None]
        feats = split.x.shape[-1]
        if n_features is None:
            n_features = feats
        elif feats != n_features:
            raise ConfigError(
                f"data split {name!r} has {feats} features but train has {n_features}"
            )
        if not np.issubdtype(split.x.dtype, np.number):
            raise ConfigError(f"data split {name!r}: X is not numeric (dtype {split.x.dtype})")
        split.x = split.x.astype(np.float32, copy=False)
        _check_finite(ds, name, split, allow_nan)
        if ds.task == "classification":
            _check_labels(name, split)
        elif not np.issubdtype(split.y.dtype, np.number):
            raise ConfigError(f"data split {name!r}: y is not numeric (dtype {split.y.dtype})")
        else:
            split.y = split.y.astype(np.float32, copy=False)
            _check_target_shape(ds, name, split)
    if ds.task == "classification" and ds.n_classes is None:
        ds.n_classes = int(max(int(s.y.max()) for s in ds.splits.values())) + 1
    if ds.task == "ranking" and not ds.is_panel:
        raise ConfigError(
            "task 'ranking' needs a panel (dates x assets): use a CSV/Parquet panel or "
            "synthetic.panel as data.source"
        )


def _check_finite(ds: Dataset, name: str, split: Split, allow_nan: bool) -> None:
    valid = split.mask if split.mask is not None else np.ones(split.x.shape[0], dtype=bool)
    x_bad = ~np.isfinite(split.x) & valid.reshape(valid.shape + (1,) * (split.x.ndim - valid.ndim))
    y_num = np.issubdtype(split.y.dtype, np.floating)
    y_bad = ~np.isfinite(split.y) if y_num else np.zeros(split.y.shape, bool)
    y_bad = y_bad & valid.reshape(valid.shape + (1,) * (split.y.ndim - valid.ndim))
    if not (x_bad.any() or y_bad.any()):
        return
    if not allow_nan:
        per_col = x_bad.reshape(-1, split.x.shape[-1]).sum(axis=0)
        if per_col.any():
            col = int(per_col.argmax())
            label = ds.feature_names[col] if col < len(ds.feature_names) else f"x{col}"
            raise ConfigError(
                f"data split {name!r} has {int(x_bad.sum())} non-finite feature values "
                f"({int(per_col[col])} in column {label!r}); clean them or set data.allow_nan=true"
            )
        raise ConfigError(
            f"data split {name!r} has {int(y_bad.sum())} non-finite targets; "
            "clean them or set data.allow_nan=true"
        )
    # allowed: features become 0 after scaling (the train mean); targets drop out
    ds.nan_replaced += int(x_bad.sum())
    split.x = np.where(np.isfinite(split.x), split.x, np.nan).astype(np.float32)
    if y_bad.any():
        if split.mask is not None:  # a (date, asset) drops out if any of its targets is NaN
            cell_bad = y_bad.any(-1) if y_bad.ndim > split.mask.ndim else y_bad
            split.mask = split.mask & ~cell_bad
            split.y = np.where(y_bad, 0.0, split.y).astype(np.float32)
        else:
            keep = ~y_bad.reshape(y_bad.shape[0], -1).any(axis=1)
            split.x, split.y = split.x[keep], split.y[keep]


def _check_target_shape(ds: Dataset, name: str, split: Split) -> None:
    """Regression targets are (n,), (n, 1) or (n, k) (a panel: dates x assets), the same in
    every split: never a shape that the loss would broadcast."""
    lead = 2 if split.mask is not None else 1
    if split.y.ndim not in (lead, lead + 1):
        layout = "(dates, assets)" if lead == 2 else "(n,), (n, 1) or (n, k)"
        raise ConfigError(f"data split {name!r}: targets have shape {split.y.shape}; use {layout}")
    train = ds.splits["train"].y
    if split.y.shape[lead:] != train.shape[lead:]:
        if split.y[0].size == train[0].size:  # (n,) beside (n, 1): one output either way
            split.y = split.y.reshape(split.y.shape[:lead] + train.shape[lead:])
            return
        raise ConfigError(
            f"data split {name!r}: targets have shape {split.y.shape} but train's are "
            f"{train.shape}; every split needs the same number of outputs"
        )


def _check_labels(name: str, split: Split) -> None:
    y = split.y
    if y.ndim != 1:
        raise ConfigError(f"data split {name!r}: classification needs 1-D integer labels")
    if np.issubdtype(y.dtype, np.floating) and (
        not np.all(np.isfinite(y)) or not np.all(y == np.round(y))
    ):
        raise ConfigError(f"data split {name!r}: classification labels must be integers")
    if not np.issubdtype(y.dtype, np.number) or (y < 0).any():
        raise ConfigError(f"data split {name!r}: labels must be integers 0..K-1")
    split.y = y.astype(np.int64)


# ---------------------------------------------------------------------------- scaling
def _scale(ds: Dataset, kind: str, allow_nan: bool) -> None:
    train = ds.splits["train"]
    flat = train.x.reshape(-1, train.x.shape[-1])
    if train.mask is not None:
        flat = train.x[train.mask]
    if kind == "standard":
        center, scale = np.nanmean(flat, axis=0), np.nanstd(flat, axis=0)
    elif kind == "robust":
        center = np.nanmedian(flat, axis=0)
        q75, q25 = np.nanpercentile(flat, 75, axis=0), np.nanpercentile(flat, 25, axis=0)
        scale = q75 - q25
    else:
        center, scale = np.zeros(flat.shape[1]), np.ones(flat.shape[1])
    scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
    center = np.where(np.isfinite(center), center, 0.0)
    ds.scaler = {
        "kind": kind,
        "center": center.astype(np.float32).tolist(),
        "scale": scale.astype(np.float32).tolist(),
    }
    for split in ds.splits.values():
        split.x = apply_scaler(ds.scaler, split.x)
        if allow_nan:
            split.x = np.nan_to_num(split.x, nan=0.0, posinf=0.0, neginf=0.0)


def apply_scaler(scaler: dict[str, Any], x: np.ndarray) -> np.ndarray:
    if scaler.get("kind", "none") == "none":
        return x.astype(np.float32, copy=False)
    center = np.asarray(scaler["center"], dtype=np.float32)
    scale = np.asarray(scaler["scale"], dtype=np.float32)
    return ((x - center) / scale).astype(np.float32)
