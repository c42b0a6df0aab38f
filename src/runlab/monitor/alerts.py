"""Alerts: a shell command and/or a webhook, called on gate failures and when a run ends.

The alert is one JSON object: ``{"event", "run_id", "name", "status", "run_dir", "host",
"gates", "gate"?}``. The command gets it on stdin and as ``RUNLAB_ALERT_*`` environment
variables; the webhook gets it as a JSON POST. A failing alert is an ``on_warning`` event.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from typing import Any


class Alerts:
    def __init__(self, cfg: dict[str, Any], run: Any) -> None:
        self.command: str | None = cfg.get("command")
        self.webhook: str | None = cfg.get("webhook")
        self.on = set(cfg.get("on") or [])
        self.timeout = float(cfg.get("timeout") or 10.0)
        self.run = run

    @property
    def enabled(self) -> bool:
        return bool(self.command or self.webhook)

    def gate_failed(self, outcome: dict[str, Any]) -> None:
        self.send("gate_failed", gate=outcome)

    def run_ended(self, status: Any) -> None:
        value = str(getattr(status, "value", status))  # a RunState or its name
        self.send(value, status=value)

    def send(self, event: str, **extra: Any) -> None:
        if not self.enabled or event not in self.on:
            return
        payload = self.payload(event, **extra)
        for name, target, deliver in (
            ("command", self.command, self._run_command),
            ("webhook", self.webhook, self._post),
        ):
            if not target:
                continue
            try:
                deliver(target, payload)
            except Exception as err:  # never a crash: a warning in the run's events
                self.run.event(
                    "on_warning",
                    code="alert_failed",
                    message=f"alert {name} failed on {event}: {err}",
                )

    def payload(self, event: str, **extra: Any) -> dict[str, Any]:
        run = self.run
        return {
            "event": event,
            "run_id": run.id,
            "name": run.name,
            "status": extra.pop("status", "running"),
            "run_dir": str(run.dir),
            "host": run.info.get("host"),
            "gates": run.summary.get("gates") or [],
            **extra,
        }

    def _run_command(self, command: str, payload: dict[str, Any]) -> None:
        env = {
            **os.environ,
            "RUNLAB_ALERT_EVENT": payload["event"],
            "RUNLAB_RUN_ID": payload["run_id"],
            "RUNLAB_RUN_NAME": payload["name"],
            "RUNLAB_RUN_STATUS": payload["status"],
            "RUNLAB_RUN_DIR": payload["run_dir"],
            "RUNLAB_GATE": (payload.get("gate") or {}).get("name", ""),
        }
        done = subprocess.run(
            command,
            shell=True,
            input=json.dumps(payload) + "\n",
            text=True,
            env=env,
            capture_output=True,
            timeout=self.timeout,
            check=False,
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
            raise RuntimeError(f"exit code {done.returncode} {tail[0]}".strip())

    def _post(self, url: str, payload: dict[str, Any]) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook {url!r} is not an http(s) URL")
        request = urllib.request.Request(
            url,
            data=json.dumps(payload).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "runlab"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            response.read()
