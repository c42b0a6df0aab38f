"""Step series as columns (runlab.tracking.series) against the plain reading of steps.jsonl
line by line, with its cache written, extended as the file grows, thrown away when the file is
replaced, and skipped where the root cannot be written; the NumPy downsampling against the
Python one."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runlab.tracking import series
from runlab.web.downsample import min_max_array, min_max_buckets

VALUE = st.one_of(
    st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.booleans(), st.just("text"), st.none(),
)  # fmt: skip
RECORD = st.dictionaries(st.sampled_from(["loss", "lr", "grad_norm", "time"]), VALUE)


def reference(path: Path) -> dict[str, tuple[list[float], list[float]]]:
    """What the dashboard read before: every line, json.loads, finite numbers only."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    with open(path, "rb") as fh:
        lines = fh.read().split(b"\n")
    for line in lines[:-1]:  # a last line without its newline is torn
        try:
            record = json.loads(line)
        except ValueError:
            continue
        ok = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)  # noqa: E731
        if not isinstance(record, dict) or not ok(record.get("step")):
            continue
        for key, value in record.items():
            if key not in ("step", "time") and ok(value):
                xs, ys = out.setdefault(key, ([], []))
                xs.append(float(record["step"]))
                ys.append(float(value))
    return out


def same(got: Any, want: dict[str, tuple[list[float], list[float]]]) -> None:
    assert sorted(got) == sorted(want)
    for key, (xs, ys) in want.items():
        assert got[key][0].tolist() == xs and got[key][1].tolist() == ys, key


def write(path: Path, records: list[dict[str, Any]], start: int = 0, torn: str = "") -> None:
    with open(path, "a") as fh:
        for i, record in enumerate(records):
            fh.write(json.dumps({"step": start + i, **record}) + "\n")
        fh.write(torn)


@settings(max_examples=60, deadline=None)
@given(first=st.lists(RECORD, max_size=30), more=st.lists(RECORD, max_size=30), torn=st.booleans())
def test_columns_match_the_line_by_line_reading(tmp_path_factory, first, more, torn) -> None:
    run = tmp_path_factory.mktemp("run")
    path = run / "steps.jsonl"
    write(path, first, torn='{"step": 99, "loss": 1' if torn else "")
    original = series.MIN_CACHED
    series.MIN_CACHED = 1  # cache from the first row, so the cache itself is what is tested
    try:
        same(series.step_columns(run), reference(path))
        if torn:  # the torn line is completed, then more lines come (a live run)
            with open(path, "a") as fh:
                fh.write("}\n")
        write(path, more, start=1000)
        same(series.step_columns(run), reference(path))
        same(series.step_columns(run), reference(path))  # from the cache alone
    finally:
        series.MIN_CACHED = original


def test_the_cache_grows_with_the_file_and_is_dropped_when_it_is_replaced(tmp_path) -> None:
    path = tmp_path / "steps.jsonl"
    write(path, [{"loss": 1.0 / (i + 1)} for i in range(20_000)])
    same(series.step_columns(tmp_path), reference(path))
    cache = tmp_path / series.CACHE_FILE
    assert cache.exists()
    before = path.stat().st_size
    meta = json.loads(str(np.load(cache)["__meta__"]))
    assert meta["offset"] == before
    write(path, [{"loss": 5.0, "lr": 0.1}], start=20_000)  # appended: only this line is parsed
    same(series.step_columns(tmp_path), reference(path))
    assert json.loads(str(np.load(cache)["__meta__"]))["offset"] == path.stat().st_size
    path.write_text(json.dumps({"step": 0, "acc": 0.5}) + "\n")  # replaced, shorter
    same(series.step_columns(tmp_path), reference(path))
    path.write_text("")
    write(path, [{"acc": float(i)} for i in range(40_000)])  # replaced, longer, other head
    assert path.stat().st_size > meta["offset"]  # so only its first bytes tell it apart
    same(series.step_columns(tmp_path), reference(path))


def test_a_read_only_run_is_read_without_a_cache(tmp_path) -> None:
    """A real read-only file system (a tmpfs remounted read-only; skipped where mounting is
    not allowed): the series is read, no cache is left, nothing fails."""
    import subprocess

    from tests.conftest import tmpfs

    with tmpfs(tmp_path / "ro", "64m") as disk:
        path = disk / "steps.jsonl"
        write(path, [{"loss": float(i)} for i in range(20_000)])
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        with pytest.raises(OSError):
            (disk / "probe").write_text("x")
        same(series.step_columns(disk), reference(path))
        assert not (disk / series.CACHE_FILE).exists()


def test_a_damaged_cache_is_read_around(tmp_path) -> None:
    path = tmp_path / "steps.jsonl"
    write(path, [{"loss": float(i)} for i in range(20_000)])
    (tmp_path / series.CACHE_FILE).write_bytes(b"not an npz")
    same(series.step_columns(tmp_path), reference(path))
    assert series.step_columns(tmp_path)["loss"][1][-1] == 19_999.0
    cache = tmp_path / series.CACHE_FILE
    whole = cache.read_bytes()
    cache.write_bytes(whole[: len(whole) // 2])  # torn (a zip cut short)
    same(series.step_columns(tmp_path), reference(path))
    cache.write_bytes(whole)
    data = dict(np.load(cache))
    np.savez(cache, **{**data, "loss": data["loss"][:10]})  # a column of the wrong length
    same(series.step_columns(tmp_path), reference(path))


@settings(max_examples=80, deadline=None)
@given(
    ys=st.lists(st.one_of(st.floats(-10, 10), st.just(math.nan), st.integers(-3, 3)), max_size=400),
    points=st.integers(1, 60),
)
def test_numpy_downsampling_keeps_the_same_points(ys: list[float], points: int) -> None:
    xs = list(range(len(ys)))
    want = min_max_buckets(xs, [float(y) for y in ys], points)
    got = min_max_array(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float), points)
    assert got == [(float(x), float(y)) for x, y in want]
