"""Built-in models (mlp, resmlp, gru) and building any importable model from ``_target_``."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from runlab._imports import import_object
from runlab.errors import ConfigError

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


def _widths(hidden: Any) -> list[int]:
    return [int(hidden)] if isinstance(hidden, int) else [int(h) for h in hidden]


class MLP(nn.Module):
    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Any = (128, 128),
        dropout: float = 0.0,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in _widths(hidden):
            layers += [nn.Linear(width, h), _ACTIVATIONS[activation]()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]


class ResBlock(nn.Module):
    def __init__(self, width: int, dropout: float, activation: str, norm: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.LayerNorm(width) if norm else nn.Identity(),
            nn.Linear(width, width * 2),
            _ACTIVATIONS[activation](),
            nn.Dropout(dropout) if dropout else nn.Identity(),
            nn.Linear(width * 2, width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)  # type: ignore[no-any-return]


class ResMLP(nn.Module):
    """Input projection, ``blocks`` pre-norm residual blocks, linear head."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Any = 128,
        blocks: int = 2,
        dropout: float = 0.0,
        activation: str = "relu",
        norm: bool = True,
    ) -> None:
        super().__init__()
        width = _widths(hidden)[0]
        self.inp = nn.Linear(in_features, width)
        self.blocks = nn.Sequential(
            *(ResBlock(width, dropout, activation, norm) for _ in range(blocks))
        )
        self.head = nn.Sequential(
            nn.LayerNorm(width) if norm else nn.Identity(), nn.Linear(width, out_features)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.inp(x)))  # type: ignore[no-any-return]


class GRUNet(nn.Module):
    """A small sequence model for windowed inputs (rows x time x features): a GRU, then a
    linear head on the last time step."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Any = 64,
        blocks: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        width = _widths(hidden)[0]
        self.gru = nn.GRU(
            in_features,
            width,
            num_layers=blocks,
            batch_first=True,
            dropout=dropout if blocks > 1 else 0.0,
        )
        self.head = nn.Linear(width, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return self.head(out[:, -1])  # type: ignore[no-any-return]


def output_size(task: str, n_classes: int | None, target_shape: tuple[int, ...]) -> int:
    """Model outputs per row: one logit per class, else one per target value of a row."""
    if task == "classification":
        return int(n_classes or 2)
    return int(target_shape[0]) if target_shape else 1


def model_spec(cfg: dict[str, Any], in_features: int, out_features: int) -> dict[str, Any]:
    """The model block with the sizes filled in: enough to rebuild the model later."""
    spec = dict(cfg)
    if spec.get("in_features") is None or "_target_" not in spec:
        spec.setdefault("in_features", None)
    if spec.get("in_features") is None:
        spec["in_features"] = in_features
    if spec.get("out_features") is None:
        spec["out_features"] = out_features
    return spec


def build_model(spec: dict[str, Any]) -> nn.Module:
    """The model of a spec (:func:`model_spec`): ``_target_`` (a class and its kwargs) or a
    model registered by ``name`` (runlab.train.plugins.MODELS: mlp, resmlp, gru, plugins)."""
    if "_target_" in spec:
        return _build_target(spec)
    from runlab.train.plugins import MODELS

    model = MODELS.load(spec["name"], "model.name")(spec)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model.name {spec['name']!r} did not build a torch.nn.Module")
    return model


def _common(spec: dict[str, Any]) -> dict[str, Any]:
    keys = ("in_features", "out_features", "hidden", "dropout")
    return {k: spec[k] for k in keys}


def build_mlp(spec: dict[str, Any]) -> nn.Module:
    return MLP(**_common(spec), activation=spec["activation"])


def build_resmlp(spec: dict[str, Any]) -> nn.Module:
    return ResMLP(
        **_common(spec), blocks=spec["blocks"], activation=spec["activation"], norm=spec["norm"]
    )


def build_gru(spec: dict[str, Any]) -> nn.Module:
    return GRUNet(**_common(spec), blocks=spec["blocks"])


def _nested(value: Any, where: str) -> Any:
    """A ``_target_`` inside the model's arguments (an encoder object), instantiated
    recursively by Hydra's own ``instantiate``, as a Hydra project expects; other values as
    they are."""
    has_target = isinstance(value, dict) and "_target_" in value
    if not has_target and not (
        isinstance(value, list) and any(isinstance(v, dict) and "_target_" in v for v in value)
    ):
        return value
    from hydra.utils import instantiate

    try:
        return instantiate(value)
    except Exception as err:
        text = " ".join(str(err).split())
        raise ConfigError(f"{where}: {text[:300]}") from err


def _build_target(spec: dict[str, Any]) -> nn.Module:
    cls = import_object(spec["_target_"], "model._target_")
    kwargs = {k: _nested(v, f"model.{k}") for k, v in spec.items() if k != "_target_"}
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for size in ("in_features", "out_features"):  # inferred sizes only where accepted
        if size not in params and not takes_any:
            kwargs.pop(size, None)
    try:
        model = cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"model._target_ {spec['_target_']!r}: {err}") from err
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model._target_ {spec['_target_']!r} is not a torch.nn.Module")
    return model
