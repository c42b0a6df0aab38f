"""An evaluator: how often the prediction has the sign of the target (a trader's "hit rate"
of a return forecast). ``metrics`` says which way it is better: gates, ``trainer.monitor``
and best.pt read it.

    runlab run examples/quickstart.yaml \\
        'evaluate=[regression,examples.plugins.sign_evaluator:sign_accuracy]' \\
        trainer.monitor=val.sign_accuracy
"""

from __future__ import annotations

from typing import Any


def sign_accuracy(pred: Any, y: Any, mask: Any, cfg: Any = None) -> dict[str, Any]:
    p, t = pred.reshape(len(y), -1)[:, 0], y.reshape(len(y), -1)[:, 0].float()
    if mask is not None:
        p, t = pred.float()[mask], y.float()[mask]
    hits = (p.sign() == t.sign()).float()
    return {"sign_accuracy": hits.mean()}


sign_accuracy.metrics = {"sign_accuracy": "max"}  # type: ignore[attr-defined]
