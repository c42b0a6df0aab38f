"""loop: ppo end to end on CPU: a short PPO run on a 3-asset panel with a planted signal beats a
random policy's validation Sharpe (both backtested by runlab.finance.backtest), records every
rollout and every epoch, keeps best/last checkpoints without pickles, stops at a gate, and a
run preempted by SIGTERM resumes to the same number of steps."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

REPO = Path(__file__).resolve().parents[1]
CONFIG = """
data: {source: synthetic.panel, n_dates: 600, n_assets: 3, n_features: 2, noise: 0.05}
task: regression
loop: ppo
rl: {steps_per_epoch: 1024, n_steps: 256, batch_size: 128, n_epochs: 8, learning_rate: 1.0e-3,
     window: 1, episode_length: 64, transform: tanh, hidden: [32]}
trainer: {epochs: 2}
portfolio: {transaction_cost_bps: 1.0, leverage_limit: 1.0, borrowing_cost: 0.0675}
"""


def _run(tmp_path: Path, *args: str, text: str = CONFIG) -> Any:
    config = tmp_path / "ppo.yaml"
    config.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "runlab", "run", str(config), "-o", str(tmp_path / "runs"),
         "-f", "json", *args],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


COSTS = {"transaction_cost_bps": 1.0, "leverage_limit": 1.0, "borrowing_cost": 0.0675}


def _random_policy_sharpe() -> float:
    """The validation Sharpe of uniformly random actions, backtested the same way (mean of 5)."""
    import tempfile

    from runlab.config import load_config
    from runlab.finance.backtest import backtest
    from runlab.rl.env import PortfolioEnv
    from runlab.rl.ppo import _split
    from runlab.train.data import load_dataset

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ppo.yaml"
        path.write_text(CONFIG)
        cfg = dict(load_config(str(path), []))
    returns, features = _split(load_dataset(cfg["data"], cfg["task"], 42), "val")
    sharpes = []
    for seed in range(5):
        env = PortfolioEnv(returns, features, window=1, transform="tanh", **COSTS)
        env.reset(seed=seed)
        env.action_space.seed(seed)
        targets, done = [], False
        while not done:
            action = env.action_space.sample()
            targets.append(env.target(action))
            done = env.step(action)[2]
        result = backtest(np.array(targets), returns[1 : 1 + len(targets)], **COSTS)
        sharpes.append(result.metrics()["sharpe"])
    return float(np.mean(sharpes))


def test_a_short_ppo_run_learns_the_planted_signal(tmp_path: Path) -> None:
    done = _run(tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    run = Path(json.loads(done.stdout.strip().splitlines()[-1])["run_dir"])
    metrics = json.loads((run / "metrics.json").read_text())
    random_sharpe = _random_policy_sharpe()
    assert metrics["val"]["sharpe"] > random_sharpe + 3, (metrics["val"], random_sharpe)
    assert metrics["test"]["sharpe"] > random_sharpe + 3
    assert metrics["timesteps"] == 2048 and metrics["monitor"] == "val.reward"
    rows = [json.loads(x) for x in (run / "steps.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [256 * k for k in range(1, 9)]  # one per rollout
    assert all("approx_kl" in r and "episode_return" in r for r in rows[1:])
    import csv

    with open(run / "scalars.csv") as fh:
        epochs = list(csv.DictReader(fh))
    assert {(r["epoch"], r["split"]) for r in epochs} == {
        ("1", "train"), ("1", "val"), ("2", "train"), ("2", "val"),
    }  # fmt: skip
    # runlab backtest of the run: its best checkpoint again, the same numbers as its test
    again = subprocess.run(
        [sys.executable, "-m", "runlab", "backtest", str(run), "--split", "test", "-f", "json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    bt = json.loads(again.stdout)
    assert bt["sharpe"] == pytest.approx(metrics["test"]["sharpe"], rel=1e-9)
    assert 1 + bt["cumulative_return"] == pytest.approx(metrics["test"]["final_value"], rel=1e-9)
    assert (run / "artifacts" / "backtest" / "test").is_dir()
    costly = subprocess.run(
        [sys.executable, "-m", "runlab", "backtest", str(run), "--split", "test", "-f", "json",
         "--transaction-cost-bps", "50"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert json.loads(costly.stdout)["sharpe"] < bt["sharpe"]  # the override applies
    report = subprocess.run(
        [sys.executable, "-m", "runlab", "report", str(run.parent), "-f", "json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    (row,) = [r for r in json.loads(report.stdout) if r["id"] == run.name]
    assert row["sharpe"] == pytest.approx(json.loads(costly.stdout)["sharpe"])  # the latest
    import torch

    for name in ("best.pt", "last.pt"):  # plain tensors: loads with weights_only
        ckpt = torch.load(run / "checkpoints" / name, weights_only=True)
        assert ckpt["timesteps"] in (1024, 2048) and "model" in ckpt


def test_a_gate_stops_a_ppo_run(tmp_path: Path) -> None:
    gated = (
        CONFIG
        + "gates:\n  - {name: sky, at_epoch: 1, require: 'val.sharpe > 1000', on_fail: stop}\n"
    )
    done = _run(tmp_path, text=gated)
    assert done.returncode == 0, done.stderr[-2000:]
    run = Path(json.loads(done.stdout.strip().splitlines()[-1])["run_dir"])
    assert json.loads((run / "run.json").read_text())["status"] == "stopped"
    assert json.loads((run / "metrics.json").read_text())["last_epoch"] == 1


def test_rl_diagnostics_become_warnings(tmp_path: Path) -> None:
    done = _run(tmp_path, "rl.entropy_floor=100", "trainer.epochs=1")
    assert done.returncode == 0, done.stderr[-2000:]
    run = Path(json.loads(done.stdout.strip().splitlines()[-1])["run_dir"])
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    warned = [e["message"] for e in events if e.get("code") == "rl_diagnostic"]
    assert len(warned) == 4 and all("entropy collapsed" in m for m in warned)  # each rollout


def test_sigterm_then_resume_reaches_the_same_steps(tmp_path: Path) -> None:
    longer = CONFIG.replace("trainer: {epochs: 2}", "trainer: {epochs: 4}")
    config = tmp_path / "ppo.yaml"
    config.write_text(longer)
    root = tmp_path / "runs"
    child = subprocess.Popen(
        [sys.executable, "-m", "runlab", "run", str(config), "-o", str(root), "-f", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline:
        found = list(root.glob("*/scalars.csv"))
        if found and "\n2,val" in found[0].read_text():
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    child.wait(timeout=120)
    (run,) = [p.parent for p in root.glob("*/run.json")]
    assert json.loads((run / "run.json").read_text())["status"] == "preempted"
    done = subprocess.run(
        [sys.executable, "-m", "runlab", "run", "--resume", str(run), "-f", "json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert metrics["last_epoch"] == 4 and metrics["timesteps"] >= 4096
