"""The built-in evaluators (registered in runlab.evaluators): metrics per family, computed on
the device over a whole split (one host sync per epoch, when the values are read)."""

from __future__ import annotations

from typing import Any

import torch

from runlab.errors import ConfigError


def _rows(
    pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    if mask is None:
        return pred.float().reshape(y.shape[0], -1), y.float().reshape(y.shape[0], -1)
    p, t = pred.float()[mask], y.float()[mask]  # (cells,) or (cells, k targets)
    return (p.unsqueeze(-1), t.unsqueeze(-1)) if t.ndim == 1 else (p, t)


def target_names(y: torch.Tensor, mask: torch.Tensor | None, cfg: Any) -> list[str] | None:
    """The names of a panel's targets when it has several (``data.target: [ret_h1, ret_h5]``),
    else None."""
    if mask is None or y.ndim != mask.ndim + 1:
        return None
    given = ((cfg or {}).get("data") or {}).get("target")
    k = int(y.shape[-1])
    if isinstance(given, list) and len(given) == k:
        return [str(t) for t in given]
    return [f"target_{j}" for j in range(k)]


def horizons(names: list[str], cfg: Any) -> list[int]:
    """Periods each target spans: ``data.horizons`` when given, else the number a name ends
    with after an ``h`` (``ret_h20``: 20), else 1."""
    import re

    given = ((cfg or {}).get("data") or {}).get("horizons")
    if given:
        return [int(h) for h in given]
    found = [re.search(r"h(\d+)$", name) for name in names]
    return [max(1, int(m.group(1))) if m else 1 for m in found]


def per_target(fn: Any) -> Any:
    """A panel evaluator over several targets: its metrics for each target, named
    ``<target>.<metric>`` (``ret_h20.rank_ic``), and their averages under the plain names;
    per-date series are the first target's."""

    def each(
        pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None, cfg: Any = None
    ) -> dict[str, torch.Tensor]:
        names = target_names(y, mask, cfg)
        if names is None:
            return fn(pred, y, mask, cfg)  # type: ignore[no-any-return]
        from runlab.train.losses import check_shapes

        check_shapes(pred, y)
        out: dict[str, torch.Tensor] = {}
        per: dict[str, list[torch.Tensor]] = {}
        spans = horizons(names, cfg)
        for j, name in enumerate(names):
            values = fn(pred[..., j], y[..., j], mask, {**(cfg or {}), "_horizon": spans[j]})
            for key, value in values.items():
                if key.startswith("_"):
                    out.setdefault(key, value)
                    continue
                out[f"{name}.{key}"] = value
                per.setdefault(key, []).append(value.float())
        out.update({key: torch.stack(vs).mean() for key, vs in per.items()})
        return out

    each.__doc__ = fn.__doc__
    return each


def regression(
    pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None, cfg: Any = None
) -> dict[str, torch.Tensor]:
    """mse, mae and r2 (sklearn's definitions). With k outputs, each also per output
    (``mse_0`` .. ``mse_{k-1}``), and ``mse``/``mae``/``r2`` are their plain averages
    (sklearn's ``multioutput="uniform_average"``). A constant target has r2 1 when predicted
    exactly and 0 otherwise (sklearn's ``force_finite``); fewer than two rows have no r2."""
    from runlab.train.losses import check_shapes

    check_shapes(pred, y)
    p, t = _rows(pred, y, mask)
    err = p - t
    mse, mae = (err**2).mean(0), err.abs().mean(0)
    ss_res, ss_tot = (err**2).sum(0), ((t - t.mean(0)) ** 2).sum(0)
    if p.shape[0] < 2:
        r2 = torch.full_like(ss_res, torch.nan)
    else:
        varies = t.amax(0) > t.amin(0)  # exact, where a float32 sum of squares may not be 0
        exact = (ss_res == 0).to(p.dtype)
        r2 = torch.where(varies, 1 - ss_res / torch.where(varies, ss_tot, 1.0), exact)
    out = {"mse": mse.mean(), "mae": mae.mean(), "r2": r2.mean()}
    if p.shape[1] > 1:
        for name, values in (("mse", mse), ("mae", mae), ("r2", r2)):
            out.update({f"{name}_{i}": v for i, v in enumerate(values)})
    return out


def classification(
    pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None, cfg: Any = None
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


def _ranking(
    pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None, cfg: Any = None
) -> dict[str, torch.Tensor]:
    """Cross-sectional IC (Pearson) and RankIC (Spearman, average ranks for ties) per date,
    averaged over dates; ic_ir = mean/std of the daily IC; scale = std(y_hat)/std(y), the
    collapse detector. Computed by runlab.finance (one implementation of each metric), on the
    host: one dates x assets copy per evaluation."""
    import numpy as np

    from runlab.finance.ranking import ic_summary, information_coefficient, prediction_scale

    if mask is None:
        raise ConfigError("ranking metrics need a panel (dates x assets) as data.source")
    m = mask.cpu().numpy()
    p = np.where(m, pred.float().cpu().numpy(), np.nan)
    t = np.where(m, y.float().cpu().numpy(), np.nan)
    ic = information_coefficient(p, t, method="pearson")
    rank_ic = information_coefficient(p, t, method="spearman")
    summary = ic_summary(ic)
    values = {
        "ic": summary["mean"],
        "rank_ic": float(np.nanmean(rank_ic)) if np.isfinite(rank_ic).any() else float("nan"),
        "ic_ir": summary["ir"],
        "scale": prediction_scale(p, t),
    }
    out = {k: torch.tensor(v, device=pred.device) for k, v in values.items()}
    out["_ic_by_date"] = torch.as_tensor(ic, device=pred.device)
    out["_rank_ic_by_date"] = torch.as_tensor(rank_ic, device=pred.device)
    return out


def _portfolio(
    pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None, cfg: Any = None
) -> dict[str, torch.Tensor]:
    """Backtest the predictions as scores (runlab.finance.backtest, settings from the config's
    ``portfolio`` block) against the realised targets, which must be forward returns: a
    target spanning h periods (``ret_h20``, ``data.horizons``) is held h periods, rebalanced
    every h-th date and annualised with periods_per_year / h."""
    settings = (cfg or {}).get("portfolio")
    import numpy as np

    from runlab.finance.backtest import backtest

    if mask is None:
        raise ConfigError("evaluate: portfolio needs a panel (dates x assets) as data.source")
    m = mask.cpu().numpy()
    scores = np.where(m, pred.float().cpu().numpy(), np.nan)
    returns = np.where(m, y.float().cpu().numpy(), np.nan)
    settings = dict(settings or {})
    span = int((cfg or {}).get("_horizon") or 1)
    if span > 1:  # h-period returns: rebalance every h dates, so that holdings never overlap
        scores, returns = scores[::span], returns[::span]
        settings["periods_per_year"] = settings.get("periods_per_year", 252) / span
    result = backtest(scores, returns, scores=True, **settings)
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


ranking = per_target(_ranking)
portfolio = per_target(_portfolio)
