"""Losses per task. Panels come with a mask (dates x assets); a loss averages over what exists."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from runlab.errors import ConfigError

Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]

TASK_LOSSES = {
    "regression": ("mse", "huber", "mae"),
    "classification": ("cross_entropy",),
    "ranking": ("mse", "listnet", "pairwise"),
}


def check_shapes(pred: torch.Tensor, y: torch.Tensor, classes: bool = False) -> None:
    """The model's output must have the target's shape (plus a class axis for logits):
    a loss that broadcasts (B,) against (B, 1) compares every row with every target and
    learns the mean, silently."""
    expected = (*y.shape, pred.shape[-1]) if classes and pred.ndim else tuple(y.shape)
    if tuple(pred.shape) != expected:
        what = "class logits of shape (rows, classes)" if classes else f"shape {tuple(y.shape)}"
        raise ConfigError(
            f"the model's output has shape {tuple(pred.shape)} but the targets need {what}; "
            "check model.out_features (or your model's forward) against the data's targets"
        )


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return values.mean()
    m = mask.to(values.dtype)
    return (values * m).sum() / m.sum().clamp_min(1.0)


def _pointwise(fn: Callable[..., torch.Tensor]) -> Loss:
    def loss(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        check_shapes(pred, y)
        if mask is None:  # the common case: one fused kernel
            return fn(pred.float(), y.float())
        return _masked_mean(fn(pred.float(), y.float(), reduction="none"), mask)

    return loss


def cross_entropy(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    check_shapes(pred, y, classes=True)
    return F.cross_entropy(pred.float(), y)


def _zscore_per_date(y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.float()
    n = m.sum(-1, keepdim=True).clamp_min(1.0)
    mean = (y * m).sum(-1, keepdim=True) / n
    std = (((y - mean) * m).pow(2).sum(-1, keepdim=True) / n).sqrt().clamp_min(1e-8)
    return (y - mean) / std


def listnet(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """ListNet top-one cross entropy per date (rows are dates, columns assets). Targets are
    z-scored per date first: softmax of raw returns (~1e-2) is nearly uniform and would carry
    almost no ranking signal."""
    assert mask is not None
    check_shapes(pred, y)
    neg = torch.finfo(torch.float32).min
    target = _zscore_per_date(y.float(), mask)
    p_true = torch.softmax(target.masked_fill(~mask, neg), dim=-1)
    log_p = torch.log_softmax(pred.float().masked_fill(~mask, neg), dim=-1)
    per_date = -(p_true * log_p.masked_fill(~mask, 0.0)).sum(-1)
    return per_date.mean()


def pairwise(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """RankNet logistic loss over all ordered pairs of assets within each date."""
    assert mask is not None
    check_shapes(pred, y)
    dp = pred.float().unsqueeze(-1) - pred.float().unsqueeze(-2)
    dy = y.float().unsqueeze(-1) - y.float().unsqueeze(-2)
    pair = (mask.unsqueeze(-1) & mask.unsqueeze(-2)) & (dy > 0)
    losses = F.softplus(-dp)
    return (losses * pair).sum() / pair.sum().clamp_min(1)


def _wide(t: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 (autocast) up to float32; float32 and float64 as they are."""
    return (
        t.float() if t.dtype in (torch.float16, torch.bfloat16) or not t.is_floating_point() else t
    )


def ic_term(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Minus the cross-sectional Pearson correlation of scores and targets, per date (rows are
    dates, columns assets), averaged over dates with at least two assets."""
    assert mask is not None
    check_shapes(pred, y)
    pred, y = _wide(pred), _wide(y)
    m = mask.to(pred.dtype)
    n = m.sum(-1)
    p = pred - (pred * m).sum(-1, keepdim=True) / n.clamp_min(1)[..., None]
    t = y - (y * m).sum(-1, keepdim=True) / n.clamp_min(1)[..., None]
    cov = (p * t * m).sum(-1)
    var = ((p * p * m).sum(-1) * (t * t * m).sum(-1)).clamp_min(1e-12).sqrt()
    usable = (n >= 2).float()
    return -((cov / var) * usable).sum() / usable.sum().clamp_min(1)


ic_term.needs_panel = True  # type: ignore[attr-defined]


def sharpe_term(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Minus the Sharpe ratio (per period, not annualised) of the long-short portfolio that
    holds each date's demeaned scores scaled to gross exposure 1, over the batch's dates: the
    differentiable Sharpe of a score-weighted book."""
    assert mask is not None
    check_shapes(pred, y)
    pred, y = _wide(pred), _wide(y)
    m = mask.to(pred.dtype)
    n = m.sum(-1, keepdim=True).clamp_min(1)
    centred = (pred - (pred * m).sum(-1, keepdim=True) / n) * m
    weights = centred / centred.abs().sum(-1, keepdim=True).clamp_min(1e-8)
    returns = (weights * y * m).sum(-1)
    if returns.numel() < 2:
        return -returns.mean()
    return -returns.mean() / returns.std().clamp_min(1e-8)


sharpe_term.needs_panel = True  # type: ignore[attr-defined]
listnet.needs_panel = True  # type: ignore[attr-defined]
pairwise.needs_panel = True  # type: ignore[attr-defined]


_LOSSES: dict[str, Loss] = {
    "mse": _pointwise(F.mse_loss),
    "huber": _pointwise(F.huber_loss),
    "mae": _pointwise(F.l1_loss),
    "cross_entropy": cross_entropy,
    "listnet": listnet,
    "pairwise": pairwise,
}


def per_target(loss: Loss) -> Loss:
    """A panel with several targets (dates x assets x k, one mask for the cells): ``loss`` on
    each target's (dates x assets) slice, averaged; any other shape goes to ``loss`` as is."""

    def each(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None or y.ndim != mask.ndim + 1:
            return loss(pred, y, mask)
        check_shapes(pred, y)
        return torch.stack([loss(pred[..., j], y[..., j], mask) for j in range(y.shape[-1])]).mean()

    return each


mse_term, huber_term, mae_term = _LOSSES["mse"], _LOSSES["huber"], _LOSSES["mae"]
listnet_term, pairwise_term = listnet, pairwise


class CompositeLoss:
    """A weighted sum of registered loss terms (``trainer.loss: {sharpe: 0.5, ic: 0.1}``):
    the seed's ``SHARPE_WEIGHT=0.5 RANKIC_WEIGHT=0.2 ...``. Each call keeps the unweighted
    value of every term (``last_terms``, on the device) for the epoch's record."""

    def __init__(self, weights: dict[str, float], panel: bool) -> None:
        from runlab.train.plugins import LOSS_TERMS

        if not weights:
            raise ConfigError("trainer.loss {} has no terms: name at least one, {mse: 1.0}")
        self.weights = {str(k): float(v) for k, v in weights.items()}
        self.terms: dict[str, Loss] = {}
        for name in self.weights:
            fn = LOSS_TERMS.load(name, "trainer.loss")
            if getattr(fn, "needs_panel", False) and not panel:
                raise ConfigError(
                    f"trainer.loss term {name!r} works per date: it needs a panel (dates x "
                    "assets) as data.source"
                )
            self.terms[name] = per_target(fn)
        self.last_terms: dict[str, torch.Tensor] = {}

    def __call__(
        self, pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        values = {name: fn(pred, y, mask) for name, fn in self.terms.items()}
        self.last_terms = {k: v.detach() for k, v in values.items()}
        total: torch.Tensor = sum(  # type: ignore[assignment]
            self.weights[k] * v for k, v in values.items()
        )
        return total


def make_loss(task: str, name: Any, panel: bool = False) -> Loss:
    """The loss of ``trainer.loss``: a name (``auto`` is the task's first), or a mapping of
    registered loss terms to weights (:class:`CompositeLoss`)."""
    if isinstance(name, Mapping):
        if task == "classification":
            raise ConfigError("a composite trainer.loss is for regression and ranking tasks")
        return CompositeLoss(dict(name), panel)
    if name == "auto":
        name = TASK_LOSSES[task][0]
    if name not in TASK_LOSSES[task]:
        raise ConfigError(
            f"trainer.loss {name!r} does not fit task {task!r}; "
            f"choose one of {', '.join(TASK_LOSSES[task])}"
        )
    return per_target(_LOSSES[name])
