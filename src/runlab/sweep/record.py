"""``<root>/sweeps/<id>/sweep.json``: what a sweep runs and what became of each combination."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runlab._ids import make_run_id
from runlab.errors import RunNotFoundError
from runlab.tracking._io import atomic_write_json, read_json, remove_stale_tmp


class SweepRecord:
    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path, self.data = path, data

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @classmethod
    def create(
        cls,
        root: Path,
        name: str,
        config: str,
        base: list[str],
        combinations: list[list[str]],
        varying: list[str],
        objective: str,
        direction: str,
    ) -> SweepRecord:
        sweep_id = make_run_id(name)
        folder = root / "sweeps" / sweep_id
        folder.mkdir(parents=True)
        data = {
            "id": sweep_id,
            "name": name,
            "config": config,
            "overrides": base,
            "varying": varying,
            "objective": objective,
            "direction": direction,
            "created": datetime.now(timezone.utc).isoformat(),
            "combinations": [
                {"index": i, "overrides": c, "run_id": None, "status": "pending", "attempts": []}
                for i, c in enumerate(combinations)
            ],
        }
        record = cls(folder / "sweep.json", data)
        record.save()
        return record

    @classmethod
    def load(cls, root: Path, ref: str) -> SweepRecord:
        folder = root / "sweeps"
        hits = (
            sorted(p for p in folder.glob("*/sweep.json") if p.parent.name.startswith(ref))
            if folder.is_dir()
            else []
        )
        if not hits:
            hits = (
                [p for p in folder.glob("*/sweep.json") if read_json(p).get("name") == ref]
                if folder.is_dir()
                else []
            )
        if not hits:
            raise RunNotFoundError(f"no sweep {ref!r} under {folder}")
        remove_stale_tmp(hits[-1].parent)  # a killed sweep's half-written sweep.json
        return cls(hits[-1], read_json(hits[-1]))

    def save(self) -> None:
        atomic_write_json(self.path, self.data)

    def record_result(self, index: int, run_id: str | None, status: str) -> None:
        combo = self.data["combinations"][index]
        if run_id:
            combo["attempts"].append(run_id)
        combo["run_id"], combo["status"] = run_id, status
        self.save()

    def unfinished(self) -> list[dict[str, Any]]:
        return [c for c in self.data["combinations"] if c["status"] != "finished"]
