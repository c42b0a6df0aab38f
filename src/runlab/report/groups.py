"""Runs grouped: by a config value, a tag, any name of the expression language, or by all the
config that differs but some keys (``all but seed``): each group's count, the mean and sample
standard deviation of every summary metric, and per epoch the mean and standard deviation of a
curve (the bands of ``runlab compare --group-by`` and the dashboard's compare page).

Values that are not finite numbers (a metric a run lacks, NaN) are left out of that metric's
statistics, and ``n`` says how many went in; a group of one has no standard deviation (None)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from runlab.errors import ConfigError
from runlab.report.compare import config_values, metric_values, order_metrics
from runlab.tracking.record import RunRecord

ALL_BUT = "all but "


@dataclass
class Group:
    key: dict[str, Any]  # the grouping values: {"config.model.name": "mlp"}
    runs: list[RunRecord] = field(default_factory=list)

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={_text(v)}" for k, v in self.key.items()) or "all runs"


def parse_spec(spec: str) -> tuple[str, list[str]]:
    """``all but seed,data.split`` -> ("all_but", keys); ``config.a,tags.b`` -> ("by", names)."""
    text = spec.strip()
    if text.lower().startswith(ALL_BUT) or text.lower() == "all":
        keys = [k.strip() for k in text[len(ALL_BUT) :].split(",")] if " " in text else []
        return "all_but", [k.removeprefix("config.") for k in keys if k]
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("--group-by: give names (config.model.name,tags.pair) or 'all but seed'")
    return "by", names


def group_runs(records: list[RunRecord], spec: str) -> list[Group]:
    """The runs in groups, in the order their first run comes."""
    how, names = parse_spec(spec)
    if how == "all_but":
        configs = [config_values(r) for r in records]
        keys = sorted({k for c in configs for k in c})
        differ = [k for k in keys if len({_text(c.get(k)) for c in configs}) > 1]
        kept = [k for k in differ if not any(k == n or k.startswith(n + ".") for n in names)]
        values = [{f"config.{k}": c.get(k) for k in kept} for c in configs]
    else:
        values = [{n: r.lookup(tuple(n.split("."))) for n in names} for r in records]
    groups: dict[str, Group] = {}
    for record, key in zip(records, values, strict=True):
        ident = repr([(k, _text(v)) for k, v in key.items()])
        groups.setdefault(ident, Group(key)).runs.append(record)
    return list(groups.values())


def stats(values: list[Any]) -> dict[str, Any]:
    """Mean, sample standard deviation, min, max and count of the finite numbers in ``values``."""
    xs = [float(v) for v in values if _number(v)]
    if not xs:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    mean = math.fsum(xs) / len(xs)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
    return {"n": len(xs), "mean": mean, "std": std, "min": min(xs), "max": max(xs)}


def summary(groups: list[Group], metrics: list[str] | None = None) -> dict[str, Any]:
    """Each group's label, key, run ids and, per metric, :func:`stats` over its runs."""
    per_run = {r.id: metric_values(r) for g in groups for r in g.runs}
    names = metrics or order_metrics({k for v in per_run.values() for k in v})
    return {
        "metrics": names,
        "groups": [
            {
                "label": g.label,
                "key": g.key,
                "runs": [r.id for r in g.runs],
                "count": len(g.runs),
                "stats": {m: stats([per_run[r.id].get(m) for r in g.runs]) for m in names},
            }
            for g in groups
        ],
    }


def curves(groups: list[Group], metric: str) -> list[dict[str, Any]]:
    """Per group, ``metric`` (``val.loss``: split ``val``, column ``loss``) per epoch: the
    epochs, and the mean, standard deviation and count over the group's runs at each."""
    split, _, column = metric.partition(".")
    if not column:
        raise ConfigError(f"--curve {metric!r}: name a split and a column, e.g. val.loss")
    out = []
    for group in groups:
        by_epoch: dict[int, list[Any]] = {}
        for record in group.runs:
            for row in record.scalars():
                if row.get("split") == split and row.get("epoch") is not None:
                    by_epoch.setdefault(int(row["epoch"]), []).append(row.get(column))
        epochs = sorted(by_epoch)
        points = [stats(by_epoch[e]) for e in epochs]
        out.append(
            {
                "label": group.label,
                "epoch": epochs,
                "mean": [p["mean"] for p in points],
                "std": [p["std"] for p in points],
                "n": [p["n"] for p in points],
            }
        )
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: Any) -> str:
    return "null" if value is None else str(value)
