"""RunlabCallback on a real Stable-Baselines3 PPO over runlab.rl.PortfolioEnv: one epoch per
rollout, its episode returns the same as SB3's own Monitor counts, its update statistics the
same as SB3's own CSV log says, the environment's info terms averaged, and the diagnostics."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor

import runlab
from runlab.integrations.sb3 import RunlabCallback
from runlab.rl.env import PortfolioEnv
from runlab.tracking.record import RunRecord


def test_rollouts_episodes_and_updates_match_sb3s_own_records(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    returns = rng.normal(3e-4, 0.01, (300, 3))
    env = Monitor(
        PortfolioEnv(returns, returns, window=5, episode_length=40, random_start=True,
                     transaction_cost_bps=5, leverage_limit=0.8, gross=1.5),
        str(tmp_path / "monitor"),
    )  # fmt: skip
    with runlab.start_run({"rl": "sb3"}, root=tmp_path / "runs", name="ppo") as run:
        model = PPO("MlpPolicy", env, n_steps=128, batch_size=64, n_epochs=2, seed=0,
                    device="cpu", target_kl=0.5)  # fmt: skip
        model.set_logger(configure(str(tmp_path / "sb3"), ["csv"]))
        model.learn(128 * 6, callback=RunlabCallback(run))
    record = RunRecord(run.dir)
    rows = [r for r in record.scalars() if r["split"] == "train"]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]
    # episodes: the callback's own count against SB3's Monitor (monitor.csv, 40 steps each)
    with open(tmp_path / "monitor.monitor.csv") as fh:
        fh.readline()
        monitored = [float(r["r"]) for r in csv.DictReader(fh)]
    ours = []
    for r in rows:
        if r.get("episodes"):
            ours += [r["episode_return"]] * int(r["episodes"])
    assert len(monitored) == 19 and sum(int(r.get("episodes") or 0) for r in rows) == 19
    assert sum(ours) == pytest.approx(sum(monitored), abs=1e-4)  # Monitor rounds to 6 places
    assert all(r["episode_length"] == 40 for r in rows if r.get("episodes"))
    # update statistics: against SB3's own progress.csv (one line per update)
    with open(tmp_path / "sb3" / "progress.csv") as fh:
        logged = [r for r in csv.DictReader(fh) if r.get("train/approx_kl")]
    assert len(logged) == 5  # SB3 dumps an update's line after the next rollout: 5 of 6
    for mine, theirs in zip(rows, logged, strict=False):
        assert mine["approx_kl"] == pytest.approx(float(theirs["train/approx_kl"]), rel=1e-6)
        assert mine["entropy"] == pytest.approx(-float(theirs["train/entropy_loss"]), rel=1e-6)
        assert mine["explained_variance"] == pytest.approx(
            float(theirs["train/explained_variance"]), rel=1e-5, abs=1e-6
        )
    assert all(r["info_leverage"] <= 0.8 + 1e-9 and r["info_turnover"] > 0 for r in rows)
    assert all(r["env_steps_per_s"] > 0 and r["learner_seconds"] > 0 for r in rows)
    assert rows[-1]["timesteps"] == 768


def test_diagnostics_warn(tmp_path: Path) -> None:
    returns = np.random.default_rng(1).normal(0, 0.01, (200, 2))
    env = PortfolioEnv(returns, window=5, leverage_limit=0.1, gross=3.0, transform="identity")
    with runlab.start_run({}, root=tmp_path / "runs", name="diag") as run:
        model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0,
                    device="cpu")  # fmt: skip
        model.learn(128, callback=RunlabCallback(run, entropy_floor=100.0))
    messages = [e["message"] for e in RunRecord(run.dir).events("on_warning")]
    assert any("entropy collapsed" in m for m in messages), messages
    assert any("pinned at the leverage limit" in m for m in messages), messages
    summary = json.loads((run.dir / "metrics.json").read_text())
    assert summary["last_epoch"] == 2
