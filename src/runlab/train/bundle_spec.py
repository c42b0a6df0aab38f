"""What ``runlab package`` accepts, checked before torch is imported (a bad flag is a one-line
error in a fraction of a second)."""

from __future__ import annotations

from pathlib import Path

from runlab.errors import ConfigError

FORMATS = ("pt2", "onnx")


def check_target(out: Path, formats: tuple[str, ...]) -> None:
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ConfigError(f"--formats {','.join(bad)}: choose from {', '.join(FORMATS)}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--output {out} exists and is not empty: choose another or remove it")
