"""The dashboard at scale: `runlab ui` over 10,000 runs.

1. API latency through the real server (uvicorn, HTTP on localhost): the runs page's first
   page (newest first: SQLite sorts and cuts), sorted by a metric, filtered with an
   expression; one run's detail and its series (a run with 100,000 logged steps).
2. First paint in headless Chromium (when /usr/bin/chromium and Playwright are there): from
   navigation to the runs table's first row drawn, cold (new browser context) each time.
3. Side by side: what the MLflow UI's runs table asks its store for on opening an experiment
   (`MlflowClient.search_runs`, 100 newest, SQLite store), in-process, over --mlflow-runs runs.

    python benchmarks/bench_ui.py [--runs 10000] [--repeats 9] [--mlflow-runs 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_index import WHERE, generate
from bench_index import row as timed_row

import runlab

CHROMIUM = "/usr/bin/chromium"


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return bytes(response.read())


def timed(fn: object, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - t0)
    return out


def serve(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "runlab", "ui", str(root), "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            get(url + "/api/info")
            return proc, url
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def first_paint(url: str, repeats: int) -> list[float] | None:
    if not Path(CHROMIUM).exists():
        return None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        for _ in range(repeats):
            context = browser.new_context()
            page = context.new_page()
            t0 = time.perf_counter()
            page.goto(url + "/")
            page.wait_for_selector("#runs tbody tr")
            out.append(time.perf_counter() - t0)
            context.close()
        browser.close()
    return out


def mlflow_first_page(n: int, repeats: int, tmp: Path) -> list[float] | None:
    try:
        from mlflow import MlflowClient
    except ImportError:
        return None
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    make = (
        f"import mlflow\nmlflow.set_tracking_uri({uri!r})\nmlflow.set_experiment('bench')\n"
        f"for i in range({n}):\n"
        "    with mlflow.start_run(run_name=f'bench-{i % 50}'):\n"
        "        mlflow.log_params({'lr': 10 ** -(2 + i % 4), 'depth': 2 + i % 4})\n"
        "        mlflow.log_metrics({'train_loss': 1 / (i + 1), 'val_loss': (i % 97) / 97})\n"
    )
    subprocess.run([sys.executable, "-c", make], check=True, stderr=subprocess.DEVNULL)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("bench")
    assert experiment is not None
    ids = [experiment.experiment_id]
    return timed(
        lambda: client.search_runs(ids, max_results=100, order_by=["attributes.start_time DESC"]),
        repeats,
    )


def long_run(root: Path, steps: int) -> str:
    with runlab.start_run({"optim": {"lr": 1e-3}}, root=root, name="long") as run:
        for step in range(steps):
            run.log({"loss": 1.0 / (1 + step), "grad_norm": 0.5}, step=step)
        for epoch in range(100):
            run.log_epoch(
                epoch, {"train": {"loss": 1 / (epoch + 1)}, "val": {"loss": 1.1 / (epoch + 1)}}
            )
    return run.id


def row(label: str, times: list[float] | None, target: str = "") -> str:
    if times is None:
        return f"| {label}: skipped (not installed) | | | |"
    return timed_row(label, times, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--mlflow-runs", type=int, default=2_000)
    args = parser.parse_args()
    lines = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        root = tmp / "runs"
        generate(root, args.runs)
        long_id = long_run(root, args.steps)
        subprocess.run([sys.executable, "-m", "runlab", "index", str(root)], check=True)
        proc, url = serve(root)
        try:
            get(url + "/api/runs")  # warm: imports, the index's first reconcile
            n = f"{args.runs + 1:,}"
            api = url + "/api/runs?limit=50"
            queries = {
                f"runs page, newest 50 of {n}": api,
                f"runs page sorted by metrics.val_loss ({n})": api + "&sort=metrics.val_loss",
                f"runs page filtered `{WHERE}` ({n})": api
                + "&where="
                + urllib.request.quote(WHERE),
                "one run's detail": f"{url}/api/runs/{long_id}",
                f"one run's series ({args.steps:,} steps x 2, to 1,000 points)": (
                    f"{url}/api/runs/{long_id}/series?points=1000"
                ),
            }
            for label, target in queries.items():
                lines.append(row(f"API: {label}", timed(lambda t=target: get(t), args.repeats)))
            assert json.loads(get(queries["one run's detail"]))["id"] == long_id
            lines.append(
                row(
                    f"Chromium: runs page first paint ({n} runs, cold context)",
                    first_paint(url, args.repeats),
                    "< 1,000",
                )
            )
        finally:
            proc.terminate()
            proc.wait()
        if args.mlflow_runs:
            lines.append(
                row(
                    f"MLflow UI's runs query: search_runs 100 newest of {args.mlflow_runs:,} "
                    "(SQLite, in-process)",
                    mlflow_first_page(args.mlflow_runs, args.repeats, tmp),
                )
            )
    print(
        f"\nmachine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}\n"
    )
    print("| what | median ms | min-max ms | target ms |")
    print("| --- | ---: | ---: | ---: |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
