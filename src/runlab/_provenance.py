"""Where a run came from: host, command line, versions, git commit and dirty flag."""

from __future__ import annotations

import getpass
import os
import platform
import socket
import subprocess
import sys
from typing import Any

from runlab._version import __version__


def git_info(cwd: str | None = None) -> dict[str, Any] | None:
    """Commit, dirty flag and top folder of the repository holding ``cwd``, or None outside a
    repository."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD", "--show-toplevel"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.split("\n")
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head[0].strip(), "dirty": bool(status.strip()), "root": head[1].strip()}


DIFF_CAP = 10 * 1024 * 1024  # a dirty tree's diff larger than this is not kept (named instead)


def git_diff(top: str) -> bytes | str:
    """``git diff HEAD --binary`` of the repository at ``top`` (tracked files: what a checkout
    of the commit lacks), or why there is none to keep."""
    try:
        proc = subprocess.run(
            ["git", "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff"],
            cwd=top,
            capture_output=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as err:
        return f"git diff failed ({type(err).__name__})"
    if len(proc.stdout) > DIFF_CAP:
        return f"the diff is {len(proc.stdout) / 2**20:.1f} MiB, over the {DIFF_CAP >> 20} MiB cap"
    return proc.stdout


def versions() -> dict[str, str]:
    """Python and runlab versions; torch only when the program already imported it."""
    out = {"python": platform.python_version(), "runlab": __version__}
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch"] = str(getattr(torch, "__version__", "unknown"))
    return out


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


def scheduler_identity() -> dict[str, Any] | None:
    """The cluster job this process runs in: scheduler, job id, array index, node (from the
    environment: runlab's own RUNLAB_SCHEDULER/RUNLAB_JOB_ID/RUNLAB_ARRAY_INDEX, which an
    HTCondor job of runlab's gets, or Slurm's SLURM_*); None outside a scheduler's job."""
    env = os.environ
    if env.get("RUNLAB_SCHEDULER"):
        name, job = env["RUNLAB_SCHEDULER"], env.get("RUNLAB_JOB_ID")
        task = env.get("RUNLAB_ARRAY_INDEX")
        node = env.get("RUNLAB_NODE") or socket.gethostname()
    elif env.get("SLURM_JOB_ID"):
        array, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
        name, job = "slurm", f"{array}_{task}" if array and task else env["SLURM_JOB_ID"]
        node = env.get("SLURMD_NODENAME") or socket.gethostname()
    else:
        return None
    return {
        "name": name,
        "job_id": job,
        "array_index": int(task) if task and task.isdigit() else None,
        "node": node,
    }


def provenance() -> dict[str, Any]:
    job = scheduler_identity()
    launched = os.environ.get("RUNLAB_LAUNCHED_BY")  # a launch from the dashboard's queue
    return {
        **({"scheduler": job} if job else {}),
        **(
            {"launched_by": launched, "queue_entry": os.environ.get("RUNLAB_QUEUE_ENTRY")}
            if launched
            else {}
        ),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "user": _user(),
        "cwd": os.getcwd(),
        "command": [sys.executable, *sys.argv],
        "git": git_info(),
        "versions": versions(),
    }
