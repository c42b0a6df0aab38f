"""runlab flow: real steps run twice (the second time all cached), one input byte changed
reruns only what is downstream, a kill -9 mid-flow resumes, gates stop, and bad flows are one
line and exit 2 before anything runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _flow(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "flow.yaml"
    path.write_text(text)
    return path


def _cli(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runlab", *map(str, args)],
        capture_output=True, text=True, timeout=600, cwd=cwd,
    )  # fmt: skip


COUNTING = """
name: counting
steps:
  a:
    cmd: cat a.txt > a.out && echo a >> ran.log
    inputs: [a.txt]
    outputs: {out: a.out}
  b:
    cmd: cat {steps.a.out.out} {steps.a.out.out} > b.out && echo b >> ran.log
    outputs: {out: b.out}
  c:
    cmd: echo c > c.out && echo c >> ran.log
    inputs: [c.txt]
    outputs: {out: c.out}
"""


def _ran(folder: Path) -> list[str]:
    log = folder / "ran.log"
    return log.read_text().split() if log.exists() else []


def test_cached_then_only_downstream_of_a_changed_byte(tmp_path: Path) -> None:
    work = tmp_path / "w"
    flow = _flow(work, COUNTING)
    (work / "a.txt").write_text("hello\n")
    (work / "c.txt").write_text("other\n")
    root = tmp_path / "runs"
    first = _cli("flow", flow, "-r", root)
    assert first.returncode == 0, first.stderr
    assert sorted(_ran(work)) == ["a", "b", "c"]
    again = _cli("flow", flow, "-r", root)
    assert again.returncode == 0 and sorted(_ran(work)) == ["a", "b", "c"]
    assert again.stderr.count("cached") == 3
    (work / "a.txt").write_text("hellO\n")  # one byte
    status = _cli("flow", "status", flow, "-r", root, "--explain")
    lines = dict(line.split(None, 1) for line in status.stdout.splitlines())
    assert lines == {"a": "changed: inputs: a.txt", "b": "changed: upstream: a", "c": "cached"}
    third = _cli("flow", flow, "-r", root)
    assert third.returncode == 0 and sorted(_ran(work)) == ["a", "a", "b", "b", "c"]
    assert (work / "b.out").read_text() == "hellO\nhellO\n"
    (work / "b.out").unlink()  # what a step made is gone: it runs again
    fourth = _cli("flow", flow, "-r", root, "--force", "c")
    assert sorted(_ran(work)) == ["a", "a", "b", "b", "b", "c", "c"], fourth.stderr


def test_a_killed_flow_resumes_after_its_last_recorded_step(tmp_path: Path) -> None:
    work = tmp_path / "w"
    flow = _flow(
        work,
        """
steps:
  first:
    cmd: echo first >> ran.log && echo 1 > first.out
    outputs: {out: first.out}
  slow:
    cmd: >-
      if [ -f go ]; then echo slow >> ran.log && echo 2 > slow.out;
      else touch started && sleep 60; fi
    after: [first]
    outputs: {out: slow.out}
  last:
    cmd: echo last >> ran.log && echo 3 > last.out
    after: [slow]
    outputs: {out: last.out}
""",
    )
    root = tmp_path / "runs"
    child = subprocess.Popen(
        [sys.executable, "-m", "runlab", "flow", str(flow), "-r", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (work / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    state = json.loads((root / "flows" / "flow" / "state.json").read_text())
    assert list(state["steps"]) == ["first"]
    (work / "go").touch()
    done = _cli("flow", flow, "-r", root)
    assert done.returncode == 0, done.stderr
    assert _ran(work) == ["first", "slow", "last"]  # first was not run again


def test_runs_gates_and_packages_of_a_real_flow(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    work = tmp_path / "w"
    flow = _flow(
        work,
        f"""
name: real
steps:
  train:
    kind: run
    config: {REPO / "examples" / "quickstart.yaml"}
    overrides: [trainer.epochs=2, data.n_samples=512]
  good:
    kind: gate
    when: steps.train.metrics.val_loss < 100
  bundle:
    kind: package
    run: train
    after: [good]
  strict:
    kind: gate
    when: steps.train.metrics.val_loss < 0
    after: [bundle]
  never:
    cmd: echo never > never.out
    after: [strict]
    outputs: {{out: never.out}}
""",
    )
    first = _cli("flow", flow, "-r", root)
    assert first.returncode == 1 and "gate strict stopped the flow" in first.stderr
    assert not (work / "never.out").exists()
    state = json.loads((root / "flows" / "real" / "state.json").read_text())
    bundle = Path(state["steps"]["bundle"]["result"]["dir"])
    assert _cli("package", "verify", bundle).returncode == 0
    listed = _cli("ls", root, "-w", 'tags.flow == "real"', "-f", "json")
    assert [r["name"] for r in json.loads(listed.stdout)] == ["train"]
    t0 = time.monotonic()
    again = _cli("flow", flow, "-r", root)
    assert again.returncode == 1 and again.stderr.count("cached") == 2
    assert time.monotonic() - t0 < 10  # nothing trained or packaged again


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("steps:\n  a: {cmd: 'true', after: [b]}\n  b: {cmd: 'true', after: [a]}\n", "cycle"),
        ("steps:\n  a: {cmd: 'echo {steps.zz.out.x}'}\n", "'zz'"),
        ("steps:\n  a: {cmd: 'true', inputs: [nope.txt]}\n", "nope.txt does not exist"),
        ("steps:\n  a: {kind: train, cmd: 'true'}\n", "kind 'train'"),
        ("steps:\n  a: {cmd: 'true', colour: red}\n", "no field 'colour'"),
        (
            "steps:\n  a: {cmd: 'true'}\n  b: {kind: package, run: a}\n",
            "which is not a run, sweep, tune step",
        ),
        ("steps:\n  a: {kind: run}\n", "needs 'config'"),
        ("steps: [a, b]\n", "'steps:' mapping"),
        ("steps:\n  a: {cmd: 'true'\n", "not YAML"),
        ("steps:\n  a: {kind: run, config: missing.yaml}\n", "missing.yaml does not exist"),
        ("launcher: nosuch\nsteps:\n  a: {cmd: 'true'}\n", "launcher 'nosuch'"),
        ("steps:\n  a: {cmd: 'true', launcher: {name: slurm, colour: 1}}\n", "colour"),
        ("steps:\n  a: {cmd: 'true', launcher: [slurm]}\n", "a mapping with name:"),
        ("steps:\n  a: {cmd: 'true', launcher: ray}\n", "local, slurm or htcondor"),
        ("steps:\n  a: {kind: gate, when: 'true', launcher: slurm}\n", "no field 'launcher'"),
        ("hosts: 3\nsteps:\n  a: {cmd: 'true'}\n", "no field 'hosts'"),
    ],
)
def test_a_bad_flow_is_one_line_and_exit_2(tmp_path: Path, text: str, words: str) -> None:
    flow = _flow(tmp_path / "w", text)
    for args in ([flow], ["status", flow]):
        done = _cli("flow", *args, "-r", tmp_path / "runs")
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr
    assert not (tmp_path / "runs").exists()


def test_unknown_force_and_missing_file(tmp_path: Path) -> None:
    flow = _flow(tmp_path / "w", "steps:\n  a: {cmd: 'true'}\n")
    done = _cli("flow", flow, "--force", "b", "-r", tmp_path / "runs")
    assert done.returncode == 2 and "'b'" in done.stderr
    done = _cli("flow", tmp_path / "nothing.yaml", "-r", tmp_path / "runs")
    assert done.returncode == 2 and "does not exist" in done.stderr
    assert not (tmp_path / "runs").exists()


def test_independent_steps_run_at_the_same_time(tmp_path: Path) -> None:
    work = tmp_path / "w"
    flow = _flow(
        work,
        """
steps:
  left: {cmd: 'sleep 1.5 && date +%s.%N > left.out', outputs: {out: left.out}}
  right: {cmd: 'sleep 1.5 && date +%s.%N > right.out', outputs: {out: right.out}}
  both:
    cmd: cat {steps.left.out.out} {steps.right.out.out} > both.out
    outputs: {out: both.out}
""",
    )
    t0 = time.monotonic()
    assert _cli("flow", flow, "-r", tmp_path / "runs", "-j", "2").returncode == 0
    together = time.monotonic() - t0
    assert len((work / "both.out").read_text().split()) == 2
    t0 = time.monotonic()
    done = _cli("flow", flow, "-r", tmp_path / "runs2", "-j", "1")
    assert done.returncode == 0
    assert time.monotonic() - t0 - together > 1.0  # one at a time: a sleep longer
    state = json.loads((tmp_path / "runs" / "flows" / "flow" / "state.json").read_text())
    assert sorted(state["steps"]) == ["both", "left", "right"]  # no entry lost to a race


def test_sweep_tune_and_backtest_steps(tmp_path: Path) -> None:
    examples = REPO / "examples"
    flow = _flow(
        tmp_path / "w",
        f"""
name: kinds
steps:
  grid:
    kind: sweep
    config: {examples / "quickstart.yaml"}
    overrides: [trainer.epochs=1, data.n_samples=256, "optim.lr=0.001,0.01"]
  study:
    kind: tune
    config: {examples / "quickstart.yaml"}
    overrides: [trainer.epochs=1, data.n_samples=256, "optim.lr=interval(0.001,0.01)"]
    trials: 2
    seed: 1
  panel:
    kind: run
    config: {examples / "ranking_panel.yaml"}
    overrides: [trainer.epochs=1]
  bt:
    kind: backtest
    run: panel
    options: {{transaction_cost_bps: 1}}
  ok:
    kind: gate
    when: steps.grid.metrics.val_loss < 100 and steps.bt.metrics.final_value > 0
""",
    )
    root = tmp_path / "runs"
    first = _cli("flow", flow, "-r", root)
    assert first.returncode == 0, first.stderr[-2000:]
    state = json.loads((root / "flows" / "kinds" / "state.json").read_text())["steps"]
    assert len(state["grid"]["result"]["runs"]) == 2 and len(state["study"]["result"]["runs"]) == 2
    grid_best = min(
        state["grid"]["result"]["runs"],
        key=lambda r: json.loads((root / r / "metrics.json").read_text())["val_loss"],
    )
    assert state["grid"]["result"]["run"] == grid_best  # the sweep's best run
    assert (Path(state["bt"]["result"]["run_dir"]) / "artifacts" / "backtest" / "test").is_dir()
    again = _cli("flow", flow, "-r", root)
    assert again.returncode == 0 and again.stderr.count("cached") == 4


def test_a_run_step_over_seeds(tmp_path: Path) -> None:
    flow = _flow(
        tmp_path / "w",
        f"""
steps:
  train:
    kind: run
    config: {REPO / "examples" / "quickstart.yaml"}
    overrides: [trainer.epochs=1, data.n_samples=256]
    seeds: [1, 2, 3]
""",
    )
    root = tmp_path / "runs"
    assert _cli("flow", flow, "-r", root).returncode == 0
    result = json.loads((root / "flows" / "flow" / "state.json").read_text())["steps"]["train"]
    result = result["result"]
    losses = []
    for run_id, seed in zip(result["runs"], [1, 2, 3], strict=True):
        assert json.loads((root / run_id / "run.json").read_text())["seed"] == seed
        losses.append(json.loads((root / run_id / "metrics.json").read_text())["val_loss"])
    assert result["metrics"]["val_loss"] == pytest.approx(sum(losses) / 3)
    assert result["metrics"]["val_loss_std"] == pytest.approx(float(np.std(losses, ddof=1)))


@pytest.mark.parametrize(
    "damage",
    ['{ half', '[1, 2]', '{"steps": [1]}', '{"steps": {"a": 7}}',
     '{"steps": {"a": {"status": "done", "key": "K", "result": {"hashes": [1]}}}}'],
)  # fmt: skip
def test_a_damaged_state_runs_the_steps_again(tmp_path: Path, damage: str) -> None:
    work = tmp_path / "w"
    flow = _flow(
        work, "steps:\n  a: {cmd: 'echo a >> ran.log && echo 1 > a.out', outputs: {out: a.out}}\n"
    )
    root = tmp_path / "runs"
    assert _cli("flow", flow, "-r", root).returncode == 0
    state = root / "flows" / "flow" / "state.json"
    key = json.loads(state.read_text())["steps"]["a"]["key"]
    state.write_text(damage.replace('"K"', json.dumps(key)))
    done = _cli("flow", flow, "-r", root)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert _cli("flow", "status", flow, "-r", root).returncode == 0
    assert _ran(work) == ["a", "a"]
