"""The dashboard's API (`runlab ui`), through FastAPI's TestClient against real run directories."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runlab
from runlab._io import read_jsonl
from runlab.finance.backtest import backtest
from runlab.web.downsample import min_max_buckets
from tests.web_helpers import make_run

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from runlab.cli.ui import is_loopback
from runlab.web.app import create_app

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Any]:
    root = tmp_path / "runs"
    a = make_run(root, "small-lr", 1e-4, [1.0, 0.8, 0.7], capture_stdout=True)
    b = make_run(root, "big-lr", 1e-2, [0.9, 0.5, 0.4])
    c = make_run(root, "mid-lr", 1e-3, [0.95, 0.6, 0.55])
    return {"root": root, "a": a.id, "b": b.id, "c": c.id}


@pytest.fixture
def client(runs: dict[str, Any]) -> TestClient:
    return TestClient(create_app(runs["root"], TOKEN))


def test_runs_page_has_key_metric_and_param_columns(client: TestClient, runs: dict[str, Any]):
    page = client.get("/api/runs").json()
    assert page["total"] == 3
    assert "optim.lr" in page["param_columns"]
    assert "model.hidden" not in page["param_columns"]  # the same in every run
    assert "val_loss" in page["metric_columns"]
    assert [r["id"] for r in page["rows"]] == [runs["c"], runs["b"], runs["a"]]  # newest first
    row = page["rows"][0]
    assert row["status"] == "finished" and row["params"]["optim.lr"] == 1e-3


def test_runs_sort_by_metric_filter_and_paging(client: TestClient, runs: dict[str, Any]):
    by_loss = client.get("/api/runs", params={"sort": "metrics.val_loss"}).json()
    assert [r["id"] for r in by_loss["rows"]] == [runs["b"], runs["c"], runs["a"]]
    desc = client.get("/api/runs", params={"sort": "-config.optim.lr"}).json()
    assert [r["id"] for r in desc["rows"]] == [runs["b"], runs["c"], runs["a"]]
    filtered = client.get(
        "/api/runs", params={"where": "config.optim.lr >= 1e-3 and metrics.val_loss < 0.5"}
    ).json()
    assert [r["id"] for r in filtered["rows"]] == [runs["b"]] and filtered["total"] == 1
    page2 = client.get("/api/runs", params={"sort": "name", "limit": 2, "offset": 2}).json()
    assert page2["total"] == 3 and [r["name"] for r in page2["rows"]] == ["small-lr"]
    filtered_page = client.get(
        "/api/runs", params={"where": "status == 'finished'", "sort": "name", "offset": 1}
    ).json()
    assert [r["name"] for r in filtered_page["rows"]] == ["mid-lr", "small-lr"]


def test_a_damaged_run_directory_is_named_not_fatal(client: TestClient, runs: dict[str, Any]):
    broken = runs["root"] / "20261122-000000-broken-0000"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")
    page = client.get("/api/runs").json()
    assert page["total"] == 3 and any("broken" in w for w in page["warnings"])


def test_a_bad_filter_is_a_400_naming_the_problem(client: TestClient):
    response = client.get("/api/runs", params={"where": "metrics.val_loss <"})
    assert response.status_code == 400
    assert "expression" in response.json()["detail"].lower()


def test_run_detail_series_and_stdout(client: TestClient, runs: dict[str, Any]):
    detail = client.get(f"/api/runs/{runs['a']}").json()
    assert detail["status"] == "finished" and detail["name"] == "small-lr"
    assert detail["config"]["optim"]["lr"] == 1e-4
    assert [f["path"] for f in detail["figures"]] == ["figures/losses.png"]
    paths = {f["path"] for f in detail["files"]}
    assert {"run.json", "artifacts/predictions.csv", "scalars.csv"} <= paths
    series = client.get(f"/api/runs/{runs['a']}/series").json()
    assert series["epoch"]["loss"]["val"] == [[0, 1, 2], [1.0, 0.8, 0.7]]
    assert series["epoch"]["loss"]["train"][1] == pytest.approx([1.1, 0.88, 0.77])
    assert series["epoch"]["lr"]["val"][1] == [1e-4] * 3
    (run_path,) = [p for p in runs["root"].iterdir() if p.name == runs["a"]]  # system metrics
    sampled = [r["rss_mib"] for r in read_jsonl(run_path / "system.jsonl")]
    xs, ys = series["system"]["rss_mib"]
    assert ys == sampled and xs[0] == 0 and len(xs) == len(sampled)
    assert "training small-lr" in client.get(f"/api/runs/{runs['a']}/stdout").json()["text"]


def test_long_step_series_are_downsampled_keeping_the_spike(tmp_path: Path):
    root = tmp_path / "runs"
    with runlab.start_run({}, root=root, name="steps") as run:
        for step in range(50_000):
            run.log({"loss": 10.0 if step == 31_337 else 1.0 / (1 + step)}, step=step)
    client = TestClient(create_app(root, TOKEN))
    xs, ys = client.get(f"/api/runs/{run.id}/series", params={"points": 800}).json()["step"]["loss"]
    assert len(xs) <= 800 and xs == sorted(xs)
    assert 31_337 in xs and max(ys) == 10.0  # the one bad step is still on the chart
    assert xs[0] == 0 and xs[-1] == 49_999


def test_min_max_buckets_keep_extremes_and_drop_nan():
    xs = list(range(10_000))
    ys = [math.sin(x / 100) for x in xs]
    ys[5000], ys[7000] = -50.0, float("nan")
    kept = min_max_buckets(xs, ys, 400)
    assert len(kept) <= 400
    assert (5000, -50.0) in kept and all(math.isfinite(y) for _, y in kept)
    assert min_max_buckets([1, 2], [3.0, None], 100) == [(1, 3.0)]


def test_gates_warnings_and_nan_metrics_reach_the_page(tmp_path: Path):
    root = tmp_path / "runs"
    with runlab.start_run({}, root=root) as run:
        run.event("on_warning", code="sink_failed", sink="mlflow", message="server down")
        run.summary["val_loss"] = float("nan")
        run.summary["gates"] = [{"name": "learns", "status": "passed", "epoch": 1}]
    client = TestClient(create_app(root, TOKEN))
    detail = client.get(f"/api/runs/{run.id}").json()  # NaN is not JSON: it arrives as null
    assert detail["metrics"]["val_loss"] is None
    assert detail["gates"][0]["name"] == "learns"
    assert detail["warnings"][0]["message"] == "server down"


def test_downloads_serve_the_run_files(client: TestClient, runs: dict[str, Any]):
    response = client.get(f"/api/runs/{runs['a']}/files/artifacts/predictions.csv")
    assert response.status_code == 200 and response.text == "id,pred\n1,0.5\n"
    assert "attachment" in response.headers["content-disposition"]
    image = client.get(f"/api/runs/{runs['a']}/files/figures/losses.png?inline=true")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"


@pytest.mark.parametrize(
    "relative",
    [
        "%2e%2e/%2e%2e/etc/passwd",
        "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "..%2f..%2fetc%2fpasswd",
        "%252e%252e%252f%252e%252e%252fetc%252fpasswd",  # double-encoded
        "..%5c..%5cetc%5cpasswd",  # backslashes
        "%2fetc%2fpasswd",  # absolute
        "%2e%2e/OTHER/run.json",  # a sibling run
        "figures/%2e%2e/%2e%2e/OTHER/config.yaml",
        "link-out/secret.txt",  # a symlink inside the run dir pointing outside it
        "checkpoints",  # a directory
        "%00run.json",
    ],
)
def test_downloads_never_leave_the_run_directory(
    client: TestClient, runs: dict[str, Any], tmp_path: Path, relative: str
):
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.txt").write_text("TOP-SECRET-CONTENT")
    run_dir = runs["root"] / runs["a"]
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    if not (run_dir / "link-out").exists():
        (run_dir / "link-out").symlink_to(outside)
    url = f"/api/runs/{runs['a']}/files/" + relative.replace("OTHER", runs["b"])
    response = client.get(url)
    assert response.status_code == 404, response.text
    assert "TOP-SECRET" not in response.text and "root:x" not in response.text


@pytest.mark.parametrize("run_id", ["%2e%2e", "%2e%2e%2fruns", "..%2F..%2Fetc", "nope"])
def test_run_ids_are_directory_names_only(client: TestClient, run_id: str):
    assert client.get(f"/api/runs/{run_id}").status_code == 404
    assert client.get(f"/api/runs/{run_id}/files/run.json").status_code == 404


def test_off_loopback_every_api_call_needs_the_token(runs: dict[str, Any]):
    client = TestClient(create_app(runs["root"], TOKEN, loopback=False))
    denied = client.get("/api/runs")
    assert denied.status_code == 401 and "token" in denied.json()["detail"]
    assert client.get(f"/api/runs/{runs['a']}/files/run.json").status_code == 401
    assert client.get("/api/runs", headers={"X-Runlab-Token": "wrong"}).status_code == 401
    assert client.get("/api/runs", params={"token": "jeton-été"}).status_code == 401
    assert client.get("/api/runs", headers={"X-Runlab-Token": TOKEN}).status_code == 200
    opened = client.get("/", params={"token": TOKEN})  # the printed URL sets a cookie
    assert opened.status_code == 200 and "runlab_token" in opened.headers["set-cookie"]
    assert client.get("/api/runs").status_code == 200  # the cookie now travels
    assert TestClient(create_app(runs["root"], TOKEN)).get("/api/runs").status_code == 200


def test_on_loopback_other_host_names_are_refused(runs: dict[str, Any]):
    # DNS rebinding: evil.example resolving to 127.0.0.1 must not read the runs
    app = create_app(runs["root"], TOKEN, hosts=frozenset({"127.0.0.1", "localhost", "::1"}))
    assert TestClient(app, base_url="http://evil.example:8765").get("/api/runs").status_code == 421
    assert TestClient(app, base_url="http://localhost:8765").get("/api/runs").status_code == 200
    assert TestClient(app, base_url="http://[::1]:8765").get("/api/runs").status_code == 200


def test_stop_needs_the_token_and_a_running_run(runs: dict[str, Any]):
    client = TestClient(create_app(runs["root"], TOKEN))
    with runlab.start_run({}, root=runs["root"], name="live") as live:
        live.cooperative_signals = True  # we poll stop_requested (no KeyboardInterrupt)
        url = f"/api/runs/{live.id}/stop"
        assert client.post(url).status_code == 403
        assert client.post(url, headers={"X-Runlab-Token": "x" * 26}).status_code == 403
        # a cookie is not enough: another site could make the browser send it
        client.cookies.set("runlab_token", TOKEN)
        assert client.post(url).status_code == 403
        ok = client.post(url, headers={"X-Runlab-Token": TOKEN})
        assert ok.status_code == 200 and "stop requested" in ok.json()["detail"]
        request = json.loads((live.dir / "stop.json").read_text())
        assert request["reason"] == "runlab ui"
        deadline = time.time() + 5
        while not live.stop_requested and time.time() < deadline:  # noticed within 0.5 s
            time.sleep(0.05)
        assert live.stop_requested
    finished = client.post(f"/api/runs/{runs['a']}/stop", headers={"X-Runlab-Token": TOKEN})
    assert finished.status_code == 409 and "not running" in finished.json()["detail"]


def test_compare_has_deltas_and_differing_params(client: TestClient, runs: dict[str, Any]):
    ids = f"{runs['a']},{runs['b']}"
    table = client.get("/api/compare", params={"ids": ids, "baseline": runs["a"]}).json()
    assert table["params"] == ["optim.lr"]
    by_id = {r["id"]: r for r in table["rows"]}
    assert by_id[runs["b"]]["delta"]["val_loss"] == pytest.approx(0.4 - 0.7)
    assert by_id[runs["a"]]["baseline"] is True
    assert client.get("/api/compare", params={"ids": "nope"}).status_code == 404


def test_backtest_equity_and_drawdown(tmp_path: Path):
    root = tmp_path / "runs"
    rng = np.random.default_rng(0)
    returns = rng.normal(0.0005, 0.01, (300, 8))
    result = backtest(rng.normal(size=(300, 8)), returns, scores=True, transaction_cost_bps=5)
    with runlab.start_run({}, root=root, name="bt") as run:
        result.write(run.dir / "artifacts" / "backtest" / "test", figures=False)
    client = TestClient(create_app(root, TOKEN))
    assert client.get(f"/api/runs/{run.id}").json()["backtests"] == ["test"]
    curves = client.get(f"/api/runs/{run.id}/backtests").json()["test"]
    assert curves["equity"][1][-1] == pytest.approx(result.equity[-1])
    assert min(curves["drawdown"][1]) == pytest.approx(result.metrics()["max_drawdown"])
    assert len(curves["dates"]) == 300


def test_pages_and_vendored_assets_are_served(client: TestClient, runs: dict[str, Any]):
    for page in (
        "/",
        f"/run/{runs['a']}",
        "/compare?ids=x",
        "/studies",
        "/study/study/x",
        "/flows",
    ):
        response = client.get(page)
        assert response.status_code == 200 and "<script" in response.text
        assert "http://" not in response.text and "https://" not in response.text  # no CDN
    assert "uPlot" in client.get("/static/vendor/uPlot.iife.min.js").text
    assert "MIT" in client.get("/static/vendor/uPlot.LICENSE").text


def test_the_server_never_imports_torch(runs: dict[str, Any], tmp_path: Path):
    (runs["root"] / runs["a"] / "checkpoints").mkdir(exist_ok=True)
    (runs["root"] / runs["a"] / "checkpoints" / "best.pt").write_bytes(b"not a pickle")
    code = f"""
import sys
from fastapi.testclient import TestClient
from runlab.web.app import create_app
c = TestClient(create_app({str(runs["root"])!r}, "t" * 20))
rid = {runs["a"]!r}
for url in ["/api/runs", f"/api/runs/{{rid}}", f"/api/runs/{{rid}}/series",
            f"/api/runs/{{rid}}/files/checkpoints/best.pt", "/api/studies"]:
    assert c.get(url).status_code == 200, url
assert c.get(f"/api/runs/{{rid}}/files/checkpoints/best.pt").content == b"not a pickle"
print("torch" in sys.modules, "pickle" in sys.modules and "torch" in sys.modules)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["False", "False"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_runlab_ui_serves_and_prints_its_url(runs: dict[str, Any]):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runlab", "ui", str(runs["root"]), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert f"http://127.0.0.1:{port}/?token=" in line
        deadline = time.time() + 30
        while True:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs", timeout=5)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        assert json.load(body)["total"] == 3
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("myhost.lan", False),
    ],
)
def test_only_loopback_addresses_serve_without_the_token(host: str, loopback: bool):
    assert is_loopback(host) is loopback


def test_runlab_ui_bad_input_is_one_line_and_exit_2(cli: Any, runs: dict[str, Any], tmp_path: Path):
    code, _, err = cli("ui", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("ui", str(runs["root"]), "--token", "short")
    assert code == 2 and "16 characters" in err
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "fastapi", None)  # as if the `ui` extra were not installed
        code, _, err = cli("ui", str(runs["root"]))
    assert code == 2 and "pip install 'runlab[ui]'" in err and len(err.strip().splitlines()) == 1
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = cli("ui", str(runs["root"]), "--port", str(port))
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err


@pytest.mark.parametrize(
    "path",
    ["/", "/run/{a}", "/studies", "/static/runs.js", "/api/runs", "/api/runs/{a}", "/nope"],
)
def test_every_response_carries_the_security_headers(
    client: TestClient, runs: dict[str, Any], path: str
) -> None:
    response = client.get(path.format(**runs))
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy


@pytest.mark.parametrize("name", ["evil.svg", "page.html", "losses.png"])
def test_run_files_are_sandboxed(client: TestClient, runs: dict[str, Any], name: str) -> None:
    """A file a run wrote can hold a script (an SVG, an HTML report): it is served sandboxed,
    scripts off, inline only when it is an image, else as an attachment."""
    folder = runs["root"] / runs["a"] / "figures"
    if name != "losses.png":
        (folder / name).write_text("<svg><script>alert(1)</script></svg>")
    response = client.get(f"/api/runs/{runs['a']}/files/figures/{name}?inline=1")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert policy.startswith("sandbox;") and "default-src 'none'" in policy
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment" if name == "page.html" else "inline")


def test_flows_show_their_steps_and_a_damaged_state_alone(tmp_path: Path):
    root = tmp_path / "runs"
    flow = tmp_path / "w" / "flow.yaml"
    flow.parent.mkdir()
    quick = Path(__file__).resolve().parents[1] / "examples" / "quickstart.yaml"
    flow.write_text(
        "name: shown\nsteps:\n"
        "  made: {cmd: 'echo x > x.out', outputs: {out: x.out}}\n"
        f"  train: {{kind: run, config: {quick}, overrides: [trainer.epochs=1, "
        "data.n_samples=256], after: [made]}\n"
        "  stop: {kind: gate, when: 'steps.train.metrics.val_loss < 0', after: [train]}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "runlab", "flow", str(flow), "-r", str(root)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1  # the gate stopped it
    (root / "flows" / "broken").mkdir()
    (root / "flows" / "broken" / "state.json").write_text("{ half")
    client = TestClient(create_app(root, TOKEN))
    flows = {f["name"]: f for f in client.get("/api/flows").json()}
    assert "unreadable" in flows["broken"]["damaged"]
    steps = {s["step"]: s for s in flows["shown"]["steps"]}
    assert steps["made"]["status"] == "done" and steps["made"]["run"] is None
    assert steps["train"]["status"] == "done" and steps["train"]["run"].startswith("20")
    assert client.get(f"/api/runs/{steps['train']['run']}").status_code == 200
    assert steps["stop"]["status"] == "failed" and "stopped the flow" in steps["stop"]["error"]
    assert client.get("/flows").status_code == 200
