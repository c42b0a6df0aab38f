"""RunlabLogger: a real Lightning Trainer writes a runlab run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runlab.tracking.record import RunRecord

L = pytest.importorskip("lightning")
torch = pytest.importorskip("torch")

from runlab.integrations.lightning import RunlabLogger, split_metric  # noqa: E402


class Regressor(L.LightningModule):  # type: ignore[misc]
    def __init__(
        self,
        hidden: int = 8,
        lr: float = 0.05,
        api_key: str = "s3cret",
        fail_at: int = -1,
        interrupt_at: int = -1,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )

    def _loss(self, batch: Any) -> Any:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def training_step(self, batch: Any, i: int) -> Any:
        if self.global_step == self.hparams.fail_at:
            raise RuntimeError("diverged")
        if self.global_step == self.hparams.interrupt_at:
            raise KeyboardInterrupt
        loss = self._loss(batch)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, i: int) -> None:
        self.log("val_loss", self._loss(batch))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loaders() -> tuple[Any, Any]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=gen)
    y = x.sum(dim=1, keepdim=True)
    data = torch.utils.data.TensorDataset(x, y)
    train = torch.utils.data.DataLoader(data, batch_size=32)
    val = torch.utils.data.DataLoader(data, batch_size=128)
    return train, val


def trainer(logger: RunlabLogger, epochs: int = 3) -> Any:
    return L.Trainer(
        max_epochs=epochs,
        logger=logger,
        log_every_n_steps=2,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        callbacks=[L.pytorch.callbacks.ModelCheckpoint(monitor="val_loss", save_last=True)],
    )


def test_lightning_fit_writes_a_run_directory(tmp_path: Path) -> None:
    logger = RunlabLogger(
        root=tmp_path / "runs", name="lit", tags={"fw": "lightning"}, sinks=["tensorboard"]
    )
    train, val = loaders()
    trainer(logger).fit(Regressor(), train, val)
    run = RunRecord(logger.experiment.dir)
    assert run.state.value == "finished" and run.name == "lit" and run.tags == {"fw": "lightning"}
    assert run.config["hidden"] == 8 and run.config["api_key"] == "***"
    rows = run.scalars()
    assert sorted({(r["epoch"], r["split"]) for r in rows}) == [
        (e, s) for e in range(3) for s in ("train", "val")
    ]
    val_losses = [r["loss"] for r in rows if r["split"] == "val"]
    assert val_losses[-1] < val_losses[0]  # it trained
    steps = run.steps()
    assert [s["step"] for s in steps if "train_loss_step" in s][:3] == [1, 3, 5]
    # checkpoints went to the run's own folder, and their paths are recorded
    metrics = run.metrics
    assert Path(metrics["best_checkpoint"]).parent == run.path / "checkpoints"
    assert Path(metrics["best_checkpoint"]).is_file() and Path(metrics["last_checkpoint"]).is_file()
    assert metrics["best_score"] == pytest.approx(min(val_losses), rel=1e-5)
    assert run.events("on_checkpoint")
    # the mirror ran like any runlab run's
    from tests.sink_helpers import tensorboard_scalars

    assert len(tensorboard_scalars(run.path / "tensorboard")["val/loss"]) == 3


def test_lightning_exception_ends_the_run_failed(tmp_path: Path) -> None:
    logger = RunlabLogger(root=tmp_path / "runs")
    train, val = loaders()
    with pytest.raises(RuntimeError, match="diverged"):
        trainer(logger).fit(Regressor(fail_at=12), train, val)
    run = RunRecord(logger.experiment.dir)
    assert run.state.value == "failed"
    assert "RuntimeError: diverged" in run.metrics["error"]["traceback"]
    assert [r["epoch"] for r in run.scalars() if r["split"] == "val"] == [0]  # epoch 1 unfinished


def test_lightning_ctrl_c_ends_the_run_stopped(tmp_path: Path) -> None:
    import signal

    handler = signal.getsignal(signal.SIGINT)
    logger = RunlabLogger(root=tmp_path / "runs")
    train, val = loaders()
    try:
        with pytest.raises(SystemExit):  # Lightning's graceful shutdown ends with sys.exit(1)
            trainer(logger).fit(Regressor(interrupt_at=3), train, val)
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores SIGINT from then on
    assert RunRecord(logger.experiment.dir).state.value == "stopped"


class WithTest(Regressor):
    def test_step(self, batch: Any, i: int) -> None:
        if self.hparams.fail_at == -2:
            raise RuntimeError("test broke")
        self.log("test_loss", self._loss(batch))
        self.log("mae", (self.net(batch[0]) - batch[1]).abs().mean())  # no split prefix


def test_test_after_fit_adds_to_the_run(tmp_path: Path) -> None:
    """trainer.test after an early-stopped fit: the fit's record stays (it was overwritten:
    a 0.1 s duration for 13 s of training, the wrong last epoch, the early stop gone) and the
    test's metrics are added to it."""
    import json
    import time

    logger = RunlabLogger(root=tmp_path / "runs")
    train, val = loaders()
    stop = L.pytorch.callbacks.EarlyStopping(monitor="val_loss", patience=1, min_delta=100.0)
    lit = trainer(logger, epochs=20)
    lit.callbacks.append(stop)
    model = WithTest()
    t0 = time.perf_counter()
    lit.fit(model, train, val)
    fit_seconds = time.perf_counter() - t0
    run_dir = logger.experiment.dir
    after_fit = RunRecord(run_dir)
    assert after_fit.metrics["stopped_early"] is True and stop.stopped_epoch == 1
    time.sleep(0.5)
    lit.test(model, val)
    run = RunRecord(run_dir)
    assert run.state.value == "finished" and run.info["started"] == after_fit.info["started"]
    assert run.metrics["last_epoch"] == after_fit.metrics["last_epoch"] == 1
    assert run.metrics["stopped_early"] is True
    assert [e["epoch"] for e in run.events("on_early_stop")] == [1]
    # the test phase's time is added to the fit's, which a clock around fit bounds
    fit_duration = after_fit.info["duration_seconds"]
    assert 0.3 * fit_seconds < fit_duration <= fit_seconds
    assert fit_duration < run.info["duration_seconds"] < fit_duration + 0.5
    assert run.metrics["duration_seconds"] == run.info["duration_seconds"]
    rows = [(r["epoch"], r["split"]) for r in run.scalars()]
    assert rows == [(0, "val"), (0, "train"), (1, "val"), (1, "train"), (1, "test")]
    test_row = next(r for r in run.scalars() if r["split"] == "test")
    assert run.metrics["test_loss"] == test_row["loss"] and test_row["mae"] > 0
    assert len(list((tmp_path / "runs").glob("*/run.json"))) == 1
    ends = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [e["status"] for e in ends if e["event"] == "on_train_end"] == ["finished"] * 2


def test_a_test_phase_keeps_a_stopped_fit_stopped_and_a_failing_one_fails(
    tmp_path: Path,
) -> None:
    import signal

    handler = signal.getsignal(signal.SIGINT)
    logger = RunlabLogger(root=tmp_path / "runs")
    train, val = loaders()
    try:
        with pytest.raises(SystemExit):
            trainer(logger).fit(WithTest(interrupt_at=3), train, val)
    finally:
        signal.signal(signal.SIGINT, handler)
    trainer(logger).test(WithTest(), val)
    run = RunRecord(logger.experiment.dir)
    assert run.state.value == "stopped" and "test_loss" in run.metrics
    with pytest.raises(RuntimeError, match="test broke"):
        trainer(logger).test(WithTest(fail_at=-2), val)
    run = RunRecord(logger.experiment.dir)
    assert run.state.value == "failed" and "test broke" in run.metrics["error"]["message"]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("val_loss", ("val", "loss")),
        ("train/acc_epoch", ("train", "acc")),
        ("validation_f1", ("val", "f1")),
        ("loss_step", None),
        ("lr-Adam", ("train", "lr-Adam")),
    ],
)
def test_split_metric(key: str, expected: Any) -> None:
    assert split_metric(key) == expected
