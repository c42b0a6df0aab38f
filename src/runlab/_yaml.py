"""Turn what users pass as a config (dict, OmegaConf, dataclass, argparse.Namespace) into plain
data, and render it as YAML."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from typing import Any

import yaml

from runlab.errors import ConfigError


def to_plain(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    omegaconf = sys.modules.get("omegaconf")  # only if the program uses it already
    if omegaconf is not None and isinstance(config, omegaconf.DictConfig):
        config = omegaconf.OmegaConf.to_container(config, resolve=True)
    elif dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    elif not isinstance(config, Mapping) and hasattr(config, "__dict__"):
        config = vars(config)  # argparse.Namespace and plain objects
    if not isinstance(config, Mapping):
        raise ConfigError(
            f"config must be a mapping (dict, OmegaConf, dataclass or Namespace), "
            f"got {type(config).__name__}"
        )
    return _plain(config)  # type: ignore[no-any-return]


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    item = getattr(obj, "item", None)
    if callable(item):
        try:
            return item()
        except (ValueError, RuntimeError):
            pass
    return str(obj)


def to_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def load_yaml(text: str) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: ~10x faster
    return yaml.load(text, Loader=loader)
