"""Runs grouped across seeds (runlab compare --group-by, the dashboard's bands): each group's
mean, sample standard deviation and count checked against pandas' groupby over the values the
runs were given (Hypothesis: group sizes of one, NaN, a metric some runs lack), the per-epoch
band against NumPy, and bad input one line and exit 2."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import runlab
from runlab.report.groups import curves, group_runs, summary
from runlab.tracking.record import RunRecord

MODELS = ["mlp", "resmlp", "tcn"]


def _make(root: Path, spec: dict[str, Any]) -> RunRecord:
    config = {"model": {"name": spec["model"]}, "seed": spec["seed"], "optim": {"lr": 0.001}}
    with runlab.start_run(config, root=root, name="g", capture_stdout=False) as run:
        for epoch, loss in enumerate(spec["losses"], start=1):
            run.log_epoch(epoch, {"val": {"loss": loss}})
        if spec["acc"] is not None:
            run.summary["acc"] = spec["acc"]
    return RunRecord(run.dir)


values = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.just(float("nan")))
run_spec = st.fixed_dictionaries(
    {
        "model": st.sampled_from(MODELS),
        "seed": st.integers(0, 5),
        "losses": st.lists(values, min_size=1, max_size=4),
        "acc": st.one_of(st.none(), values),
    }
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(specs=st.lists(run_spec, min_size=1, max_size=7))
def test_groups_match_pandas_and_numpy(tmp_path_factory: Any, specs: list[dict[str, Any]]) -> None:
    root = tmp_path_factory.mktemp("groups")
    records = [_make(root, s) for s in specs]
    found = summary(group_runs(records, "config.model.name"), ["acc"])
    frame = pd.DataFrame({"model": [s["model"] for s in specs], "acc": [s["acc"] for s in specs]})
    frame["acc"] = pd.to_numeric(frame["acc"])
    reference = frame.groupby("model", sort=False)["acc"].agg(["mean", "std", "count", "size"])
    assert [g["key"]["config.model.name"] for g in found["groups"]] == list(reference.index)
    for group in found["groups"]:
        row = reference.loc[group["key"]["config.model.name"]]
        item = group["stats"]["acc"]
        assert group["count"] == row["size"] and item["n"] == row["count"]
        for ours, theirs in ((item["mean"], row["mean"]), (item["std"], row["std"])):
            if ours is None:
                assert math.isnan(theirs)  # no finite value, or only one: pandas says NaN
            else:
                assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-9)
    for band in curves(group_runs(records, "config.model.name"), "val.loss"):
        mine = [s for s in specs if f"config.model.name={s['model']}" == band["label"]]
        width = max(len(s["losses"]) for s in mine)
        assert band["epoch"] == list(range(1, width + 1))
        for i in range(width):
            at = np.array([s["losses"][i] for s in mine if len(s["losses"]) > i], dtype=float)
            at = at[np.isfinite(at)]
            assert band["n"][i] == len(at)
            if len(at):
                assert band["mean"][i] == pytest.approx(float(at.mean()), rel=1e-9, abs=1e-6)
            if len(at) > 1:
                assert band["std"][i] == pytest.approx(float(at.std(ddof=1)), rel=1e-6, abs=1e-6)
            else:
                assert band["std"][i] is None


def test_all_but_seed_groups_what_differs_but_the_seed(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    specs = [
        {"model": m, "seed": s, "losses": [1.0 + s, 0.5 * (s + 1)], "acc": 0.1 * s + (m == "mlp")}
        for m in ("mlp", "tcn")
        for s in (1, 2, 3)
    ]
    records = [_make(root, s) for s in specs]
    groups = group_runs(records, "all but seed")
    assert [g.label for g in groups] == ["config.model.name=mlp", "config.model.name=tcn"]
    assert [len(g.runs) for g in groups] == [3, 3]
    assert [g.label for g in group_runs(records, "all")] == [
        f"config.model.name={m}, config.seed={s}" for m in ("mlp", "tcn") for s in (1, 2, 3)
    ]
    done = subprocess.run(
        [sys.executable, "-m", "runlab", "compare", "--where", "name == 'g'", "-r", root,
         "--group-by", "all but seed", "-m", "acc"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "config.model.name=mlp  3     1.2 ± 0.1" in lines[1], done.stdout
    js = subprocess.run(
        [sys.executable, "-m", "runlab", "compare", "--where", "name == 'g'", "-r", root,
         "--group-by", "config.model.name", "--curve", "val.loss", "-f", "json"],
        capture_output=True, text=True,
    )  # fmt: skip
    band = json.loads(js.stdout)["curve"]["groups"][0]
    assert band["epoch"] == [1, 2] and band["mean"] == pytest.approx([3.0, 1.5])
    assert band["std"] == pytest.approx([1.0, 0.5])


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--group-by", ","], "--group-by: give names"),
        (["--group-by", "config.model.name", "--curve", "valloss", "-f", "json"], "'valloss'"),
        (["--curve", "val.loss"], "add --group-by"),
        (["--group-by", "config.model.name", "--curve", "val.loss"], "for -f json"),
    ],
)
def test_bad_grouping_is_one_line_and_exit_2(tmp_path: Path, args: list[str], words: str) -> None:
    root = tmp_path / "runs"
    _make(root, {"model": "mlp", "seed": 1, "losses": [1.0], "acc": None})
    done = subprocess.run(
        [sys.executable, "-m", "runlab", "compare", "--where", "name == 'g'", "-r", root, *args],
        capture_output=True, text=True,
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr
