"""What every launcher promises (see :class:`runlab.sweep.launchers.BaseLauncher`): each job
runs once and ``on_done`` is called once per job, in the parent process, with that job's
result; jobs are pulled from the iterable lazily, no more than ``jobs`` ahead of the results
(a study asks for its next trial only when a slot is free); an exception in ``on_done`` (a
Ctrl-C) stops the jobs still running, their runs end (not left ``running``), and the exception
reaches the caller."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runlab.contracts._jobs import CONFIG
from runlab.sweep.launchers import BaseLauncher, Job, JobResult
from runlab.tracking.record import load_runs

FINAL = ("finished", "stopped", "preempted", "failed", "pruned")


class LauncherContract:
    """Subclass and implement :meth:`make_launcher`."""

    def make_launcher(self, jobs: int) -> BaseLauncher:
        raise NotImplementedError

    def jobs(self, tmp_path: Path, n: int, sleep: float = 0.0) -> list[Job]:
        config = tmp_path / "contract.yaml"
        config.write_text(CONFIG)
        root = tmp_path / "runs"
        return [
            Job(
                i,
                [
                    str(config),
                    f"x={i}",
                    f"sleep={sleep}",
                    "--output-dir",
                    str(root),
                    "--no-preflight",
                    "--run-name",
                    f"job{i}",
                ],
                str(tmp_path / "logs"),
            )
            for i in range(n)
        ]

    def test_on_done_once_per_job(self, tmp_path: Path) -> None:
        done: list[JobResult] = []
        results = self.make_launcher(2).launch(self.jobs(tmp_path, 3), done.append)
        assert sorted(r.index for r in done) == [0, 1, 2], [r.index for r in done]
        assert sorted(r.index for r in results) == [0, 1, 2]
        assert all(r.status == "finished" and r.run_dir for r in done), done
        values = sorted(r.metrics.get("val_loss") for r in load_runs(tmp_path / "runs"))
        assert values == [0.0, 1.0, 2.0]

    def test_jobs_are_pulled_lazily(self, tmp_path: Path) -> None:
        pulled_with_done: list[int] = []
        done: list[JobResult] = []

        def source() -> Iterator[Job]:
            for job in self.jobs(tmp_path, 3):
                pulled_with_done.append(len(done))
                yield job

        self.make_launcher(1).launch(source(), done.append)
        assert len(done) == 3
        # with one slot, job k is asked for only once k - 1 jobs have reported back
        assert pulled_with_done == [0, 1, 2], pulled_with_done

    def test_interrupt_stops_the_running_jobs(self, tmp_path: Path) -> None:
        jobs = self.jobs(tmp_path, 3)
        jobs[1].args[jobs[1].args.index("sleep=0.0")] = "sleep=120"
        jobs[2].args[jobs[2].args.index("sleep=0.0")] = "sleep=120"
        t0 = time.monotonic()

        def on_done(result: JobResult) -> None:
            raise KeyboardInterrupt  # as a Ctrl-C in the parent while others run

        launcher = self.make_launcher(3)
        raised: Any = None
        try:
            launcher.launch(jobs, on_done)
        except KeyboardInterrupt as err:
            raised = err
        assert raised is not None, "the interrupt did not reach the caller"
        assert time.monotonic() - t0 < 90, "the running jobs were waited for, not stopped"
        deadline = time.monotonic() + 30
        statuses: list[str] = []
        while time.monotonic() < deadline:
            statuses = [r.state.value for r in load_runs(tmp_path / "runs")]
            if len(statuses) >= 1 and all(s in FINAL for s in statuses):
                break
            time.sleep(0.2)
        assert statuses and all(s in FINAL for s in statuses), statuses
