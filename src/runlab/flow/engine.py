"""Running a flow: each step's cache key, the flow's state file, the steps themselves (each in
its own process: the flow itself never imports torch), and why a step is or is not cached.

A step's key hashes its kind, its fields (references to other steps stand for those steps'
keys), the content of its declared ``inputs`` and ``code`` paths, a ``run`` step's resolved
config (Hydra's defaults and all) and the content of its ``data.source`` file, and the keys of
the steps it needs. Not the whole repository's git state: any commit would invalidate every
step; the git commit and dirty state are recorded with each run as provenance instead.

The state, ``<runs root>/flows/<name>/state.json``, is rewritten (atomically) after each step:
a flow killed mid-way starts again from the first step not recorded. Each step runs under its
own lock file (``flock``: the kernel releases it when its holder dies), never one lock for the
flow: two flows sharing a step wait for each other on that step alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runlab import _io
from runlab.errors import ConfigError
from runlab.flow.results import FlowFailed, content, finished, made, over_seeds, ranked
from runlab.flow.spec import REFERENCE, Flow, Step

__all__ = ["FlowFailed", "Flows", "run_flow"]


class Flows:
    """One flow's keys and state under a runs root."""

    def __init__(self, flow: Flow, root: Path) -> None:
        self.flow, self.root = flow, root
        self.folder = root / "flows" / flow.name
        self.state_path = self.folder / "state.json"
        self._recording = threading.Lock()
        self.parts: dict[str, dict[str, str]] = {}  # each step's key, part by part
        self.keys: dict[str, str] = {}
        for step in flow.steps.values():
            self.parts[step.name] = self._parts(step)
            joined = json.dumps(self.parts[step.name], sort_keys=True).encode()
            self.keys[step.name] = hashlib.sha256(joined).hexdigest()

    # ---------------------------------------------------------------- keys
    def _parts(self, step: Step) -> dict[str, str]:
        base = self.flow.base
        fields = {k: v for k, v in step.spec.items() if k not in ("cache", "launcher")}
        # references stay as text (the upstream keys are parts); where it runs is not a part
        parts = {"kind": step.kind, "fields": _digest(fields)}
        for key in ("inputs", "code"):
            for rel in step.spec.get(key, []):
                parts[f"{key}: {rel}"] = content(base / str(rel), step, key)
        if step.kind in ("sweep", "tune"):  # the base config, Hydra's defaults and all; the
            parts["config"] = _digest(_resolved_config(base, step, self._static, []))  # grid
        if step.kind == "run":
            config = _resolved_config(base, step, self._static)
            parts["config"] = _digest(config)
            source = (config.get("data") or {}).get("source")
            made = {str(p) for p in self._outputs()}  # an upstream's output: its key covers it
            local = isinstance(source, str) and source and (base / source).is_file()
            if local and str(base / str(source)) not in made:
                parts[f"data.source: {source}"] = content(base / str(source), step, "data")
        for needed in step.needs:
            parts[f"upstream: {needed}"] = self.keys[needed]
        return parts

    def _outputs(self) -> list[Path]:
        return [
            self.flow.base / str(path)
            for step in self.flow.steps.values()
            for path in (step.spec.get("outputs") or {}).values()
        ]

    def _static(self, text: str) -> str:
        """A field's text for keys: output paths (known before anything runs) substituted,
        other references standing for the referenced step's key."""

        def one(match: Any) -> str:
            name, what = match.group(1), match.group(2)
            out = self.flow.steps[name].spec.get("outputs") or {}
            if what.startswith("out.") and what[4:] in out:
                return str(self.flow.base / str(out[what[4:]]))
            return f"key-{self.keys.get(name, '')[:16]}"

        return REFERENCE.sub(one, text)

    # ---------------------------------------------------------------- state
    def state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"steps": {}}
        steps = data.get("steps") if isinstance(data, dict) else None
        if not isinstance(steps, dict):  # a damaged state: every step runs again
            return {"steps": {}}
        return {**data, "steps": {k: v for k, v in steps.items() if isinstance(v, dict)}}

    def record(self, name: str, entry: dict[str, Any]) -> None:
        """One step's entry into the state: read, changed and written again under a lock
        (steps end together in threads of this flow, or in another process)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._recording, open(self.folder / "state.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            state = self.state()
            state["steps"][name] = entry
            text = json.dumps(state, indent=2, default=str) + "\n"
            _io.atomic_write_text(self.state_path, text)

    def hit(self, step: Step, state: dict[str, Any]) -> dict[str, Any] | None:
        """The step's recorded result, when its key is the same and what it made is there."""
        entry = state["steps"].get(step.name)
        if not step.cached or not entry or entry.get("status") != "done":
            return None
        if entry.get("key") != self.keys[step.name]:
            return None
        result = entry.get("result")
        try:
            if step.kind == "cmd":
                made = result["hashes"].items()
                ok = all(content(Path(p), step, "outputs") == h for p, h in made)
            elif step.kind in ("run", "sweep", "tune", "backtest"):
                ok = (Path(result["run_dir"]) / "run.json").is_file()
            else:
                ok = (Path(result["dir"]) / "MANIFEST.json").is_file()
        except (KeyError, TypeError, AttributeError, OSError):  # a damaged entry: not a hit
            return None
        return result if ok else None

    def explain(self) -> list[tuple[str, str]]:
        """For each step: cached, or why not (the parts of its key that changed)."""
        state, out = self.state(), []
        for step in self.flow.steps.values():
            entry = state["steps"].get(step.name) or {}
            if not step.cached:
                why = "a gate" if step.kind == "gate" else "cache: never"
                out.append((step.name, f"runs every time ({why})"))
            elif self.hit(step, state) is not None:
                out.append((step.name, "cached"))
            elif not entry:
                out.append((step.name, "not run yet"))
            elif entry.get("key") == self.keys[step.name] and entry.get("status") == "submitted":
                where = (entry.get("submitted") or {}).get("folder")
                out.append((step.name, f"submitted, not finished: a rerun waits for {where}"))
            elif entry.get("key") == self.keys[step.name] and entry.get("status") != "done":
                out.append((step.name, f"{entry.get('status')} last time: {entry.get('error')}"))
            elif entry.get("key") == self.keys[step.name]:
                out.append((step.name, "ran, but what it made is gone"))
            else:
                was = entry.get("parts") or {}
                now = self.parts[step.name]
                changed = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
                out.append((step.name, "changed: " + ", ".join(changed)))
        return out

    @contextlib.contextmanager
    def lock(self, step: Step) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"{step.name}.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def run_flow(
    flows: Flows, force: set[str], start: str | None, say: Any = print, jobs: int | None = None
) -> dict[str, dict[str, Any]]:
    """Run the flow's steps, each once the steps it needs are done, up to ``jobs`` at a time
    (default: the cores), cached ones skipped. A failure starts nothing new, lets the steps
    already running end, and is raised. Returns each step's result."""
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    flow = flows.flow
    results: dict[str, dict[str, Any]] = {}
    forced = set(force)
    if start is not None:  # --from: that step and everything after it in the order
        names = list(flow.steps)
        forced |= set(names[names.index(start) :])
    pending = dict(flow.steps)
    failure: FlowFailed | None = None
    with ThreadPoolExecutor(jobs or os.cpu_count() or 1) as pool:
        running: dict[Future[dict[str, Any]], str] = {}
        while running or (pending and failure is None):
            if failure is None:
                for step in [s for s in pending.values() if all(n in results for n in s.needs)]:
                    del pending[step.name]
                    snapshot = dict(results)  # what it may reference: all it needs is in
                    job = pool.submit(_one, flows, step, step.name in forced, snapshot, say)
                    running[job] = step.name
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for job in finished:
                name = running.pop(job)
                try:
                    results[name] = job.result()
                except FlowFailed as err:
                    failure = failure or err
    if failure is not None:
        raise failure
    return results


def _one(
    flows: Flows, step: Step, forced: bool, results: dict[str, Any], say: Any
) -> dict[str, Any]:
    with flows.lock(step):
        state = flows.state()  # again, under the lock: another flow may have run it
        cached = None if forced else flows.hit(step, state)
        if cached is not None:
            say(f"{step.name}: cached")
            return cached
        t0 = time.monotonic()
        entry = {"key": flows.keys[step.name], "parts": flows.parts[step.name]}
        before = state["steps"].get(step.name) or {}
        same = not forced and before.get("key") == entry["key"]
        jobs = before.get("submitted") if same and before.get("status") == "submitted" else None

        def submitted(what: dict[str, Any]) -> None:  # jobs a rerun finds again
            flows.record(step.name, {**entry, "status": "submitted", "submitted": what})
            say(f"{step.name}: submitted to {step.launcher[0]} ({what['folder']})")

        try:
            if step.launcher[0] != "local":
                from runlab.flow.cluster import on_launcher

                result = on_launcher(flows, step, _resolver(step, results), jobs, submitted)
            else:
                result = _execute(flows, step, results)
        except FlowFailed as err:
            flows.record(step.name, {**entry, "status": "failed", "error": str(err)})
            raise
        seconds = round(time.monotonic() - t0, 3)
        flows.record(step.name, {**entry, "status": "done", "result": result, "seconds": seconds})
        say(f"{step.name}: done in {seconds:.1f}s")
        return result


def _resolver(step: Step, results: dict[str, Any]) -> Any:
    """A field's text with each reference replaced by the referenced step's result."""

    def resolve(text: str) -> str:
        def one(match: Any) -> str:
            value: Any = results.get(match.group(1), {})
            for part in match.group(2).split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if value is None:
                raise FlowFailed(f"step {step.name}: {match.group(0)} has no value")
            return str(value)

        return REFERENCE.sub(one, text)

    return resolve


def _execute(flows: Flows, step: Step, results: dict[str, Any]) -> dict[str, Any]:
    base = flows.flow.base
    resolve = _resolver(step, results)
    if step.kind == "cmd":
        return _cmd(base, step, resolve)
    if step.kind == "run":
        return _run(flows, step, resolve)
    if step.kind in ("sweep", "tune"):
        return _search(flows, step, resolve)
    if step.kind == "backtest":
        return _backtest(flows, step, results, resolve)
    if step.kind == "package":
        return _package(flows, step, results)
    return _gate(step, results)


def _cmd(base: Path, step: Step, resolve: Any) -> dict[str, Any]:
    proc = subprocess.run(resolve(str(step.spec["cmd"])), shell=True, cwd=base)
    if proc.returncode != 0:
        raise FlowFailed(f"step {step.name}: command exited {proc.returncode}")
    return made(base, step)


def _run(flows: Flows, step: Step, resolve: Any) -> dict[str, Any]:
    """One run, or one per seed (``seeds: [1, 2, 3]``): the step's run is the first seed's,
    its metrics the mean over the seeds of each number (and ``<key>_std``), ``runs`` all."""
    seeds: list[int | None] = [int(s) for s in step.spec.get("seeds") or []] or [None]
    return over_seeds([_one_run(flows, step, resolve, seed) for seed in seeds], seeds)


def _one_run(flows: Flows, step: Step, resolve: Any, seed: int | None) -> dict[str, Any]:
    flow = flows.flow
    command = [sys.executable, "-m", "runlab", "run", str(flow.base / str(step.spec["config"]))]
    command += [resolve(str(o)) for o in step.spec.get("overrides", [])]
    command += ["-o", str(flows.root), "-f", "json", "-n", step.name]
    command += ["--tag", f"flow={flow.name}", "--tag", f"flow_step={step.name}"]
    if seed is not None:
        command += ["--seed", str(seed)]
    proc = subprocess.run(command, cwd=flow.base, stdout=subprocess.PIPE, text=True)
    try:
        done = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        done = {}
    if proc.returncode != 0 or done.get("status") != "finished":
        ended = done.get("status") or f"with exit code {proc.returncode}"
        raise FlowFailed(f"step {step.name}: runlab run ended {ended}")
    return finished(Path(done["run_dir"]))


def _search(flows: Flows, step: Step, resolve: Any) -> dict[str, Any]:
    """A sweep's grid or a study's trials; the result is the best finished run."""
    flow = flows.flow
    command = [sys.executable, "-m", "runlab", step.kind, str(flow.base / str(step.spec["config"]))]
    command += [resolve(str(o)) for o in step.spec.get("overrides", [])]
    command += [f"++tags.flow={flow.name}", f"++tags.flow_step={step.name}"]
    command += ["-o", str(flows.root), "-f", "json"]
    if step.kind == "tune":
        command += ["--study-name", f"{flow.name}-{step.name}-{flows.keys[step.name][:8]}"]
        command += ["-n", str(int(step.spec.get("trials") or 10))]
        if step.spec.get("seed") is not None:
            command += ["--seed", str(int(step.spec["seed"]))]
    proc = subprocess.run(command, cwd=flow.base, stdout=subprocess.PIPE, text=True)
    try:
        done = json.loads(proc.stdout)
    except ValueError:
        done = {}
    best, runs = ranked(step.kind, done)
    if proc.returncode != 0 or not best:
        raise FlowFailed(f"step {step.name}: runlab {step.kind} gave no finished run")
    return {**finished(flows.root / best[0]), "runs": runs}


def _backtest(flows: Flows, step: Step, results: dict[str, Any], resolve: Any) -> dict[str, Any]:
    source = results[str(step.spec["run"])]
    split = str(step.spec.get("split") or "test")
    command = [sys.executable, "-m", "runlab", "backtest", source["run_dir"], "--split", split]
    command += ["-f", "json", "--checkpoint", str(step.spec.get("checkpoint") or "best")]
    if step.spec.get("data"):
        command += ["--data", str(flows.flow.base / resolve(str(step.spec["data"])))]
    for key, value in (step.spec.get("options") or {}).items():
        command += [f"--{str(key).replace('_', '-')}", resolve(str(value))]
    proc = subprocess.run(command, cwd=flows.flow.base, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise FlowFailed(f"step {step.name}: runlab backtest exited {proc.returncode}")
    try:
        metrics = json.loads(proc.stdout)
    except ValueError:
        metrics = {}
    shown = metrics if isinstance(metrics, dict) else {}
    return {"run": source["run"], "run_dir": source["run_dir"], "metrics": shown}


def _package(flows: Flows, step: Step, results: dict[str, Any]) -> dict[str, Any]:
    source = results[str(step.spec["run"])]
    target = flows.folder / "packages" / f"{step.name}-{flows.keys[step.name][:12]}"
    if target.exists():
        import shutil

        shutil.rmtree(target)
    command = [sys.executable, "-m", "runlab", "package", source["run_dir"], "-o", str(target)]
    command += ["--checkpoint", str(step.spec.get("checkpoint") or "best")]
    if subprocess.run(command, stdout=subprocess.DEVNULL).returncode != 0:
        raise FlowFailed(f"step {step.name}: runlab package failed")
    return {"dir": str(target)}


def _gate(step: Step, results: dict[str, Any]) -> dict[str, Any]:
    from runlab.tracking.expr import parse

    expression = parse(str(step.spec["when"]))

    def lookup(path: tuple[str, ...]) -> Any:
        value: Any = {"steps": results}
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        return value

    if not expression.matches(lookup):
        raise FlowFailed(f"gate {step.name} stopped the flow: {step.spec['when']} is false")
    return {"passed": True}


# ------------------------------------------------------------------------- helpers
def _resolved_config(
    base: Path, step: Step, static: Any, given: list[str] | None = None
) -> dict[str, Any]:
    from runlab.config import load_config

    raw = step.spec.get("overrides", []) if given is None else given
    overrides = [static(str(o)) for o in raw]
    config = base / str(step.spec["config"])
    if not config.is_file():
        raise ConfigError(f"step {step.name}: config {config} does not exist")
    with _cwd(base):
        return dict(load_config(str(config), overrides))


@contextlib.contextmanager
def _cwd(folder: Path) -> Iterator[None]:
    here = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(here)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
