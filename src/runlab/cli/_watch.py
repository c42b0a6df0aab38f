"""``runlab watch``: a live terminal view of runs, drawn from their files only, so it works on
runs started in another terminal or on another machine sharing the filesystem."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runlab import _io
from runlab.monitor.status import monitored
from runlab.tracking.record import RunRecord
from runlab.tracking.scalars import read_scalars
from runlab.tracking.state import LIVE_STATES

SPARK = "▁▂▃▄▅▆▇█"
_META = {
    "epoch",
    "split",
    "lr",
    "epoch_time_s",
    "samples_per_s",
    "max_memory_mib",
    "episodes_per_s",
}


def sparkline(values: list[float | None], width: int = 40) -> str:
    """One character per value (the last ``width``), scaled between their min and max."""
    shown = values[-width:]
    finite = [v for v in shown if v is not None and math.isfinite(v)]
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    span = hi - lo or 1.0
    return "".join(
        " " if v is None or not math.isfinite(v) else SPARK[int((v - lo) / span * 7)] for v in shown
    )


class RunView:
    """One watched run, re-read on each refresh (events incrementally)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.record = RunRecord(path)
        self.events: list[dict[str, Any]] = []
        self._offset = 0

    def refresh(self) -> None:
        self.record = RunRecord(self.path)
        try:
            with open(self.path / "events.jsonl", "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n") + 1  # a line being written is read next time
        for line in chunk[:end].splitlines():
            try:
                self.events.append(json.loads(line))
            except ValueError:
                continue
        self._offset += end

    @property
    def live(self) -> bool:
        return self.record.state in LIVE_STATES

    def render(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.text import Text

        rec, beat = self.record, self.record.heartbeat or {}
        metrics, config = rec.metrics, rec.config
        rows = read_scalars(self.path / "scalars.csv")
        parts: list[Any] = [self._header(beat, metrics, config, rows)]
        if rows:
            parts.append(self._last_epoch(rows))
        monitor, _, _ = monitored(metrics, config)
        chart = self._chart(monitor, rows, metrics)
        if chart:
            parts.append(chart)
        parts.extend(self._gates(config, metrics))
        warnings = [e for e in self.events if e.get("event") in ("on_warning", "on_exception")]
        for e in warnings[-3:]:
            exc = e.get("event") == "on_exception"
            text = f"{e.get('type')}: {e.get('message')}" if exc else str(e.get("message"))
            parts.append(Text(f"! {text}", style="yellow"))
        stop = metrics.get("stop_reason")
        if stop:
            parts.append(Text(f"stopped: {stop}", style="yellow"))
        return Panel(Group(*parts), title=f"{rec.id}", title_align="left", expand=True)

    def _header(
        self,
        beat: dict[str, Any],
        metrics: dict[str, Any],
        config: dict[str, Any],
        rows: list[dict[str, Any]],
    ) -> Any:
        from rich.text import Text

        from runlab.cli._format import STATUS_STYLE, fmt_duration

        state = self.record.state.value
        total = beat.get("total_epochs") or (config.get("trainer") or {}).get("epochs")
        epoch = beat.get("epoch") if self.live else metrics.get("last_epoch")
        if rows and isinstance(rows[-1].get("epoch"), int):
            epoch = max(epoch or 0, rows[-1]["epoch"])
        text = Text()
        text.append(f"{self.record.name}  ")
        text.append(state, style=STATUS_STYLE.get(state, ""))
        if epoch is not None:
            text.append(f"  epoch {epoch}/{total or '?'}")
        progress = beat.get("progress") if self.live else None
        if progress is not None:
            filled = int(progress * 20)
            text.append(f"  {'█' * filled}{'░' * (20 - filled)} {progress:.0%}")
        elapsed = (
            beat.get("elapsed_seconds") if self.live else self.record.info.get("duration_seconds")
        )
        if elapsed is not None:
            text.append(f"  elapsed {fmt_duration(elapsed)}")
        if self.live and beat.get("eta_seconds") is not None:
            text.append(f"  ETA {fmt_duration(beat['eta_seconds'])}")
        if rows and rows[-1].get("lr") is not None:
            text.append(f"  lr {rows[-1]['lr']:.3g}")
        return text

    def _last_epoch(self, rows: list[dict[str, Any]]) -> Any:
        from rich.table import Table

        from runlab.cli._format import fmt_value

        epoch = rows[-1].get("epoch")
        last = [r for r in rows if r.get("epoch") == epoch]
        cols = [c for c in last[0] if c not in _META and any(r.get(c) is not None for r in last)]
        table = Table(box=None, pad_edge=False, header_style="bold", title_justify="left")
        table.add_column(f"epoch {epoch}")
        for c in cols:
            table.add_column(c, justify="right")
        for r in last:
            table.add_row(str(r.get("split")), *(fmt_value(r.get(c)) for c in cols))
        return table

    def _chart(
        self, monitor: str | None, rows: list[dict[str, Any]], metrics: dict[str, Any]
    ) -> Any:
        from rich.text import Text

        if not monitor:
            return None
        split, _, key = monitor.partition(".")
        values = [r.get(key) for r in rows if r.get("split") == split]
        values = [float(v) if isinstance(v, (int, float)) else None for v in values]
        line = sparkline(values)
        if not line:
            return None
        first = next(v for v in values if v is not None)
        last = next(v for v in reversed(values) if v is not None)
        best, best_epoch = metrics.get("best"), metrics.get("best_epoch")
        text = Text(f"{monitor:<12} ")
        text.append(line, style="cyan")
        text.append(f"  {first:.4g} -> {last:.4g}")
        if isinstance(best, (int, float)):
            text.append(f"  best {best:.4g} @{best_epoch}")
        return text

    def _gates(self, config: dict[str, Any], metrics: dict[str, Any]) -> list[Any]:
        from rich.text import Text

        outcomes = {g.get("name"): g for g in metrics.get("gates") or []}
        lines = []
        for i, gate in enumerate(config.get("gates") or []):
            name = gate.get("name") or f"gate_{i}"
            outcome = outcomes.get(name, {})
            status = outcome.get("status", "pending")
            mark, style = {"passed": ("✓", "green"), "failed": ("✗", "bold red")}.get(
                status, ("·", "dim")
            )
            when = "every epoch" if gate.get("every_epoch") else f"@{gate.get('at_epoch')}"
            values = ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in (outcome.get("values") or {}).items()
            )
            text = Text(f"{mark} ", style=style)
            text.append(f"{name} {when}: {gate.get('require')}  ")
            text.append(f"{status}" + (f" ({values})" if values else ""), style=style)
            if status == "failed":
                text.append(f" -> {gate.get('on_fail', 'stop')}")
            lines.append(text)
        return lines


def render(views: list[RunView], note: str = "") -> Any:
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = [v.render() for v in views]
    if not views:
        parts.append(Text("no runs yet", style="dim"))
    if note:
        parts.append(Text(note, style="dim"))
    return Group(*parts)


def watch(
    select: Callable[[], list[Path]],
    console: Any,
    interval: float = 1.0,
    once: bool = False,
    done: Callable[[], bool] | None = None,
    timeout: float | None = None,
) -> list[RunView]:
    """Redraw until every selected run has ended (and ``done()`` says no more will come)."""
    from rich.live import Live

    views: dict[Path, RunView] = {}
    t0 = time.monotonic()

    def update() -> Any:
        for path in select():
            if path not in views:
                views[path] = RunView(path)
        for view in views.values():
            view.refresh()
        return render(list(views.values()), "" if once else "watching; Ctrl-C leaves")

    with Live(update(), console=console, auto_refresh=False, transient=False) as live:
        while not once:
            ended = views and not any(v.live for v in views.values())
            if ended and (done is None or done()):
                break
            if timeout is not None and time.monotonic() - t0 > timeout:
                break
            time.sleep(interval)
            live.update(update(), refresh=True)
        live.update(render(list(views.values())), refresh=True)
    return list(views.values())


def read_sweep_done(path: Path) -> bool:
    """A sweep is done when no combination is still pending."""
    try:
        data = _io.read_json(path)
    except (OSError, ValueError):
        return False
    return all(c.get("status") not in ("pending", "running") for c in data["combinations"])
