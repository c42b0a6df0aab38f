"""Gates: success criteria declared in the config and evaluated at epoch ends.

::

    gates:
      - name: variance_restored
        at_epoch: 1
        require: "val.scale > 0.0"
        on_fail: stop          # stop | warn
      - name: no_divergence
        every_epoch: true
        require: "train.loss < 10"

``require`` is an expression (runlab.tracking.expr) over the epoch's metrics (``train.*``,
``val.*``), ``best.*`` (best value so far of a metric, ``best.epoch``), ``epoch`` and
``baseline.*`` (the baseline run's value at this epoch, else its final value).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runlab._imports import did_you_mean
from runlab.errors import ConfigError, ExpressionError
from runlab.evaluators import higher_is_better
from runlab.monitor.baseline import Baseline
from runlab.tracking.expr import Expression, parse

HEADS = ("train", "val", "best", "epoch", "baseline")


@dataclass(frozen=True)
class Gate:
    name: str
    require: Expression
    on_fail: str = "stop"
    at_epoch: int | None = None
    every_epoch: bool = False

    def due(self, epoch: int) -> bool:
        return self.every_epoch or epoch == self.at_epoch

    @property
    def uses_baseline(self) -> bool:
        return any(n[0] == "baseline" for n in self.require.names)


def gates_from_config(cfg: Mapping[str, Any]) -> list[Gate]:
    """The ``gates:`` block as Gates; a ConfigError names the gate and what is wrong."""
    gates: list[Gate] = []
    for i, g in enumerate(cfg.get("gates") or []):
        where = f"gates[{i}]" + (f" ({g['name']})" if g.get("name") else "")
        if not g.get("require"):
            raise ConfigError(f"{where} has no 'require': give an expression like 'val.ic > 0'")
        try:
            expr = parse(g["require"])
        except ExpressionError as err:
            raise ConfigError(f"{where} require: {err}") from err
        if g.get("at_epoch") is None and not g.get("every_epoch"):
            raise ConfigError(f"{where} needs 'at_epoch: N' or 'every_epoch: true'")
        if g.get("at_epoch") is not None and int(g["at_epoch"]) < 1:
            raise ConfigError(f"{where} at_epoch must be 1 or more (epochs count from 1)")
        name = str(g.get("name") or f"gate_{i}")
        if any(other.name == name for other in gates):
            raise ConfigError(f"{where}: two gates are named {name!r}; give each its own name")
        gates.append(
            Gate(
                name,
                expr,
                g.get("on_fail") or "stop",
                g.get("at_epoch"),
                bool(g.get("every_epoch")),
            )
        )
    return gates


def check_gates(
    gates: list[Gate], produced: set[str], baseline: Baseline | None, epochs: int
) -> None:
    """Preflight: every name a gate uses exists (a ConfigError now, not a crash at epoch 5)."""
    for gate in gates:
        where = f"gate {gate.name!r}"
        if gate.at_epoch is not None and gate.at_epoch > epochs:
            raise ConfigError(
                f"{where} is due at epoch {gate.at_epoch} but trainer.epochs is {epochs}: "
                "it would never be evaluated"
            )
        for path in sorted(gate.require.names):
            _check_name(where, path, produced, baseline)


def _check_name(
    where: str, path: tuple[str, ...], produced: set[str], baseline: Baseline | None
) -> None:
    head, key = path[0], ".".join(path[1:])
    full = ".".join(path)
    if head == "epoch" and not key:
        return
    if head in ("train", "val"):
        if full not in produced:
            raise ConfigError(
                f"{where} uses {full!r}, which this config does not produce"
                f"{did_you_mean(full, produced)}; available: {', '.join(sorted(produced))}"
            )
        return
    if head == "best":
        if key != "epoch" and key not in produced:
            raise ConfigError(
                f"{where} uses {full!r}: best.* takes a produced metric or best.epoch"
                f"{did_you_mean(key, produced)}; available: {', '.join(sorted(produced))}"
            )
        return
    if head == "baseline":
        if baseline is None:
            raise ConfigError(
                f"{where} uses {full!r} but no baseline is set: add 'baseline: RUN' to the "
                "config or pass --baseline RUN"
            )
        if key not in baseline.names():
            raise ConfigError(
                f"{where} uses {full!r} but baseline run {baseline.id} has no {key!r}"
                f"{did_you_mean(key, baseline.names())}"
            )
        return
    raise ConfigError(
        f"{where} uses {full!r}{did_you_mean(head, HEADS)}; a gate reads train.*, val.*, "
        "best.*, baseline.* and epoch"
    )


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class GateKeeper:
    """The epoch-end callback that evaluates the gates of a run.

    Each evaluation is an ``on_gate`` event; the summary's ``gates`` lists every gate's outcome
    (pending, passed, failed); a failed ``stop`` gate asks the run to stop (it ends
    ``stopped`` with last.pt saved)."""

    def __init__(
        self,
        gates: list[Gate],
        run: Any,
        baseline: Baseline | None = None,
        monitor: str = "val.loss",
        on_failure: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.gates, self.run, self.baseline = gates, run, baseline
        self.monitor, self.on_failure = monitor, on_failure
        self.best: dict[str, float] = {}
        self.best_epoch: int | None = None
        previous = {g.get("name"): g for g in run.summary.get("gates") or []}
        self.outcomes = {
            g.name: previous.get(g.name)
            or {
                "name": g.name,
                "require": g.require.text,
                "on_fail": g.on_fail,
                "status": "pending",
            }
            for g in gates
        }
        run.summary["gates"] = self._snapshot()

    def _snapshot(self) -> list[dict[str, Any]]:
        return [dict(o) for o in self.outcomes.values()]  # the heartbeat thread may write it

    def replay(self, history: list[dict[str, Any]]) -> None:
        """Rebuild best.* from earlier epochs (a resumed run): rows of scalars.csv."""
        by_epoch: dict[int, dict[str, dict[str, Any]]] = {}
        for row in history:
            split = by_epoch.setdefault(int(row["epoch"]), {}).setdefault(str(row["split"]), {})
            split.update({k: v for k, v in row.items() if k not in ("epoch", "split")})
        for epoch in sorted(by_epoch):
            self._track_best(epoch, by_epoch[epoch])

    def _track_best(self, epoch: int, metrics: Mapping[str, Mapping[str, Any]]) -> None:
        for split, values in metrics.items():
            for k, v in values.items():
                key = f"{split}.{k}"
                if not _finite(v):
                    continue
                old = self.best.get(key)
                better = old is None or (v > old if higher_is_better(key) else v < old)
                if better:
                    self.best[key] = float(v)
                    if key == self.monitor:
                        self.best_epoch = epoch

    def __call__(self, epoch: int, metrics: Mapping[str, Mapping[str, Any]]) -> None:
        self._track_best(epoch, metrics)
        due = [g for g in self.gates if g.due(epoch)]
        if not due:
            return

        def lookup(path: tuple[str, ...]) -> Any:
            head, rest = path[0], path[1:]
            if head == "epoch" and not rest:
                return epoch
            if head in ("train", "val") and rest:  # val.ret_h20.rank_ic: a key with a dot
                return metrics.get(head, {}).get(".".join(rest))
            if head == "best":
                key = ".".join(rest)
                return self.best_epoch if key == "epoch" else self.best.get(key)
            if head == "baseline" and self.baseline is not None:
                return self.baseline.value(rest, epoch)
            return None

        for gate in due:
            self._evaluate(gate, epoch, lookup)
        self.run.summary["gates"] = self._snapshot()

    def _evaluate(self, gate: Gate, epoch: int, lookup: Callable[[tuple[str, ...]], Any]) -> None:
        values = {".".join(n): lookup(n) for n in sorted(gate.require.names)}
        passed = bool(gate.require.evaluate(lookup))
        self.run.event(
            "on_gate",
            name=gate.name,
            epoch=epoch,
            expression=gate.require.text,
            values=values,
            passed=passed,
            on_fail=gate.on_fail,
        )
        outcome = self.outcomes[gate.name]
        if outcome["status"] != "failed":  # an every_epoch gate keeps its first failure
            outcome.update(status="passed" if passed else "failed", epoch=epoch, values=values)
        if passed:
            return
        if self.on_failure is not None:
            self.on_failure(dict(outcome))
        if gate.on_fail == "stop":
            self.run.request_stop(
                f"gate {gate.name!r} failed at epoch {epoch}: {gate.require.text}", by="gate"
            )
