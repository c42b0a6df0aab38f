"""Grid sweeps in Hydra's override grammar: ``a=1,2 model=mlp,resmlp b='range(1,4)'``,
``model='glob(*)'``, and the config's ``hydra.sweeper.params``, expanded as Hydra's basic
sweeper expands them."""

from __future__ import annotations

import itertools
import math
import os
from typing import Any

from runlab.errors import ConfigError

MAX_COMBINATIONS = 10_000  # each one is a run, and each is composed and checked first


def expand(
    overrides: list[str], config: str | os.PathLike[str] | None = None
) -> tuple[list[list[str]], list[str]]:
    """(every combination as a list of plain overrides, the keys that vary). Discrete sweeps
    only (lists, ``range``, ``choice``, and with ``config`` ``glob`` over a config group's
    options). With ``config``, its ``hydra.sweeper.params`` come first and the command line's
    overrides replace those of the same key, as in Hydra's ``--multirun``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if config is None:
        return _expand(overrides, OverridesParser.create())
    from runlab.config.compose import hydra_context, sweeper_params

    with hydra_context(config) as (loader, name):
        params = [f"{k}={v}" for k, v in sweeper_params(config, name).items()]
        return _expand(params + overrides, OverridesParser.create(config_loader=loader))


def _expand(overrides: list[str], parser: Any) -> tuple[list[list[str]], list[str]]:
    try:
        parsed = parser.parse_overrides(overrides)
    except Exception as err:
        raise ConfigError(f"cannot parse sweep overrides: {str(err).splitlines()[0]}") from err
    by_key: dict[str, list[str]] = {}  # the last override of a key wins, in the first's place
    swept: dict[str, bool] = {}
    for o in parsed:
        key = o.get_key_element()
        swept[key] = o.is_sweep_override()
        if swept[key]:
            if not o.is_discrete_sweep():
                raise ConfigError(
                    f"{key}: a grid needs discrete values (a,b,c, range(...), glob(...)); "
                    "intervals are for runlab tune"
                )
            try:
                taken = itertools.islice(o.sweep_string_iterator(), MAX_COMBINATIONS + 1)
                values = [f"{key}={v}" for v in taken]  # a range of 10**9 is not listed
            except Exception as err:  # glob without a config, or over no group
                raise ConfigError(f"{key}: {str(err).splitlines()[0]}") from err
            if not values:
                raise ConfigError(f"{key}: the sweep has no values{_options(o, parser)}")
            if len(values) > MAX_COMBINATIONS:
                raise ConfigError(
                    f"{key}: more than {MAX_COMBINATIONS:,} values, more runs than a grid takes; "
                    "sample the space with runlab tune instead"
                )
            by_key[key] = values
        else:
            by_key[key] = (
                [f"{key}={o.get_value_element_as_str()}"] if not key.startswith("~") else [key]
            )
    varying = [k.lstrip("+~") for k, v in swept.items() if v]
    count = math.prod(len(v) for v in by_key.values())
    if count > MAX_COMBINATIONS:
        sizes = " x ".join(str(len(by_key[k])) for k in by_key if len(by_key[k]) > 1)
        raise ConfigError(
            f"the sweep has {count:,} combinations ({sizes}), more than {MAX_COMBINATIONS:,}; "
            "sample the space with runlab tune instead"
        )
    return [list(c) for c in itertools.product(*by_key.values())], varying


def _options(override: Any, parser: Any) -> str:
    """For an empty glob: the options its config group has (none if it is not a group)."""
    from hydra.core.override_parser.types import Glob

    if not isinstance(override.value(), Glob) or parser.config_loader is None:
        return ""
    group = override.key_or_group
    options = parser.config_loader.get_group_options(group)
    if not options:
        return f" (glob: there is no config group {group!r} beside the config)"
    return f" (glob: config group {group!r} has {', '.join(options)})"
