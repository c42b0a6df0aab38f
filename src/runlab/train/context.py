"""What the one place that trains a config hands a loop besides the config and the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoopContext:
    """What the one place that trains a config gives a loop besides the config and the run."""

    device: Any = None  # a torch.device
    seed: int = 42
    data: Any = None  # the dataset the preflight loaded, or None: the loop loads it
    resume: bool = False  # continue from checkpoints/last.pt
    callbacks: list[Any] = field(default_factory=list)  # cb(epoch, metrics) after each epoch
    baseline: Any = None  # a runlab.monitor.Baseline for the gates
    alerts: Any = None  # a runlab.monitor.Alerts
    init_from: Any = None  # trainer.init_from resolved (runlab.train.init_from), or None
    show_progress: bool = True
    progress_to_stderr: bool = False

    def init_weights(self, model: Any, run: Any = None) -> None:
        """``trainer.init_from``'s weights into a new run's ``model`` (not on resume); the
        run records where it started."""
        if self.init_from is None or self.resume:
            return
        from runlab.train.init_from import load_init_weights

        load_init_weights(model, self.init_from)
        if run is not None:
            run.update_info(init_from=self.init_from)
            run.event("on_init_from", **self.init_from)

    def record_data(self, run: Any, data: Any) -> None:
        """Which columns the run trains on (run.json's ``data``), and a warning event for
        each feature that looks like the future."""
        if run is None or not hasattr(data, "columns"):
            return
        columns = data.columns()
        run.update_info(data=columns)
        for message in columns["lookahead"]:
            run.event("on_warning", message=f"look-ahead: {message}")

    def dataset(self, cfg: dict[str, Any]) -> Any:
        """The config's dataset, loaded once."""
        if self.data is None:
            from runlab.train.data import load_dataset

            if not cfg["data"]["source"]:
                from runlab.config.validate import MISSING_SOURCE
                from runlab.errors import ConfigError

                raise ConfigError(MISSING_SOURCE)

            self.data = load_dataset(cfg["data"], cfg["task"], self.seed)
        return self.data
