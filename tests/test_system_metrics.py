"""Seed 001's system metrics: CPU % and process memory (and GPU utilisation and memory where a
CUDA device is used) sampled off the training thread into system.jsonl, means and peaks in
metrics.json, mirrored to the listeners. Checked against the kernel's own counters."""

from __future__ import annotations

import itertools
import json
import resource
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import runlab
from runlab._io import read_jsonl
from runlab.tracking.records import Listener, StepRecord
from runlab.tracking.run import Run
from runlab.tracking.system import gpu_indices


class Collect(Listener):
    def __init__(self) -> None:
        self.steps: list[StepRecord] = []

    def on_record(self, record: object) -> None:
        if isinstance(record, StepRecord):
            self.steps.append(record)


def _burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


def test_samples_follow_the_process(tmp_path: Path) -> None:
    listener = Collect()
    with Run(tmp_path, "sys", system_interval=0.1, listeners=[listener]) as run:
        time.sleep(0.3)
        ballast = np.ones(300 * 2**20 // 8)  # 300 MiB, touched
        _burn(0.8)  # one core busy for most of a second
        run.log({"loss": 1.0}, step=7)
        time.sleep(0.3)
        del ballast
    rows = read_jsonl(run.dir / "system.jsonl")
    assert len(rows) >= 5 and {"time", "step", "cpu_percent", "rss_mib"} <= set(rows[0])
    summary = runlab.RunRecord(run.dir).metrics["system"]
    peak_rss = summary["rss_mib"]["peak"]
    kernel_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    assert peak_rss <= kernel_peak + 1  # never above the kernel's high-water mark
    assert peak_rss >= rows[0]["rss_mib"] + 250  # and it saw the ballast
    assert summary["cpu_percent"]["peak"] > 50  # the busy loop, on one core
    means = [r["cpu_percent"] for r in rows]
    assert summary["cpu_percent"]["mean"] == pytest.approx(sum(means) / len(means), abs=0.01)
    assert summary["samples"] == len(rows) and summary["interval_s"] == 0.1
    assert any(r["step"] == 7 for r in rows)  # samples carry the step they happened at
    mirrored = [s for s in listener.steps if "system/rss_mib" in s.values]
    assert len(mirrored) == len(rows)
    assert "gpu0_util_percent" not in rows[0]  # a CPU run: no GPU columns


def test_the_sampler_is_off_the_training_thread(tmp_path: Path) -> None:
    seen: list[str] = []
    with Run(tmp_path, "sys", system_interval=0.05) as run:
        original = run._system.sample

        def spy() -> dict:
            seen.append(threading.current_thread().name)
            return original()

        run._system.sample = spy  # type: ignore[method-assign]
        time.sleep(0.3)
    assert "runlab-system" in seen


def test_off_and_from_the_config(tmp_path: Path, cli) -> None:
    with Run(tmp_path, "off", system_interval=0) as run:
        pass
    assert not (run.dir / "system.jsonl").exists()
    assert "system" not in runlab.RunRecord(run.dir).metrics
    quick = Path(__file__).resolve().parents[1] / "examples" / "quickstart.yaml"
    code, out, err = cli(
        "run", quick, "trainer.epochs=1", "system_metrics_s=0.2", "-o", tmp_path, "-f", "json"
    )
    assert code == 0, err
    m = runlab.RunRecord(json.loads(out)["run_dir"]).metrics
    assert m["system"]["interval_s"] == 0.2 and m["system"]["samples"] >= 1


def test_which_gpus_a_device_means(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert gpu_indices("cpu") == [] and gpu_indices(None) == []
    assert gpu_indices("cuda") == [0] and gpu_indices("cuda:1") == [1]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert gpu_indices("cuda:1") == [3] and gpu_indices("cuda:5") == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-abc")
    assert gpu_indices("cuda:0") == ["GPU-abc"]


@pytest.mark.gpu
def test_gpu_columns_on_a_cuda_run(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    pytest.importorskip("pynvml")
    with Run(tmp_path, "gpu", system_interval=0.1, device="cuda:0"):
        x = torch.randn(8192, 8192, device="cuda")
        end = time.perf_counter() + 1.5
        while time.perf_counter() < end:
            x = x @ x
            x = x / x.norm()
        torch.cuda.synchronize()
    rows = read_jsonl(next(tmp_path.glob("*/system.jsonl")))
    assert max(r["gpu0_util_percent"] for r in rows) > 10
    assert max(r["gpu0_memory_mib"] for r in rows) > 256


def test_token_and_step_rates_when_the_loop_reports_tokens(tmp_path: Path) -> None:
    """Seed 001's tokens_per_sec and sec_per_step, from the logged times by hand."""
    with Run(tmp_path, "tokens", system_interval=0) as run:
        for step in range(0, 50, 10):  # logged every 10 steps, 4096 tokens a step
            run.log({"loss": 1.0 / (step + 1), "tokens": 40960}, step=step)
            time.sleep(0.02)
        run.log({"loss": 0.1}, step=60)  # no tokens: no rates
    rows = read_jsonl(run.dir / "steps.jsonl")
    assert "tokens_per_s" not in rows[0] and "tokens_per_s" not in rows[-1]
    for prev, row in itertools.pairwise(rows[:-1]):
        elapsed = row["time"] - prev["time"]
        assert row["tokens_per_s"] == pytest.approx(40960 / elapsed, rel=1e-3)
        assert row["sec_per_step"] == pytest.approx(elapsed / 10, rel=1e-3)
    m = runlab.RunRecord(run.dir).metrics
    span = rows[-2]["time"] - rows[0]["time"]
    assert m["tokens"] == 5 * 40960
    assert m["tokens_per_s"] == pytest.approx(4 * 40960 / span, rel=1e-3)  # after the 1st log
    with Run(tmp_path, "total", system_interval=0) as run:  # a running total works too
        run.log({"tokens_total": 100}, step=1)
        time.sleep(0.02)
        run.log({"tokens_total": 300}, step=2)
    second = read_jsonl(run.dir / "steps.jsonl")[1]
    assert second["tokens_per_s"] == pytest.approx(
        200 / (second["time"] - read_jsonl(run.dir / "steps.jsonl")[0]["time"]), rel=1e-3
    )
