"""Load a trained model back from its run directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from runlab.errors import RunlabError
from runlab.train.data import apply_scaler
from runlab.train.models import build_model


class LoadedModel(NamedTuple):
    """The model with its best weights, the input scaler fitted on train, and the config."""

    model: torch.nn.Module
    scaler: dict[str, Any]
    config: dict[str, Any]
    target_shape: tuple[int, ...] | None = None  # one row's target: () scalar, (k,) outputs
    feature_names: list[str] | None = None  # the inputs, in the order trained on

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Scale raw inputs as in training and return the model's outputs as NumPy."""
        device = next(self.model.parameters()).device
        scaled = torch.as_tensor(
            apply_scaler(self.scaler, np.asarray(x, dtype=np.float32)), device=device
        )
        self.model.eval()
        with torch.no_grad():
            out = self.model(scaled).float()
        scalar_target = self.target_shape is None or self.target_shape == ()
        if self.config.get("task") != "classification" and scalar_target and out.shape[-1] == 1:
            out = out.squeeze(-1)
        return out.cpu().numpy()  # type: ignore[no-any-return]


def snapshot(
    run_dir: Path, run_id: str, given: str | None, what: str, doing: str = "using"
) -> tuple[str, str | None]:
    """The checkpoint ``given`` names in a run (``best``, ``last``, ``warm_start``,
    ``epoch_0005``, or a number: that epoch), as a file stem, and a note when it is not the one
    asked for: without ``given``, ``best``, or ``last`` when the run has no best.pt (its
    monitor was never finite). ConfigError, prefixed ``what``, listing the ones it has."""
    from runlab.errors import ConfigError

    folder = run_dir / "checkpoints"
    if given is None:
        if (folder / "best.pt").exists() or not (folder / "last.pt").exists():
            return "best", None
        return "last", (
            f"run {run_id} has no best.pt (its monitor was never finite): {doing} last.pt"
        )
    name = f"epoch_{int(given):04d}" if given.isdigit() else given.removesuffix(".pt")
    if not (folder / f"{name}.pt").is_file():
        have = sorted(p.stem for p in folder.glob("*.pt") if not p.name.startswith("."))
        raise ConfigError(
            f"{what} {given!r}: run {run_id} has no checkpoints/{name}.pt; it has "
            f"{', '.join(have) or 'none'}"
        )
    return name, None


def load_model(
    run: str | os.PathLike[str],
    which: str = "best",
    map_location: str | torch.device = "cpu",
    root: str | None = None,
) -> LoadedModel:
    """``runlab.load_model(run)``: ``run`` is a run directory, id, prefix or name."""
    from runlab.tracking.resolve import resolve_run
    from runlab.tracking.roots import runs_root

    record = resolve_run(str(run), runs_root(root or None))
    path = record.path / "checkpoints" / f"{which}.pt"
    if not path.exists():
        raise RunlabError(f"run {record.id} has no checkpoints/{which}.pt")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    model = build_model(ckpt["model_spec"])
    model.load_state_dict(ckpt["model"])
    model.to(map_location).eval()
    shape = ckpt.get("target_shape")
    return LoadedModel(
        model,
        ckpt["data_scaler"],
        ckpt["config"],
        tuple(shape) if shape is not None else None,
        ckpt.get("feature_names"),
    )
