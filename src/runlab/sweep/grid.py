"""Grid sweeps in Hydra's override grammar: ``a=1,2 model=mlp,resmlp b='range(1,4)'``."""

from __future__ import annotations

import itertools

from runlab.errors import ConfigError


def expand(overrides: list[str]) -> tuple[list[list[str]], list[str]]:
    """(every combination as a list of plain overrides, the keys that vary). Sweep values are
    expanded as Hydra's basic sweeper does (discrete sweeps: lists, ``range``, ``choice``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as err:
        raise ConfigError(f"cannot parse sweep overrides: {str(err).splitlines()[0]}") from err
    lists, varying = [], []
    for o in parsed:
        key = o.get_key_element()
        if o.is_sweep_override():
            if not o.is_discrete_sweep():
                raise ConfigError(
                    f"{key}: a grid needs discrete values (a,b,c or range(...)); intervals are "
                    "for runlab tune"
                )
            values = [f"{key}={v}" for v in o.sweep_string_iterator()]
            if not values:
                raise ConfigError(f"{key}: the sweep has no values")
            lists.append(values)
            varying.append(key.lstrip("+~"))
        else:
            lists.append(
                [f"{key}={o.get_value_element_as_str()}"] if not key.startswith("~") else [key]
            )
    return [list(c) for c in itertools.product(*lists)], varying
