"""How to run a run again as it ran: a checkout of its commit (a git worktree, so the user's own
working tree is not touched), its dirty diff applied (``code/git.diff``), then ``runlab run`` on
its resolved config with its seed, from the same folder of the repository."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runlab._secrets import REDACTED
from runlab.errors import ConfigError


@dataclass
class Step:
    argv: list[str]
    cwd: str | None = None


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # said before the commands, as # lines
    refused: str | None = None  # why --exec would not do what the commands claim


def plan(run: Any, root: Path, dest: Path | None, overrides: list[str]) -> Plan:
    """The commands that rerun ``run`` (a RunRecord) into ``root``."""
    info, path, root = run.info, run.path.resolve(), root.resolve()
    git = info.get("git") if isinstance(info.get("git"), dict) else None
    out = Plan()
    command = [sys.executable, "-m", "runlab", "run", str(path / "config.yaml"), *overrides]
    command += ["--seed", str(info.get("seed", 42)), "-o", str(root)]
    command += ["--run-name", str(info.get("name") or "run"), "--tag", f"reproduces={run.id}"]
    text = (path / "config.yaml").read_text(encoding="utf-8")
    if REDACTED in text and not overrides:
        out.refused = (
            f"the run's config.yaml holds redacted secrets ({REDACTED}): give them again as "
            "overrides (runlab reproduce RUN key=value) or through the environment"
        )
        out.notes.append(out.refused)
    cwd = str(info.get("cwd") or ".")
    if git is None or not git.get("commit") or not git.get("root"):
        out.notes.append("the run did not run in a git repository: its code is as it is now")
        out.steps.append(Step(command, cwd))
        return out
    top = str(git["root"])
    where = dest or Path(tempfile.gettempdir()) / f"runlab-reproduce-{run.id}"
    out.steps.append(Step(["git", "-C", top, "worktree", "add", "--detach", str(where),
                           str(git["commit"])]))  # fmt: skip
    if git.get("diff"):
        out.steps.append(Step(["git", "-C", str(where), "apply", "--binary",
                               str(path / str(git["diff"]))]))  # fmt: skip
    elif git.get("diff_skipped"):
        out.notes.append(f"the run's diff was not kept ({git['diff_skipped']}): the commit's code")
    elif git.get("dirty"):
        out.notes.append("the run's tree was dirty but it kept no diff (an older runlab)")
    try:
        inside = Path(cwd).resolve().relative_to(Path(top).resolve())
    except ValueError:
        inside = Path(".")
    out.steps.append(Step(command, str(where / inside)))
    return out


def execute(steps: list[Step]) -> int:
    """Each step in turn; the first failure's exit code (a git failure: its message, exit 2)."""
    for step in steps:
        if step.argv[0] == "git":
            proc = subprocess.run(step.argv, capture_output=True, text=True)
            if proc.returncode != 0:
                said = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
                raise ConfigError(f"{' '.join(step.argv[:4])}: {said}")
            continue
        return subprocess.run(step.argv, cwd=step.cwd).returncode
    return 0
