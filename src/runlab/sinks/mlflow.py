"""MLflow: one MLflow run per runlab run, through ``MlflowClient`` (never the fluent API's global
active run, which a user's own ``mlflow.start_run`` would fight with). The config as params,
scalars in batches (``<split>/<metric>`` at step=epoch, ``step/<name>`` at the step), tags
(runlab tags, ``runlab.run_id``, ``runlab.status``), the summary's numbers as metrics, files as
artifacts. Options: tracking_uri (else ``MLFLOW_TRACKING_URI``, else MLflow's default),
experiment (else ``MLFLOW_EXPERIMENT_NAME``, else ``runlab``), artifact_location."""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from runlab._imports import require
from runlab.sinks.base import (
    EpochRecord,
    Final,
    Record,
    RunMeta,
    Sink,
    epoch_scalars,
    flat_numbers,
    flat_params,
    step_scalars,
)

MLFLOW_STATUS = {"finished": "FINISHED", "failed": "FAILED", "crashed": "FAILED"}  # else KILLED
BATCH = 1000  # MLflow's limit of metrics per log_batch
PARAM_BATCH = 100  # ... and of params
PARAM_VALUE_MAX = 6000
RUN_ID_TAG = "runlab.run_id"


# MLflow accepts names of letters, digits, _ - . space : / that do not resolve to another path
# (mlflow.utils.validation). Other characters are spelled out where a word exists, else "_".
SPELLED = {"@": "_at_", "%": "_pct_", "+": "_plus_", "=": "_eq_", "<": "_lt_", ">": "_gt_"}
NAME_MAX = 250


def mlflow_name(name: str) -> str:
    """The name MLflow stores for a metric, param or tag key ``name``: ``acc@5`` ->
    ``acc_at_5``, ``ndcg@10`` -> ``ndcg_at_10``, ``sharpe(ann)`` -> ``sharpe_ann_``; names
    MLflow accepts are unchanged. Not injective on its own: :class:`MlflowNames` keeps it so
    per run and records the mapping."""
    safe = re.sub(r"[^/\w.\- :]", lambda m: SPELLED.get(m.group(), "_"), name)
    if path_changes(safe):  # "a//b", "val/", "./x", "../x", "/x"
        safe = safe.replace("/", "_")
        safe = "_" + safe if safe.startswith(".") else safe
    return safe[:NAME_MAX] or "_"


def path_changes(name: str) -> bool:
    norm = posixpath.normpath(name)
    return norm != name or norm in (".", "..") or norm.startswith(("..", "/"))


class MlflowNames:
    """Names of one run as MLflow stores them, one to one: a mapped name that another name has
    already taken gets ``_2``, ``_3``, ... ``renamed`` (original -> MLflow name, only the
    names that changed) goes into mirrors.json, so that every renamed series can be found and
    mapped back."""

    def __init__(self, renamed: Mapping[str, str] | None = None) -> None:
        self._of: dict[str, str] = dict(renamed or {})
        self._taken = set(self._of.values())

    @property
    def renamed(self) -> dict[str, str]:
        return {k: v for k, v in self._of.items() if k != v}

    def __call__(self, name: str) -> str:
        if name in self._of:
            return self._of[name]
        base = candidate = mlflow_name(name)
        n = 1
        while candidate in self._taken:
            n += 1
            candidate = f"{base[: NAME_MAX - len(str(n)) - 1]}_{n}"
        self._of[name] = candidate
        self._taken.add(candidate)
        return candidate


def source_tags(meta: RunMeta) -> dict[str, str]:
    """The tags MLflow's own runs carry about where they came from (mlflow.utils.mlflow_tags),
    from the run's provenance, so that the MLflow UI links the run to its commit."""
    tags = {"mlflow.source.type": "LOCAL"}
    if meta.git_commit:
        tags["mlflow.source.git.commit"] = meta.git_commit
    if meta.user:
        tags["mlflow.user"] = meta.user
    if meta.source:
        tags["mlflow.source.name"] = meta.source
    return tags


def _renamed_before(meta: RunMeta, mlflow_run_id: str) -> dict[str, str]:
    """The names an earlier part of a resumed run mirrored under (mirrors.json)."""
    from runlab.sinks.mirror import read_mirrors

    for e in read_mirrors(meta.dir):
        renamed = e.get("renamed")
        if e.get("sink") == "mlflow" and e.get("id") == mlflow_run_id and isinstance(renamed, dict):
            return {str(k): str(v) for k, v in renamed.items()}
    return {}


def probe(uri: str, timeout: float = 5.0) -> None:
    """Fail in seconds, naming the address, when an http(s) tracking server cannot be reached
    (MLflow's own client would retry for minutes)."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as err:
        raise ConnectionError(f"cannot reach MLflow tracking server {uri}: {err}") from err


class MlflowSink(Sink):
    name = "mlflow"
    keeps_artifacts = True
    extra = "mlflow"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self._client: Any = None
        self._run_id: str | None = None
        self._names = MlflowNames()

    def tracking_uri(self) -> str | None:
        return self.options.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or None

    def experiment(self) -> str:
        name = self.options.get("experiment") or os.environ.get("MLFLOW_EXPERIMENT_NAME")
        return str(name or "runlab")

    def target(self, meta: RunMeta) -> str:
        return f"{self.tracking_uri() or 'default'}#{self.experiment()}"

    def _connect(self) -> Any:
        require("mlflow", self.extra, "the mlflow sink")
        from mlflow import MlflowClient

        uri = self.tracking_uri()
        if uri:
            probe(uri)
        client = MlflowClient(tracking_uri=uri)
        return client

    def _experiment_id(self, client: Any, create: bool) -> str | None:
        experiment = client.get_experiment_by_name(self.experiment())
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                client.restore_experiment(experiment.experiment_id)
            return str(experiment.experiment_id)
        if not create:
            return None
        location = self.options.get("artifact_location")
        return str(client.create_experiment(self.experiment(), artifact_location=location))

    def _find(self, client: Any, experiment_id: str, run_id: str) -> Any:
        runs = client.search_runs(
            [experiment_id], filter_string=f"tags.`{RUN_ID_TAG}` = '{run_id}'", max_results=10
        )
        return runs[0] if runs else None

    def open(self, meta: RunMeta) -> None:
        self._client = client = self._connect()
        experiment_id = self._experiment_id(client, create=True)
        assert experiment_id is not None
        existing = self._find(client, experiment_id, meta.id) if meta.resumed else None
        if existing is not None:  # --resume continues the same MLflow run, with its names
            self._run_id = existing.info.run_id
            self._names = MlflowNames(_renamed_before(meta, existing.info.run_id))
            client.update_run(self._run_id, status="RUNNING")
            return
        self._names = names = MlflowNames()
        tags = {names(str(k)): str(v) for k, v in meta.tags.items()}
        tags.update({RUN_ID_TAG: meta.id, "runlab.run_dir": str(meta.dir)})
        tags.update(source_tags(meta))
        if meta.parent:
            tags["runlab.parent"] = meta.parent
        if meta.notes:
            tags["mlflow.note.content"] = meta.notes  # the run's description in MLflow's UI
        run = client.create_run(experiment_id, run_name=meta.name, tags=tags)
        self._run_id = run.info.run_id
        from mlflow.entities import Param

        params = [
            Param(names(k), str(v)[:PARAM_VALUE_MAX]) for k, v in flat_params(meta.config).items()
        ]
        for i in range(0, len(params), PARAM_BATCH):
            client.log_batch(self._run_id, params=params[i : i + PARAM_BATCH])

    def write(self, records: Sequence[Record]) -> None:
        from mlflow.entities import Metric

        metrics = []
        for record in records:
            if isinstance(record, EpochRecord):
                values, step = epoch_scalars(record), record.epoch
            else:
                values, step = step_scalars(record), record.step
            stamp = int(record.time * 1000)
            metrics += [Metric(self._names(k), v, stamp, step) for k, v in values.items()]
        for i in range(0, len(metrics), BATCH):
            self._client.log_batch(self._run_id, metrics=metrics[i : i + BATCH])

    def close(self, final: Final) -> dict[str, Any]:
        from mlflow.entities import Metric, RunTag

        client, run_id = self._client, self._run_id
        stamp = int((final.ended or time.time()) * 1000)
        numbers = [
            Metric(self._names(k), v, stamp, 0) for k, v in flat_numbers(final.summary).items()
        ]
        tags = [RunTag("runlab.status", final.status)]
        if final.summary.get("stop_reason"):
            tags.append(RunTag("runlab.stop_reason", str(final.summary["stop_reason"])[:5000]))
        for i in range(0, max(len(numbers), 1), BATCH):
            client.log_batch(run_id, metrics=numbers[i : i + BATCH], tags=tags if i == 0 else [])
        for path, folder in self.artifacts(final):
            client.log_artifact(run_id, str(path), artifact_path=folder or None)
        client.set_terminated(run_id, status=MLFLOW_STATUS.get(final.status, "KILLED"))
        info = client.get_run(run_id).info
        self._client = self._run_id = None
        details: dict[str, Any] = {"id": run_id, "experiment_id": info.experiment_id}
        if self._names.renamed:  # names MLflow refuses, and what they are stored as
            details["renamed"] = self._names.renamed
        return details

    def abort(self) -> None:
        if self._client is not None and self._run_id is not None:
            with contextlib.suppress(Exception):  # already failing: the warning names the cause
                self._client.set_terminated(self._run_id, status="FAILED")
        self._client = self._run_id = None

    # ------------------------------------------------------------------ sync
    def exists(self, meta: RunMeta, entry: Mapping[str, Any]) -> bool:
        client = self._connect()
        experiment_id = self._experiment_id(client, create=False)
        if experiment_id is None:
            return False
        run = self._find(client, experiment_id, meta.id)
        return run is not None and run.info.run_id == entry.get("id")

    def discard(self, meta: RunMeta) -> None:
        client = self._connect()
        experiment_id = self._experiment_id(client, create=False)
        if experiment_id is None:
            return
        while (run := self._find(client, experiment_id, meta.id)) is not None:
            client.delete_run(run.info.run_id)
