"""examples/seeds/: one worked config per seed note (../shared/seeds), run as that user would.
Seed 004's is run by tests/test_multi_horizon.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import runlab

# each seed's worked example end to end (about 30 s together): with the slow tests
# (make test-slow), to keep the default suite within CI's budget
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "examples" / "seeds"


def _json(cli, *args: str) -> dict:
    code, out, err = cli(*args, "-f", "json")
    assert code == 0, err
    return json.loads(out)


def test_seed_000_hisso_allocation(cli, root: Path) -> None:
    out = _json(
        cli,
        "run",
        SEEDS / "000_hisso_allocation.yaml",
        "trainer.epochs=2",
        "episodic.episodes_per_epoch=256",
        "--keep-checkpoints",
        "--run-name",
        "wave_small",
        "-o",
        root,
    )
    record = runlab.RunRecord(out["run_dir"])
    m = record.metrics
    for key in (
        "train_loss",
        "val_loss",
        "best_epoch",
        "reward_mean",
        "reward_std",
        "episodes",
        "transition_penalty",
        "device",
        "duration_seconds",
        "throughput_eps_per_sec",
    ):
        assert m.get(key) is not None, key
    names = {p.name for p in (record.path / "checkpoints").iterdir()}
    assert {"warm_start.pt", "best.pt", "last.pt", "epoch_0001.pt", "epoch_0002.pt"} <= names
    assert len(m["warm_start"]["loss"]) == 2
    if not torch.cuda.is_available():  # fp16 needs CUDA: said, not silently ignored
        assert any("fp16 needs CUDA" in e["message"] for e in record.events("on_warning"))
    lrs = [r["lr"] for r in record.scalars() if r["split"] == "train"]
    assert lrs[0] != lrs[1]  # the cosine schedule moves


def test_seed_001_quick_signal_tune(cli, root: Path) -> None:
    summary = _json(
        cli,
        "tune",
        SEEDS / "001_quick_signal_tune.yaml",
        "trainer.epochs=2",
        "--trials",
        "2",
        "--in-process",
        "--seed",
        "0",
        "-o",
        root,
    )
    assert [t["state"] for t in summary["trials"]] == ["COMPLETE", "COMPLETE"]
    record = runlab.RunRecord(root / summary["trials"][0]["run_id"])
    steps = [r for r in record.steps() if "loss" in r]
    assert steps[-1]["step"] == 2 * 20  # limit_train_batches: 20 steps an epoch
    assert record.metrics["system"]["samples"] >= 1 and (record.path / "system.jsonl").exists()


def test_seed_002_hydra_project(tmp_path: Path) -> None:
    """From the project's folder, through the console script, without PYTHONPATH."""
    project = tmp_path / "002_hydra"
    shutil.copytree(SEEDS / "002_hydra", project)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RUNLAB_ROOT")}
    env["SCRATCH"] = str(tmp_path / "scratch")
    script = shutil.which("runlab", path=str(Path(sys.executable).parent))
    assert script is not None

    def runlab_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [script, *args], cwd=project, env=env, capture_output=True, text=True, timeout=300
        )

    done = runlab_cli(
        "run",
        "configs/phase1/experiment/compare_wide.yaml",
        "env=cluster",
        "trainer=short",
        "logging=plots_minimal",
        "-f",
        "json",
    )
    assert done.returncode == 0, done.stderr
    run_dir = Path(json.loads(done.stdout)["run_dir"])
    assert run_dir.parent == tmp_path / "scratch" / "runlab-runs"  # the env group's root
    record = runlab.RunRecord(run_dir)
    assert record.config["model"]["encoder"]["width"] == 64  # the experiment's change
    assert record.tags == {"env": "cluster", "experiment": "compare_wide"}
    assert sorted(p.name for p in (run_dir / "figures").iterdir()) == ["losses.png"]


def test_seed_003_pair_trading(cli, root: Path) -> None:
    cfg = SEEDS / "003_pair_trading.yaml"
    base = _json(cli, "run", cfg, "--tag", "pair=AAPL_AMZN", "--run-name", "base", "-o", root)
    started = _json(
        cli,
        "run",
        cfg,
        "--tag",
        "pair=AAPL_AMZN",
        "trainer.init_from=base:epoch_0002",
        "optim.lr=3e-4",
        "trainer.epochs=1",
        "-o",
        root,
    )
    info = runlab.RunRecord(started["run_dir"]).info
    assert info["init_from"]["run"] == base["run_id"] and info["tags"]["pair"] == "AAPL_AMZN"
    assert info["tags"]["strategy"] == "pairs"
    bt = _json(cli, "backtest", "base", "--checkpoint", "epoch_0002", "--root", root)
    assert bt["checkpoint"] == "epoch_0002"
    table = _json(cli, "report", root, "-w", 'tags.pair == "AAPL_AMZN"')
    (row,) = table
    assert row["checkpoint"] == "epoch_0002" and row["leverage_limit"] == 1.5
    assert row["borrowing_cost"] == 0.0675 and row["cost_bps"] == 1.0
