"""Evaluation metrics per family, computed on the device over a whole split (one host sync
per epoch, when the values are read)."""

from __future__ import annotations

from typing import Any

import torch

from runlab.errors import ConfigError

FAMILY_METRICS = {
    "regression": ("mse", "mae", "r2"),
    "classification": ("accuracy", "f1"),
    "ranking": ("ic", "rank_ic", "ic_ir", "scale"),
    "portfolio": (
        "sharpe",
        "sortino",
        "annual_return",
        "max_drawdown",
        "cumulative_return",
        "turnover",
        "hit_rate",
    ),
}


def _rows(
    pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    if mask is None:
        return pred.float().reshape(y.shape[0], -1), y.float().reshape(y.shape[0], -1)
    return pred.float()[mask].unsqueeze(-1), y.float()[mask].unsqueeze(-1)


def regression(
    pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    p, t = _rows(pred, y, mask)
    err = p - t
    ss_res = (err**2).sum()
    ss_tot = ((t - t.mean(0)) ** 2).sum()
    return {
        "mse": (err**2).mean(),
        "mae": err.abs().mean(),
        "r2": 1 - ss_res / ss_tot.clamp_min(1e-12),
    }


def classification(
    pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    k = pred.shape[-1]
    guess = pred.argmax(-1)
    accuracy = (guess == y).float().mean()
    f1s = []
    for c in range(k):  # macro F1 over classes present in labels or predictions
        tp = ((guess == c) & (y == c)).sum().float()
        fp = ((guess == c) & (y != c)).sum().float()
        fn = ((guess != c) & (y == c)).sum().float()
        present = (tp + fp + fn) > 0
        f1s.append(torch.where(present, 2 * tp / (2 * tp + fp + fn).clamp_min(1), torch.nan))
    f1 = torch.nanmean(torch.stack(f1s))
    return {"accuracy": accuracy, "f1": f1}


def _per_date_corr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.float()
    n = m.sum(-1)
    a_mean = (a * m).sum(-1) / n.clamp_min(1)
    b_mean = (b * m).sum(-1) / n.clamp_min(1)
    da, db = (a - a_mean.unsqueeze(-1)) * m, (b - b_mean.unsqueeze(-1)) * m
    cov = (da * db).sum(-1)
    denom = (da.pow(2).sum(-1) * db.pow(2).sum(-1)).sqrt()
    corr = cov / denom
    return torch.where((n >= 2) & (denom > 0), corr, torch.nan)


def _ranks(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Ranks within each date (missing pairs pushed to the end); ties broken by order."""
    filled = x.masked_fill(~mask, torch.inf)
    return filled.argsort(-1).argsort(-1).float()


def ranking(
    pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """Cross-sectional IC (Pearson) and RankIC (Spearman) per date, averaged over dates;
    ic_ir = mean/std of the daily IC; scale = std(y_hat)/std(y), the collapse detector."""
    assert mask is not None, "ranking metrics need a panel"
    p = pred.float()
    ic = _per_date_corr(p, y.float(), mask)
    rank_ic = _per_date_corr(_ranks(p, mask), _ranks(y.float(), mask), mask)
    flat_p, flat_y = p[mask], y.float()[mask]
    return {
        "ic": torch.nanmean(ic),
        "rank_ic": torch.nanmean(rank_ic),
        "ic_ir": torch.nanmean(ic) / _nanstd(ic).clamp_min(1e-12),
        "scale": flat_p.std() / flat_y.std().clamp_min(1e-12),
        "_ic_by_date": ic,
        "_rank_ic_by_date": rank_ic,
    }


def _nanstd(x: torch.Tensor) -> torch.Tensor:
    ok = x[~torch.isnan(x)]
    return ok.std() if ok.numel() > 1 else torch.tensor(torch.nan, device=x.device)


def portfolio(
    pred: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor | None,
    settings: dict[str, Any] | None = None,
) -> dict[str, torch.Tensor]:
    """Backtest the predictions as scores (runlab.finance.backtest, settings from the config's
    ``portfolio`` block) against the realised targets, which must be next-period returns."""
    import numpy as np

    from runlab.finance.backtest import backtest

    if mask is None:
        raise ConfigError("evaluate: portfolio needs a panel (dates x assets) as data.source")
    m = mask.cpu().numpy()
    scores = np.where(m, pred.float().cpu().numpy(), np.nan)
    returns = np.where(m, y.float().cpu().numpy(), np.nan)
    result = backtest(scores, returns, scores=True, **(settings or {}))
    summary = result.metrics()
    keys = {
        "sharpe": "sharpe",
        "sortino": "sortino",
        "annual_return": "annual_return",
        "max_drawdown": "max_drawdown",
        "cumulative_return": "cumulative_return",
        "turnover": "avg_turnover",
        "hit_rate": "hit_rate",
    }
    return {k: torch.tensor(summary[v], device=pred.device) for k, v in keys.items()}


FAMILIES: dict[str, Any] = {
    "regression": regression,
    "classification": classification,
    "ranking": ranking,
    "portfolio": portfolio,
}
