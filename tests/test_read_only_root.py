"""A runs root on a read-only file system (a tmpfs remounted read-only; skipped where
mounting is not allowed): every read command works without the index, which is a cache, and
`runlab index` says truthfully that it wrote none (it named an index.db it had not written)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import runlab
from tests.conftest import tmpfs


@pytest.fixture
def read_only_root(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "ro", "16m") as disk:
        root = disk / "runs"
        for name, loss in (("alpha", 0.5), ("beta", 0.4)):
            with runlab.start_run({"lr": 0.1}, root=root, name=name) as run:
                print("hello from", name)
                run.log_epoch(0, {"val": {"loss": loss}})
        for stale in root.glob("index.db*"):  # as if written by a runlab without an index
            stale.unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        with pytest.raises(OSError):
            (root / "probe").write_text("x")
        yield root


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ls", "{root}"], "alpha"),
        (["ls", "{root}", "-w", "metrics.val_loss < 0.45"], "beta"),
        (["status", "{root}"], "alpha"),
        (["show", "alpha", "-r", "{root}"], "lr: 0.1"),
        (["compare", "alpha", "beta", "-r", "{root}"], "0.4"),
        (["diff", "alpha", "beta", "-r", "{root}"], "val_loss"),
        (["export", "{root}"], "config.lr"),
        (["report", "{root}"], "no backtests"),
        (["watch", "alpha", "-r", "{root}", "--once"], "0.5"),
        (["logs", "alpha", "-r", "{root}"], "hello from alpha"),
        (["index", "{root}"], "read 2 runs"),
    ],
)
def test_read_commands_work_on_a_read_only_root(
    cli, read_only_root: Path, args: list[str], expected: str
) -> None:
    code, out, err = cli(*[a.format(root=read_only_root) for a in args])
    assert code == 0, err
    assert expected in out, out
    assert "Traceback" not in err
    if args[0] == "index":
        assert "was not written" in out and "indexed" not in out
