"""Weights & Biases: one W&B run per runlab run, with the runlab run id as the W&B run id (so a
resumed or re-synced run is the same W&B run). Epoch scalars are plotted against ``epoch`` and
step scalars against ``step`` (``define_metric``), the summary and status go to the W&B
summary, the files to a ``runlab-run`` artifact. Options: project, entity, group, tags, mode
(online|offline|disabled), run_name, dir; ``WANDB_MODE``, ``WANDB_PROJECT``, ``WANDB_DIR`` and
the rest of W&B's environment are honoured where an option is not set."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runlab._imports import require
from runlab.sinks.base import (
    EpochRecord,
    Final,
    Record,
    RunMeta,
    Sink,
    epoch_scalars,
    step_scalars,
    tag_list,
)

EXIT_CODE = {"finished": 0, "stopped": 0, "pruned": 0}


def wandb_id(run_id: str) -> str:
    """W&B run ids allow letters, digits, ``-`` and ``_``."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", run_id)[:64]


class WandbSink(Sink):
    name = "wandb"
    keeps_artifacts = True
    extra = "wandb"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self._run: Any = None
        self._splits: set[str] = set()

    # ------------------------------------------------------------------ where
    def mode(self) -> str:
        return str(self.options.get("mode") or os.environ.get("WANDB_MODE") or "online")

    def project(self) -> str:
        return str(self.options.get("project") or os.environ.get("WANDB_PROJECT") or "runlab")

    def root_dir(self) -> Path:
        """The folder holding W&B's ``wandb/`` directory (``dir`` option, ``WANDB_DIR``, cwd)."""
        return Path(self.options.get("dir") or os.environ.get("WANDB_DIR") or ".").resolve()

    def target(self, meta: RunMeta) -> str:
        entity = self.options.get("entity") or os.environ.get("WANDB_ENTITY") or ""
        where = f"{entity}/{self.project()}" if entity else self.project()
        if self.mode() == "offline":
            return f"offline:{self.root_dir()}:{where}"
        return f"{self.mode()}:{where}"

    # ------------------------------------------------------------------ mirror
    def open(self, meta: RunMeta) -> None:
        wandb = require("wandb", self.extra, "the wandb sink")
        tags = [*tag_list(meta.tags), *(self.options.get("tags") or [])]
        root = self.root_dir()
        root.mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(
            project=self.project(),
            entity=self.options.get("entity") or None,
            group=self.options.get("group") or meta.parent or None,
            tags=[str(t)[:64] for t in tags] or None,
            name=self.options.get("run_name") or meta.name,
            notes=meta.notes or None,
            id=wandb_id(meta.id),
            config=meta.config,
            dir=str(root),
            mode=self.mode(),
            resume="allow" if meta.resumed else None,
            reinit="create_new",
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True),
        )
        self._run.define_metric("step")
        self._run.define_metric("step/*", step_metric="step")
        self._run.define_metric("epoch")
        self._run.define_metric("epoch/*", step_metric="epoch")
        self._run.summary["runlab/run_id"] = meta.id
        self._run.summary["runlab/run_dir"] = str(meta.dir)

    def write(self, records: Sequence[Record]) -> None:
        for record in records:
            if isinstance(record, EpochRecord):
                for split in record.metrics.keys() - self._splits:
                    self._run.define_metric(f"{split}/*", step_metric="epoch")
                    self._splits.add(split)
                self._run.log({"epoch": record.epoch, **epoch_scalars(record)})
            else:
                self._run.log({"step": record.step, **step_scalars(record)})

    def close(self, final: Final) -> dict[str, Any]:
        wandb = require("wandb", self.extra, "the wandb sink")
        run = self._run
        run.summary.update({k: v for k, v in final.summary.items() if k != "error"})
        run.summary["runlab/status"] = final.status
        files = self.artifacts(final)
        if files:
            artifact = wandb.Artifact(f"run-{wandb_id(run.id)}", type="runlab-run")
            for path, folder in files:
                artifact.add_file(str(path), name=f"{folder}/{path.name}" if folder else path.name)
            run.log_artifact(artifact)
        entry = {"id": run.id, "project": self.project(), "dir": str(Path(run.dir).parent)}
        if self.mode() == "online":
            entry["url"] = run.url
        run.finish(exit_code=EXIT_CODE.get(final.status, 1))
        self._run = None
        return entry

    def abort(self) -> None:
        if self._run is not None:
            with contextlib.suppress(Exception):  # already failing: the warning names the cause
                self._run.finish(exit_code=1, quiet=True)
            self._run = None

    # ------------------------------------------------------------------ sync
    def _offline_dirs(self, meta: RunMeta) -> list[Path]:
        return sorted((self.root_dir() / "wandb").glob(f"offline-run-*-{wandb_id(meta.id)}"))

    def _online_run(self, meta: RunMeta) -> Any:
        wandb = require("wandb", self.extra, "the wandb sink")
        entity = self.options.get("entity") or os.environ.get("WANDB_ENTITY")
        path = f"{entity}/{self.project()}" if entity else self.project()
        try:
            return wandb.Api().run(f"{path}/{wandb_id(meta.id)}")
        except Exception:  # wandb.errors.CommError: no such run
            return None

    def exists(self, meta: RunMeta, entry: Mapping[str, Any]) -> bool:
        if self.mode() == "offline":
            return bool(self._offline_dirs(meta))
        return self.mode() == "disabled" or self._online_run(meta) is not None

    def discard(self, meta: RunMeta) -> None:
        if self.mode() == "offline":
            for path in self._offline_dirs(meta):
                shutil.rmtree(path)
        elif self.mode() == "online":
            run = self._online_run(meta)
            if run is not None:
                run.delete()
