"""Throughput of a loop that reports tokens: ``run.log({"loss": l, "tokens": n}, step=s)``
(``tokens``: processed since the previous log; or ``tokens_total``: so far) gets
``tokens_per_s`` and ``sec_per_step`` beside it in steps.jsonl, and the run's totals go to
metrics.json (``tokens``, ``tokens_per_s`` over the logged time)."""

from __future__ import annotations

from typing import Any


class TokenRates:
    def __init__(self) -> None:
        self.last: tuple[int, float] | None = None  # (step, time) of the previous log
        self.total = 0.0  # every token reported
        self.timed = 0.0  # those processed after the first log (with a known duration)
        self.seconds = 0.0

    def update(self, step: int, now: float, metrics: Any) -> dict[str, float]:
        """The rates to add to this step's record (none when it reports no tokens)."""
        count = metrics.get("tokens")
        total = metrics.get("tokens_total")
        if not isinstance(count, (int, float)) and not isinstance(total, (int, float)):
            return {}
        previous, self.last = self.last, (step, now)
        new = float(total) - self.total if isinstance(total, (int, float)) else float(count)
        self.total = float(total) if isinstance(total, (int, float)) else self.total + new
        if previous is None or now <= previous[1]:
            return {}
        elapsed = now - previous[1]
        self.seconds += elapsed
        self.timed += new
        out = {"tokens_per_s": round(new / elapsed, 3)}
        if step > previous[0]:
            out["sec_per_step"] = round(elapsed / (step - previous[0]), 6)
        return out

    def summary(self) -> dict[str, float]:
        if not self.total:
            return {}
        rate = round(self.timed / self.seconds, 3) if self.seconds else None
        return {"tokens": self.total, "tokens_per_s": rate} if rate else {"tokens": self.total}
