"""runlab's own implementations against the contract suites of runlab.contracts, the same
suites a third party runs against its sink, launcher or loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runlab.contracts.launchers import LauncherContract
from runlab.contracts.loops import LoopContract
from runlab.contracts.sinks import SinkContract
from runlab.sinks.base import Sink
from runlab.sinks.mirror import build_sink
from runlab.sweep.launchers import BaseLauncher, make_launcher


class TestTensorBoardSink(SinkContract):
    def make_sink(self, tmp_path: Path) -> Sink:
        pytest.importorskip("tensorboard")
        return build_sink("tensorboard", {"log_dir": str(tmp_path / "tb")})


class TestMlflowSink(SinkContract):
    def make_sink(self, tmp_path: Path) -> Sink:
        pytest.importorskip("mlflow")
        return build_sink("mlflow", {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"})


class TestWandbSink(SinkContract):
    @pytest.fixture(autouse=True)
    def _offline(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("WANDB_SILENT", "true")
        monkeypatch.chdir(tmp_path)

    def make_sink(self, tmp_path: Path) -> Sink:
        pytest.importorskip("wandb")
        return build_sink("wandb", {"mode": "offline", "dir": str(tmp_path / "wb")})


class TestLocalLauncher(LauncherContract):
    def make_launcher(self, jobs: int) -> BaseLauncher:
        return make_launcher("local", {}, jobs=jobs)


@pytest.mark.slow
class TestRayLauncher(LauncherContract):
    def make_launcher(self, jobs: int) -> BaseLauncher:
        pytest.importorskip("ray")
        return make_launcher("ray", {"cpus_per_trial": 0.5}, jobs=jobs)


SMALL_DATA = {"source": "synthetic.regression", "n_samples": 256, "n_features": 4}


class TestSupervisedLoop(LoopContract):
    def config(self, tmp_path: Path) -> dict[str, Any]:
        return {
            "data": SMALL_DATA,
            "model": {"hidden": [8]},
            "trainer": {"epochs": 3, "batch_size": 64},
        }


class TestEpisodicLoop(LoopContract):
    epoch_metric = "val.reward"

    def config(self, tmp_path: Path) -> dict[str, Any]:
        return {
            "data": {"source": "synthetic.panel", "n_dates": 120, "n_assets": 4, "n_features": 3},
            "loop": "episodic",
            "model": {"hidden": [8]},
            "episodic": {"window": 8, "batch_episodes": 8, "episodes_per_epoch": 32},
            "trainer": {"epochs": 3},
        }
