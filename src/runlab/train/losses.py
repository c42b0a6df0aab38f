"""Losses per task. Panels come with a mask (dates x assets); a loss averages over what exists."""

from __future__ import annotations

from collections.abc import Callable

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


_LOSSES: dict[str, Loss] = {
    "mse": _pointwise(F.mse_loss),
    "huber": _pointwise(F.huber_loss),
    "mae": _pointwise(F.l1_loss),
    "cross_entropy": cross_entropy,
    "listnet": listnet,
    "pairwise": pairwise,
}


def make_loss(task: str, name: str) -> Loss:
    if name == "auto":
        name = TASK_LOSSES[task][0]
    if name not in TASK_LOSSES[task]:
        raise ConfigError(
            f"trainer.loss {name!r} does not fit task {task!r}; "
            f"choose one of {', '.join(TASK_LOSSES[task])}"
        )
    return _LOSSES[name]
