"""What every training loop promises (see :class:`runlab.train.loops.Loop`), run through
:func:`runlab.train.session.train_config`, the one place that trains a config: it trains and
records epochs; it honours a stop request at the next epoch boundary (the run ends
``stopped``, its checkpoint saved); a resumable loop's ``last.pt`` round-trips, and resuming
continues from it to the same end as an uninterrupted run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runlab.config import resolve
from runlab.tracking.record import RunRecord
from runlab.train.loops import LoopContext, get_loop
from runlab.train.session import open_run, train_config


class LoopContract:
    """Subclass and implement :meth:`config`: a config for your loop that trains 3 epochs in
    seconds. ``epoch_metric`` names a metric each epoch records (scalars.csv ``split.name``)."""

    epoch_metric = "val.loss"

    def config(self, tmp_path: Path) -> dict[str, Any]:
        raise NotImplementedError

    def _train(self, tmp_path: Path, cfg: dict[str, Any], resume_dir: Path | None = None) -> Any:
        where: dict[str, Any] = (
            {"resume_dir": resume_dir} if resume_dir else {"root": tmp_path / "runs"}
        )
        run, alerts = open_run(
            cfg, name="contract", capture_stdout=False, handle_signals=False, **where
        )
        context = LoopContext(
            device=_cpu(), seed=7, show_progress=False, resume=resume_dir is not None
        )
        return train_config(cfg, run, context, alerts)

    def _cfg(self, tmp_path: Path, epochs: int) -> dict[str, Any]:
        cfg = resolve(self.config(tmp_path))
        cfg["trainer"]["epochs"] = epochs
        return cfg

    def test_trains_and_records_epochs(self, tmp_path: Path) -> None:
        outcome = self._train(tmp_path, self._cfg(tmp_path, 2))
        assert outcome.status == "finished", outcome.message
        rows = RunRecord(outcome.run.dir).scalars()
        split, _, name = self.epoch_metric.partition(".")
        epochs = sorted({int(r["epoch"]) for r in rows if r["split"] == split and name in r})
        assert len(epochs) == 2, rows

    def test_honours_a_stop_request(self, tmp_path: Path) -> None:
        cfg = self._cfg(tmp_path, 5)
        seen: list[int] = []

        def stop_after_first(epoch: int, metrics: dict[str, Any]) -> None:
            seen.append(epoch)
            if len(seen) == 1:
                outcome_run[0].request_stop("contract: stop after the first epoch")

        outcome_run: list[Any] = []
        run, alerts = open_run(
            cfg, root=tmp_path / "runs", name="stop", capture_stdout=False, handle_signals=False
        )
        outcome_run.append(run)
        ctx = LoopContext(device=_cpu(), seed=7, show_progress=False, callbacks=[stop_after_first])
        outcome = train_config(cfg, run, ctx, alerts)
        assert outcome.status == "stopped", (outcome.status, outcome.message)
        assert len(seen) == 1, f"the loop went on for epochs {seen} after the stop request"
        assert (run.dir / "checkpoints" / "last.pt").exists(), "stopped without last.pt"

    def test_resume_reaches_the_same_end(self, tmp_path: Path) -> None:
        if not get_loop(self._cfg(tmp_path, 3)["loop"]).resumable:
            return  # a loop that does not resume promises nothing here
        straight = self._train(tmp_path / "a", self._cfg(tmp_path, 3))
        first = self._train(tmp_path / "b", self._cfg(tmp_path, 2))
        assert first.status == "finished"
        resumed = self._train(tmp_path / "b", self._cfg(tmp_path, 3), resume_dir=first.run.dir)
        assert resumed.status == "finished", resumed.message
        a = RunRecord(straight.run.dir).metrics
        b = RunRecord(resumed.run.dir).metrics
        assert b["last_epoch"] == a["last_epoch"]
        assert abs(float(b["val_loss"]) - float(a["val_loss"])) <= 1e-6 * max(
            1.0, abs(float(a["val_loss"]))
        )


def _cpu() -> Any:
    import torch

    return torch.device("cpu")
