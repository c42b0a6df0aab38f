"""Diagnostics warn once, without being asked; alerts run a command or POST a webhook and a
failing alert never fails the run."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

import runlab
from runlab.monitor.diagnostics import Diagnostics

REPO = Path(__file__).resolve().parents[1]
QUICK = str(REPO / "examples" / "quickstart.yaml")
TINY = ["data.n_samples=512", "trainer.batch_size=64", "model.hidden=[16]", "-f", "json"]
Cli = Callable[..., tuple[int, str, str]]


def codes(run_dir: Path) -> list[str]:
    return [e.get("code") for e in runlab.RunRecord(run_dir).events("on_warning") if e.get("code")]


def test_val_peaked_at_the_first_epoch_while_train_loss_falls(root: Path) -> None:
    with runlab.start_run(root=root) as run:
        diag = Diagnostics(run, "val.loss", epochs=10)
        for epoch, (train, val) in enumerate(
            [(1.0, 0.5), (0.8, 0.6), (0.6, 0.7), (0.5, 0.8), (0.4, 0.9)], start=1
        ):
            diag(epoch, {"train": {"loss": train}, "val": {"loss": val}})
    record = runlab.RunRecord(run.dir)
    warnings = record.events("on_warning")
    assert [w["code"] for w in warnings] == ["val_peaked_early"]  # once, not at every epoch
    assert warnings[0]["epoch"] == 4 and "best at epoch 1" in warnings[0]["message"]
    assert record.metrics["diagnostics"][0]["code"] == "val_peaked_early"


def test_no_drift_warning_when_validation_improves(root: Path) -> None:
    with runlab.start_run(root=root) as run:
        diag = Diagnostics(run, "val.loss", epochs=10)
        for epoch in range(1, 7):
            diag(epoch, {"train": {"loss": 1.0 / epoch}, "val": {"loss": 1.0 / epoch}})
    assert codes(run.dir) == []


def test_prediction_collapse_and_higher_is_better_monitor(root: Path) -> None:
    with runlab.start_run(root=root) as run:
        diag = Diagnostics(run, "val.ic", epochs=10)
        diag(1, {"train": {"loss": 1.0}, "val": {"ic": 0.05, "scale": 0.2}})
        diag(2, {"train": {"loss": 0.9}, "val": {"ic": 0.06, "scale": 0.0}})
    assert codes(run.dir) == ["prediction_collapse"]


def test_lr_reaching_zero_is_reported_by_a_real_run(cli: Cli, root: Path) -> None:
    code, out, err = cli(
        "run",
        QUICK,
        *TINY,
        "trainer.epochs=3",
        "schedule.name=step",
        "schedule.step_size=1",
        "schedule.gamma=0.0",
        "-o",
        root,
    )
    assert code == 0, err
    assert codes(Path(json.loads(out)["run_dir"])) == ["lr_zero"]


def test_skipped_non_finite_steps_are_reported(cli: Cli, root: Path) -> None:
    code, out, err = cli(
        "run",
        QUICK,
        "data.n_samples=512",
        "trainer.epochs=2",
        "trainer.on_nan=skip",
        "~model",
        "+model._target_=tests.helpers.NaNAfter",
        "+model.after=3",
        "+model.every=5",
        "-o",
        root,
        "-f",
        "json",
    )
    assert code == 0, err
    assert codes(Path(json.loads(out)["run_dir"])) == ["nonfinite_grad"]


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_alerts_post_and_run_a_command_on_gate_failure_and_end(
    cli: Cli, tmp_path: Path, root: Path, webhook: str
) -> None:
    sink = tmp_path / "alerts.jsonl"
    command = f'cat >> {sink} && echo "$RUNLAB_ALERT_EVENT $RUNLAB_GATE" >> {tmp_path / "env"}'
    code, out, err = cli(
        "run",
        QUICK,
        *TINY,
        "trainer.epochs=3",
        "-o",
        root,
        '+gates=[{name: hopeless, at_epoch: 2, require: "val.r2 > 2"}]',
        f"alerts.webhook={webhook}",
        f"alerts.command='{command}'",
    )
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    assert [(a["event"], a["status"]) for a in _Hook.received] == [
        ("gate_failed", "running"),
        ("stopped", "stopped"),
    ]
    assert _Hook.received[0]["gate"]["name"] == "hopeless"
    assert {a["run_id"] for a in _Hook.received} == {run_id}
    by_command = [json.loads(line) for line in sink.read_text().splitlines()]
    assert by_command == _Hook.received
    assert (tmp_path / "env").read_text().splitlines() == ["gate_failed hopeless", "stopped "]


def test_failing_alerts_are_warnings_not_failures(cli: Cli, root: Path) -> None:
    code, out, err = cli(
        "run",
        QUICK,
        *TINY,
        "trainer.epochs=1",
        "-o",
        root,
        "alerts.webhook=http://127.0.0.1:9/nothing-listens",
        "alerts.command='exit 3'",
        "alerts.timeout=2",
    )
    assert code == 0, err
    record = runlab.RunRecord(Path(json.loads(out)["run_dir"]))
    assert record.state is runlab.RunState.FINISHED
    messages = [
        e["message"] for e in record.events("on_warning") if e.get("code") == "alert_failed"
    ]
    assert len(messages) == 2
    assert any("command failed on finished: exit code 3" in m for m in messages)
    assert any("webhook failed on finished" in m for m in messages)


def test_bad_webhook_url_is_a_config_error(cli: Cli, root: Path) -> None:
    code, _, err = cli("check", QUICK, "alerts.webhook=ftp://x")
    assert code == 2 and "alerts.webhook" in err


def test_a_failed_run_alerts_with_its_status(cli: Cli, root: Path, webhook: str) -> None:
    code, out, _ = cli(
        "run",
        QUICK,
        "data.n_samples=512",
        "~model",
        "+model._target_=tests.helpers.NaNAfter",
        "+model.after=12",
        f"alerts.webhook={webhook}",
        "-o",
        root,
        "-f",
        "json",
    )
    assert code == 1 and json.loads(out)["status"] == "failed"
    assert [(a["event"], a["status"]) for a in _Hook.received] == [("failed", "failed")]
