"""Warm processes for runs: each run of a sweep or study still gets a process of its own (GPU
memory released at its end, a segfault or an out-of-memory kill ends only that run), but the
process is forked from a server that has already imported torch, NumPy, Hydra, matplotlib and
runlab's trainer, so a run pays none of those imports.

The server is Python's ``multiprocessing`` fork server: a fresh interpreter started on the
first run and kept for the rest, never the submitting process itself, so nothing the submitter
did (initialised CUDA, started threads) is inherited; the server imports but never runs a
tensor operation, and never initialises CUDA. Where there is no fork server (Windows), where
``RUNLAB_WARM=0`` asks for it, or where the server cannot start, runs start as fresh
``python -m runlab run`` processes as before; each run's events say which it got
(``on_process``)."""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import runpy
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

PRELOAD = "runlab.sweep._preload"
PROCESS_ENV = "RUNLAB_PROCESS"  # how this run's process started: "warm" or "fresh: <reason>"


def _fresh_reason() -> str | None:
    """Why runs cannot be forked from a warm server here, or None when they can."""
    if os.environ.get("RUNLAB_WARM", "1").strip().lower() in ("0", "false", "no", "off"):
        return "RUNLAB_WARM=0"
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return f"no fork server on {sys.platform}"
    return None


class Child:
    """A run's process, forked warm or started fresh, with Popen's interface (``pid``,
    ``poll``, ``wait``, ``send_signal``; a negative return code is the signal that ended it)."""

    def __init__(self, proc: Any, warm: bool) -> None:
        self.proc, self.warm = proc, warm
        self.pid: int = proc.pid

    def poll(self) -> int | None:
        if not self.warm:
            code: int | None = self.proc.poll()
            return code
        return self.proc.exitcode if not self.proc.is_alive() else None

    def wait(self, timeout: float | None = None) -> int | None:
        if not self.warm:
            try:
                code: int | None = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
            return code
        self.proc.join(timeout)
        return self.poll()

    @property
    def sentinel(self) -> int | None:
        """A descriptor that becomes readable when the process ends (warm ones only)."""
        return int(self.proc.sentinel) if self.warm else None

    def send_signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # ended already
            os.kill(self.pid, sig)


class RunStarter:
    """Starts ``runlab ARGS --format json`` processes whose stdout and stderr go to files.
    One per launcher; the fork server is started on the first run and shared by all."""

    def __init__(self) -> None:
        self.reason = _fresh_reason()
        self._ctx: Any = None

    def start(
        self,
        args: list[str],
        out: str,
        err: str,
        env: dict[str, str],
        append: bool = False,
        cwd: str | None = None,
    ) -> Child:
        """The process's stdout and stderr go to the files ``out`` and ``err`` (truncated, or
        appended to); it runs in ``cwd`` (default: this process's)."""
        cwd = cwd or os.getcwd()
        if self.reason is None:
            try:
                return self._fork(args, (out, err, append), env, cwd)
            except Exception as exc:  # the server could not start: fresh from now on
                self.reason = f"the warm server did not start ({type(exc).__name__}: {exc})"
                sys.stderr.write(f"runlab: runs start as fresh processes: {self.reason}\n")
        mode = "ab" if append else "wb"
        with open(out, mode) as out_fh, open(err, mode) as err_fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "runlab", *args, "--format", "json"],
                stdout=out_fh,
                stderr=err_fh,
                env={**env, PROCESS_ENV: f"fresh: {self.reason}"},
                cwd=cwd,
            )
        return Child(proc, warm=False)

    def _fork(
        self, args: list[str], files: tuple[str, str, bool], env: dict[str, str], cwd: str
    ) -> Child:
        if self._ctx is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload([PRELOAD])
            self._ctx = ctx
        proc = self._ctx.Process(
            target=run_in_child,
            args=(args, *files, env, cwd),
            name="runlab-run",
        )
        with _main_hidden():
            proc.start()
        return Child(proc, warm=True)


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """multiprocessing re-imports the submitter's ``__main__`` in each child (by path, or by
    module name under ``python -m``) so that pickled functions from it resolve; a script that
    calls runlab without an ``if __name__ == "__main__":`` guard would then run again in every
    child. The child needs nothing from it (its target is in this module): hide it while the
    child is prepared."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved: dict[str, Any] = {
        k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__
    }
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.update(saved)
        if "__spec__" not in saved:
            main.__dict__.pop("__spec__", None)


def wait_any(children: list[Child], timeout: float) -> None:
    """Until one of ``children`` ends or ``timeout`` seconds pass: at once for warm ones (their
    sentinels), by polling for fresh ones."""
    sentinels = [c.sentinel for c in children if c.sentinel is not None]
    if sentinels and len(sentinels) == len(children):
        multiprocessing.connection.wait(sentinels, timeout)
    else:
        time.sleep(min(timeout, 0.05))


def run_in_child(
    args: list[str], out: str, err: str, append: bool, env: dict[str, str], cwd: str
) -> None:
    """In the forked process: the submitter's environment, working directory and output files,
    then ``runlab ARGS --format json`` as its command line would run it (the exit status is
    the command's)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, flags, 0o644)
        os.dup2(target, fd)
        os.close(target)
    os.environ.clear()
    os.environ.update({**env, PROCESS_ENV: "warm"})
    os.chdir(cwd)
    # what a fresh interpreter would put first on sys.path: the submitter's PYTHONPATH
    extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[1:1] = [os.path.abspath(p) for p in extra if os.path.abspath(p) not in sys.path]
    signal.signal(signal.SIGINT, signal.default_int_handler)
    threads = env.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        import torch

        torch.set_num_threads(int(threads))  # torch read the server's environment
    sys.argv = ["runlab", *args, "--format", "json"]
    try:
        runpy.run_module("runlab", run_name="__main__", alter_sys=True)  # python -m runlab
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
