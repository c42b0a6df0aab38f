"""The episodic allocation trainer and its reward."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import runlab
from runlab.finance import log_growth_reward
from runlab.train.episodic import to_allocations

REPO = Path(__file__).resolve().parents[1]
ALLOC = REPO / "examples" / "allocation.yaml"


def test_log_growth_reward_by_hand() -> None:
    a = torch.tensor([[[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]])  # 1 episode, T=3, 2 assets
    p = torch.tensor([[[1.0, 1.0], [1.1, 0.9], [1.21, 0.99]]])
    expected = math.log(1.1) + math.log(0.5 * 1.1 + 0.5 * 1.1)
    assert float(log_growth_reward(a, p)[0]) == pytest.approx(expected, rel=1e-6)
    # penalty: |0.5-1| + |0.5-0| + |0-0.5| + |1-0.5| = 2
    assert float(log_growth_reward(a, p, transition_penalty=0.1)[0]) == pytest.approx(
        expected - 0.2, abs=1e-6
    )
    wiped = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    zero = torch.tensor([[[1.0, 1.0], [0.0, 1.0]]])
    assert float(log_growth_reward(wiped, zero)[0]) == pytest.approx(math.log(1e-8))  # clamped


def test_transforms() -> None:
    scores = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    mask = torch.tensor([[True, True, True, False]])
    soft = to_allocations(scores, mask, "softmax")
    assert float(soft.sum()) == pytest.approx(1.0) and float(soft[0, 3]) == 0.0
    for name in ("tanh", "identity"):
        w = to_allocations(scores * 5, mask, name)
        assert float(w.abs().sum()) <= 1.0 + 1e-6 and float(w[0, 3]) == 0.0


def test_allocation_example_runs_and_backtests(cli, root: Path) -> None:
    code, out, err = cli("run", ALLOC, "trainer.epochs=2", "-o", root, "-f", "json")
    assert code == 0, err
    run_dir = Path(json.loads(out)["run_dir"])
    m = runlab.RunRecord(run_dir).metrics
    for key in (
        "reward_mean",
        "reward_std",
        "episodes",
        "transition_penalty",
        "turnover",
        "throughput_eps_per_sec",
    ):
        assert key in m, key
    assert m["episodes"] == 2 * 1024 and m["throughput_eps_per_sec"] > 0
    assert {"reward", "sharpe", "max_drawdown", "turnover"} <= set(m["val"])
    assert m["monitor"] == "val.reward" and m["best_epoch"] in (1, 2)
    rows = runlab.RunRecord(run_dir).scalars()
    assert [r["split"] for r in rows] == ["train", "val", "train", "val"]
    assert rows[0]["episodes_per_s"] > 0
    code, out, err = cli("backtest", "allocation", "--root", root)
    assert code == 0, err
    bt = json.loads((run_dir / "artifacts/backtest/test/metrics.json").read_text())
    assert bt["avg_gross_leverage"] == pytest.approx(1.0)  # softmax: fully invested, long only
    loaded = runlab.load_model(run_dir)
    assert loaded.config["loop"] == "episodic"


def test_custom_reward_and_penalty(cli, root: Path) -> None:
    code, out, err = cli(
        "run",
        ALLOC,
        "trainer.epochs=1",
        "episodic.reward=tests.helpers:linear_reward",
        "episodic.transition_penalty=0.05",
        "episodic.transform=tanh",
        "-o",
        root,
        "-f",
        "json",
    )
    assert code == 0, err
    m = runlab.RunRecord(json.loads(out)["run_dir"]).metrics
    assert m["transition_penalty"] == 0.05 and math.isfinite(m["reward_mean"])


def test_preflight_and_resume_refusal(cli, root: Path) -> None:
    code, out, _ = cli("check", ALLOC, "-f", "json")
    report = json.loads(out)
    assert code == 0 and set(report["stages"]) == {
        "data",
        "model",
        "train",
        "validate",
        "checkpoint",
    }
    assert "reward" in report["validate"]
    code, _, err = cli("run", ALLOC, "episodic.window=1000", "-o", root)
    assert code == 2 and "episodic.window=1000 does not fit" in err
    code, out, _ = cli("run", ALLOC, "trainer.epochs=1", "-o", root, "-f", "json")
    code, _, err = cli("run", "--resume", "allocation", "-o", root)
    assert code == 2 and "--resume continues runs of loop: supervised" in err
