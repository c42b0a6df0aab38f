"""The runs root, defined once: ``--output-dir`` / ``--root`` when given, else (for the
commands that start runs) the config's ``runs_root``, else ``$RUNLAB_ROOT``, else ``./runs``;
and the names that become folders under it."""

from __future__ import annotations

import os
import re
from pathlib import Path

from runlab.errors import ConfigError

DEFAULT_ROOT = "runs"
ROOT_HELP = "Runs root (default: $RUNLAB_ROOT or ./runs)."
START_ROOT_HELP = "Runs root (default: the config's runs_root, else $RUNLAB_ROOT or ./runs)."


def default_root() -> Path:
    return Path(os.environ.get("RUNLAB_ROOT") or DEFAULT_ROOT)


def check_root(root: Path) -> Path:
    """A runs root that runs can be written under: not a file (``-o`` pointing at one)."""
    if root.exists() and not root.is_dir():
        raise ConfigError(f"runs root {str(root)!r} is a file; give a folder (--output-dir)")
    return root


def runs_root(given: str | os.PathLike[str] | None = None, must_exist: bool = False) -> Path:
    """The runs root: ``given``, else the default; never a file. ``must_exist``: a root given
    explicitly must exist (a reader's; the default may not exist yet)."""
    if given is not None and must_exist and not Path(given).exists():
        raise ConfigError(f"runs root {str(given)!r} does not exist")
    return check_root(Path(given) if given is not None else default_root())


def plain_name(name: str, what: str) -> str:
    """A study or sweep name becomes a folder under the runs root: a name, never a path."""
    if not re.fullmatch(r"[A-Za-z0-9][\w.\-]{0,99}", name) or ".." in name:
        raise ConfigError(
            f"{what} {name!r} must be a name (letters, digits, _ . -, at most 100), not a path"
        )
    return name
