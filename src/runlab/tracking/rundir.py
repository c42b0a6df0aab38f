"""A run directory's files at the two ends of a session: created (or reopened to resume)
before the run starts, and completed when it ends, whatever ended it (a full disk, a second
Ctrl-C, a listener that hangs); the :class:`~runlab.tracking.run.Run` calls these."""

from __future__ import annotations

import contextlib
import functools
import re
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runlab import _io
from runlab._ids import make_run_id
from runlab._provenance import provenance
from runlab._secrets import redact_args
from runlab._yaml import load_yaml, to_yaml
from runlab.errors import exception_text
from runlab.tracking import config_file
from runlab.tracking._stdout import StdoutCapture
from runlab.tracking.heartbeat import STOP_FILE
from runlab.tracking.roots import check_root
from runlab.tracking.scalars import ScalarsCsv
from runlab.tracking.signals import END_CODES, Preempted
from runlab.tracking.state import Pruned, RunState

if TYPE_CHECKING:
    from runlab.tracking.records import RunMeta
    from runlab.tracking.run import Run


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def make_dir(root: Path, name: str) -> tuple[str, Path]:
    check_root(root).mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        run_id = make_run_id(name)
        path = root / run_id
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return run_id, path
    raise RuntimeError(f"could not create a unique run directory under {root}")


def create(run: Run, overrides: Sequence[str] | None, **fields: Any) -> None:
    """A new run directory: run.json (``created``), config.yaml, overrides.yaml (secrets out),
    the event and scalar files, and the reserve that lets the end be written on a full disk."""
    run.id, run.dir = make_dir(run.root, run.name)
    run.info = {
        "id": run.id,
        "name": run.name,
        "status": run.status.value,
        "created": utc_now_iso(),
        "started": None,
        "ended": None,
        "duration_seconds": None,
        **redacted_provenance(run, provenance()),
        **fields,
    }
    config_file.write(run.dir, run.safe_config)
    snapshot_code(run)
    safe_overrides = redact_args(overrides or [], run._secrets)
    _io.atomic_write_text(run.dir / "overrides.yaml", to_yaml(safe_overrides))
    run._events = _io.JsonlAppender(run.dir / "events.jsonl")
    run._scalars = ScalarsCsv(run.dir / "scalars.csv")
    _io.keep_reserve(run.dir)
    run._write_info()


CODE_DIFF = "code/git.diff"


def snapshot_code(run: Run) -> None:
    """A dirty repository's ``git diff HEAD --binary`` as ``code/git.diff`` (the secrets the
    run knows replaced, like everywhere else in the run directory), its size and SHA-256 in
    run.json's ``git``; a diff over the cap is named, not kept (``diff_skipped``). With the
    commit, ``runlab reproduce RUN`` rebuilds the tree the run ran in."""
    import hashlib

    from runlab._provenance import git_diff

    git = run.info.get("git")
    if not isinstance(git, dict) or not git.get("dirty") or not git.get("root"):
        return
    diff = git_diff(str(git["root"]))
    if isinstance(diff, str):
        git["diff_skipped"] = diff
        return
    diff, hidden = redact_diff(diff, run._secrets)
    if hidden:
        git["diff_redacted_lines"] = hidden
    path = run.dir / CODE_DIFF
    path.parent.mkdir(exist_ok=True)
    _io.atomic_write_bytes(path, diff)
    git.update(diff=CODE_DIFF, diff_bytes=len(diff), diff_sha256=hashlib.sha256(diff).hexdigest())


_ASSIGNMENT = re.compile(
    rb"""^\+(\s*(?:export\s+)?["']?([A-Za-z_][\w.-]*)["']?\s*[:=]\s*)(\S.*)$"""
)


def redact_diff(diff: bytes, secrets: set[str]) -> tuple[bytes, int]:
    """The diff without the run's secrets, and without the value of an added line that sets a
    secret-named key (``api_key: ...``, ``export WANDB_API_KEY=...``): such a line still
    applies, with ``***`` for its value. Returns the diff and how many lines were changed."""
    from runlab._secrets import is_secret_key

    for secret in sorted(secrets, key=len, reverse=True):
        diff = diff.replace(secret.encode(), b"***")
    lines, hidden = diff.split(b"\n"), 0
    for i, line in enumerate(lines):
        found = _ASSIGNMENT.match(line) if line.startswith(b"+") else None
        if (
            found
            and not line.startswith(b"+++")
            and is_secret_key(found[2].decode(errors="replace"))
        ):
            quote = found[3][:1] if found[3][:1] in (b'"', b"'") else b""
            lines[i] = b"+" + found[1] + quote + b"***" + quote  # still a string literal
            hidden += 1
    return b"\n".join(lines), hidden


def provenance_of_resume() -> dict[str, Any]:
    info = provenance()
    return {
        **({"scheduler": info["scheduler"]} if "scheduler" in info else {}),
        "pid": info["pid"],
        "host": info["host"],
        "resumed": utc_now_iso(),
        "resume_command": info["command"],
        "ended": None,
        "duration_seconds": None,
    }


def reopen(run: Run, path: Path) -> None:
    """An existing run directory, to continue it: its id, config and summary are the run's,
    its files are appended to, and what a kill left behind (temporary files, a stop request
    of the last session) is cleared."""
    run.dir, run.root = path, path.parent
    run.info = _io.read_json(path / "run.json")
    run.id, run.name = run.info["id"], run.info.get("name") or "run"
    run.tags = dict(run.info.get("tags") or {})
    run._use_config(load_yaml((path / "config.yaml").read_text(encoding="utf-8")) or {})
    try:
        for key, value in _io.read_json(path / "metrics.json").items():
            if key != "error":
                run.summary.set_default_value(key, value)
    except (OSError, ValueError):
        pass
    prior = run.info.get("duration_seconds")
    run._prior_seconds = float(prior) if isinstance(prior, (int, float)) else 0.0
    run.info.update(redacted_provenance(run, provenance_of_resume()))
    with contextlib.suppress(FileNotFoundError):
        (path / STOP_FILE).unlink()  # a stop request ended the last session, not this one
    _io.remove_stale_tmp(path, ("checkpoints", "artifacts", "figures"))  # a kill's leftovers
    run._events = _io.JsonlAppender(path / "events.jsonl")
    run._scalars = ScalarsCsv(path / "scalars.csv")
    run._scalars.load()
    _io.keep_reserve(path)
    run._write_info()


def start(run: Run) -> None:
    """The run is running: run.json says so, stdout is captured, the listeners and the
    heartbeat start, the index knows."""
    run._status = RunState.RUNNING
    run._t0 = time.time()
    run.info["status"] = run._status.value
    run.info.setdefault("started", None)
    run.info["started"] = run.info["started"] or utc_now_iso()
    if run._capture_stdout:
        run._stdout = StdoutCapture(str(run.dir / "stdout.log"))
        run._stdout.start()
    run._write_info()
    resumed = run.info.get("resumed") is not None and run.info.get("started") is not None
    run.event("on_resume" if resumed else "on_start", run_id=run.id, name=run.name, tags=run.tags)
    if run._listeners:
        meta = meta_of(run, resumed)
        for listener in run._listeners:
            listener.on_start(meta)
    run._beat()
    run._heartbeat.start()
    run._system.start()
    update_index(run)


def meta_of(run: Run, resumed: bool) -> RunMeta:
    """What a listener is told about the run when it starts."""
    from runlab.tracking.records import RunMeta, provenance_fields

    config = run.safe_config
    return RunMeta(
        id=run.id,
        name=run.name,
        dir=run.dir.resolve(),
        config=config if isinstance(config, dict) else {"config": config},
        tags=dict(run.tags),
        parent=run.info.get("parent"),
        created=run.info.get("created"),
        resumed=resumed,
        **provenance_fields(run.info),
    )


def finish(run: Run, status: RunState | str | None, exc: BaseException | None) -> None:
    """:meth:`Run.finish`: hooks, error, then the end; an interrupt is raised once it is."""
    if run._ended or run._finishing:
        return
    final = RunState(status) if status is not None else status_for(run, exc)
    run._finishing = True  # from here a SIGTERM is noted, never raised
    interrupt: BaseException | None = None
    try:
        if final is RunState.PREEMPTED or (final is RunState.STOPPED and run.preempt_requested):
            interrupt = run_hooks(run, "preempt hook", run._preempt_hooks)
        if final is RunState.PRUNED and exc is not None:
            run.event("on_pruned", message=exception_text(exc))
        if final is RunState.FAILED and exc is not None:
            _record_error(run, exc)
        if final is RunState.STOPPED and run.stop_reason:
            run.summary.set_default_value("stop_reason", run.stop_reason)
        if interrupt is None:
            ends = [functools.partial(hook, final) for hook in run._end_hooks]
            interrupt = run_hooks(run, "end hook", ends)
    except BaseException as err:  # a Ctrl-C between the steps above, or a full disk
        interrupt = interrupt or (err if not isinstance(err, Exception) else None)
    interrupted = end(run, final)
    if interrupt is not None:
        raise interrupt
    if interrupted:
        raise KeyboardInterrupt


END_CODES.add(finish.__code__)


def _record_error(run: Run, exc: BaseException) -> None:
    error = {
        "type": type(exc).__name__,
        "message": exception_text(exc).partition(": ")[2],
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }
    run.summary["error"] = error
    run.event("on_exception", **error)


def status_for(run: Run, exc: BaseException | None) -> RunState:
    """The final status of a run whose block ended with ``exc`` (None: it returned)."""
    if run.stop_requested and (exc is None or isinstance(exc, (Preempted, KeyboardInterrupt))):
        return RunState.STOPPED
    if exc is None:
        return RunState.PREEMPTED if run.preempt_requested else RunState.FINISHED
    if isinstance(exc, Preempted):
        return RunState.PREEMPTED
    if isinstance(exc, Pruned):
        return RunState.PRUNED
    if isinstance(exc, KeyboardInterrupt):
        return RunState.STOPPED
    if isinstance(exc, SystemExit) and exc.code in (0, None):
        return RunState.FINISHED
    return RunState.FAILED


def run_hooks(run: Run, what: str, hooks: Sequence[Callable[[], Any]]) -> BaseException | None:
    """Call each hook; one that fails is an ``on_warning`` event. SystemExit or
    KeyboardInterrupt (a second Ctrl-C while an alert runs) skips the rest and is returned,
    to be raised once the status is written."""
    for hook in hooks:
        try:
            hook()
        except Exception as err:  # an alert that fails is a warning, never a lost status
            with contextlib.suppress(Exception):
                run.event("on_warning", message=f"{what} failed: {exception_text(err)}")
        except BaseException as err:
            with contextlib.suppress(Exception):
                run.event(
                    "on_warning",
                    message=f"{what}s cut short by {type(err).__name__}; the run still ends",
                )
            return err
    return None


def end(run: Run, status: RunState) -> bool:
    """Write the final status; True when a Ctrl-C came while it was written (noted, not
    raised, so that the files are complete) or cut the wait for the listeners short."""
    run._ended = True
    with run._signals.sigint_noted() as noted:
        run._heartbeat.stop()
        with contextlib.suppress(Exception):
            system = run._system.stop()
            if system:
                run.summary["system"] = system
        ended = time.time()
        session = ended - run._t0
        duration = run._prior_seconds + session  # every session of a resumed run counts
        run.summary.set_default_value("duration_seconds", round(duration, 6))
        with contextlib.suppress(Exception):  # a full disk: the status matters more
            run.event(
                "on_train_end",
                status=status.value,
                duration_seconds=round(duration, 6),
                session_seconds=round(session, 6),
            )
        _write_final_files(run, status, duration)
    if run._listeners:
        from runlab.tracking.records import Final

        final = Final(status.value, run._safe_summary(), run.dir, ended)
        for listener in run._listeners:
            try:
                listener.on_end(final)  # each sink waits at most its own timeout
            except KeyboardInterrupt:  # a Ctrl-C while the mirrors catch up: leave them
                noted.append(signal.SIGINT)
                listener.abandon()
    with contextlib.suppress(Exception):
        run._events.close()
    run._signals.restore()
    if run._stdout is not None:
        with contextlib.suppress(Exception):
            run._stdout.stop()
    with contextlib.suppress(Exception):
        run._beat()  # a last heartbeat carrying the final status
    update_index(run)
    return bool(noted)


def _write_final_files(run: Run, status: RunState, duration: float) -> None:
    """metrics.json, then run.json with the final status; what a full disk refused is in
    ``run.end_problems``, an event and a line on stderr."""
    _io.drop_reserve(run.dir)  # room for the last writes on a full disk
    problems: list[str] = []
    # metrics.json first: a reader that sees the final status also finds the summary.
    try:
        _io.atomic_write_json(run.dir / "metrics.json", run._safe_summary())
    except Exception as err:
        problems.append(f"metrics.json not written ({exception_text(err)})")
    run._status = status
    run.info.update(status=status.value, ended=utc_now_iso(), duration_seconds=round(duration, 6))
    try:
        run._write_info()
    except Exception as err:
        problems.append(f"run.json not written, status stays running ({exception_text(err)})")
    run.end_problems = problems
    if problems:
        text = "; ".join(problems)
        with contextlib.suppress(Exception):
            run.event("on_warning", code="end_not_recorded", message=text)
        with contextlib.suppress(Exception):
            sys.stderr.write(f"runlab: warning: run {run.id}: {text}\n")
    if run._steps is not None:
        with contextlib.suppress(Exception):
            run._steps.close()


def redacted_provenance(run: Run, info: dict[str, Any]) -> dict[str, Any]:
    """The command lines of run.json without the secrets typed on them."""
    for key in ("command", "resume_command"):
        if isinstance(info.get(key), list):
            info[key] = redact_args(info[key], run._secrets)
    return info


def listener_warning(run: Run, sink: str, message: str) -> None:
    """A listener's warning (a sink's, from its own thread): an event and a line on stderr."""
    with contextlib.suppress(Exception):  # after the run's files are closed: nothing to do
        run.event("on_warning", code="sink_failed", sink=sink, message=message)
    with contextlib.suppress(Exception):
        sys.stderr.write(f"runlab: warning: {message}\n")


def update_index(run: Run) -> None:
    """The run's row in the runs root's index (derived: a failure is a warning, not a crash)."""
    if not run._use_index:
        return
    from runlab.tracking.index import RunIndex

    try:
        RunIndex(run.root).upsert_run_dir(run.dir, info=run.info, config=run.safe_config)
    except Exception as err:
        if not run._ended:
            run.event("on_warning", message=f"run index not updated: {err}")
