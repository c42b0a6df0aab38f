"""``runlab rl check-leakage CFG``: whether any observation of a ``loop: ppo`` config's
environment depends on the future (:mod:`runlab.rl.leakage`)."""

from __future__ import annotations

import sys

import typer

from runlab.errors import ConfigError


def rl(
    action: str = typer.Argument(..., help="check-leakage"),
    config: str = typer.Argument(..., help="A loop: ppo config."),
    overrides: list[str] | None = typer.Argument(None, help="Overrides.", show_default=False),
    steps: int = typer.Option(20, "--steps", help="Dates of the split to check."),
    split: str = typer.Option("train", "--split", help="train, val or test."),
) -> None:
    """check-leakage: shuffle and rescale the panel's rows after each of --steps dates and
    check that the environment's observation at that date does not change; exit 1 when one
    does."""
    from runlab.rl.leakage import leaking_steps
    from runlab.rl.ppo import _split, env_options
    from runlab.train.checks import load_checked
    from runlab.train.data import load_dataset

    if action != "check-leakage":
        raise ConfigError(f"runlab rl {action}: the action is check-leakage")
    if steps < 1:
        raise ConfigError(f"--steps {steps}: give 1 or more")
    cfg = load_checked(config, list(overrides or []))
    ds = load_dataset(cfg["data"], cfg["task"], int(cfg.get("seed", 42)))
    if not ds.is_panel:
        raise ConfigError(f"{config}: data.source is not a panel (dates x assets)")
    if split not in ds.splits:
        raise ConfigError(f"--split {split}: the data has {', '.join(ds.splits)}")
    returns, features = _split(ds, split)
    options = env_options(cfg)
    if returns.shape[0] <= options["window"]:
        raise ConfigError(
            f"the {split} split has {returns.shape[0]} dates, not more than rl.window"
        )
    leaks, checked = leaking_steps(returns, features, options, steps)
    if leaks:
        sys.stderr.write(
            f"runlab: leak: the observation at {len(leaks)} of {checked} dates changed when "
            f"the rows after them did (first: date index {leaks[0]} of the {split} split)\n"
        )
        raise typer.Exit(1)
    sys.stdout.write(
        f"no leak: {checked} dates of the {split} split checked; each observation is the same "
        "when every later row is shuffled and rescaled\n"
    )


def register(app: typer.Typer) -> None:
    app.command("rl")(rl)
