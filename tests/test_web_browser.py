"""The dashboard end to end in headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright): runs page, filter, a run's charts, compare, live updates, screenshots.

Screenshots go to the test's temporary folder, or to $RUNLAB_SCREENSHOTS (the README's images
are made with ``RUNLAB_SCREENSHOTS=docs/img pytest -m browser tests/test_web_browser.py``).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runlab
from tests.web_helpers import make_run

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "browser-test-token-0123456789"

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A runs root with three finished runs, served by uvicorn on a free port."""
    from runlab.web.app import create_app

    root = tmp_path_factory.mktemp("ui") / "runs"
    runs = {
        "small": make_run(root, "small-lr", 1e-4, [1.0, 0.85, 0.78, 0.74, 0.72]).id,
        "big": make_run(root, "big-lr", 1e-2, [0.9, 0.5, 0.42, 0.4, 0.41]).id,
    }
    job = {"RUNLAB_SCHEDULER": "slurm", "RUNLAB_JOB_ID": "12_3", "RUNLAB_ARRAY_INDEX": "3",
           "RUNLAB_NODE": "node7"}  # fmt: skip
    os.environ.update(job)  # "mid" ran as task 3 of a cluster's array job: its page says so
    try:
        runs["mid"] = make_run(
            root, "mid-lr", 1e-3, [0.95, 0.62, 0.55, 0.52, 0.5], capture_stdout=True
        ).id
    finally:
        for key in job:
            os.environ.pop(key, None)
    import numpy as np

    from runlab.finance.backtest import backtest
    from runlab.tracking.groups import SweepRecord

    rng = np.random.default_rng(0)
    result = backtest(rng.normal(size=(250, 10)), rng.normal(4e-4, 0.01, (250, 10)), scores=True)
    result.write(root / runs["big"] / "artifacts" / "backtest" / "test", figures=False)

    lrs = {"small": 1e-4, "mid": 1e-3, "big": 1e-2}
    sweep = SweepRecord.create(
        root,
        "lr-sweep",
        "examples/quickstart.yaml",
        [],
        [[f"optim.lr={lrs[k]}", f"model.hidden=[{16 if k == 'big' else 32}]"] for k in lrs],
        ["optim.lr", "model.hidden"],
        "val_loss",
        "minimize",
    )
    for index, key in enumerate(lrs):
        sweep.record_result(index, runs[key], "finished")
    runs["sweep"] = sweep.id
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(root, TOKEN), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        assert time.time() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield {"root": root, "url": f"http://127.0.0.1:{port}", "runs": runs}
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # bypass_csp: Playwright's wait_for_function evaluates its text in the page, which the
    # dashboard's policy (no eval) refuses; test_pages_run_under_their_policy runs without it
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda err: errors.append(str(err)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def shot(page: Any, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("RUNLAB_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 5_000  # a rendered page, not a blank one
    return path


def canvas_has_ink(page: Any, selector: str) -> bool:
    """Some pixel of the chart's canvas is drawn (not transparent)."""
    return bool(
        page.eval_on_selector(
            selector,
            """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                      for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return true;
                      return false; }""",
        )
    )


def test_runs_page_filter_and_sort(page: Any, site: dict[str, Any], tmp_path: Path) -> None:
    page.goto(site["url"] + "/?token=" + TOKEN)
    page.wait_for_selector("#runs tbody tr")
    assert page.locator("#runs tbody tr").count() == 3
    assert "optim.lr" in page.inner_text("#runs thead")
    assert "?token" not in page.url  # the token is kept in the tab, not in the address bar
    shot(page, "runs", tmp_path)
    page.fill("#where", "config.optim.lr >= 1e-3")
    page.press("#where", "Enter")
    page.wait_for_function("document.querySelectorAll('#runs tbody tr').length === 2")
    assert "2 matching" in page.inner_text("#total")
    page.click("th[data-key='metrics.val_loss']")  # ascending: the best run first
    page.wait_for_function(
        f"document.querySelector('#runs tbody tr')?.dataset.id === '{site['runs']['big']}'"
    )
    page.fill("#where", "metrics.val_loss <")
    page.press("#where", "Enter")
    page.wait_for_function("document.getElementById('error').textContent.length > 0")
    assert "expression" in page.inner_text("#error").lower()


def test_run_page_draws_charts(page: Any, site: dict[str, Any], tmp_path: Path) -> None:
    page.goto(site["url"] + "/")
    page.click(f"a[href='/run/{site['runs']['mid']}']")
    page.wait_for_selector("[data-key='epoch:loss'] canvas")
    assert canvas_has_ink(page, "[data-key='epoch:loss'] canvas")
    assert canvas_has_ink(page, "[data-key='step:loss'] canvas")
    assert page.locator("[data-key='system:rss_mib'] canvas").count() == 1  # system metrics
    legend = page.inner_text("[data-key='epoch:loss']")
    assert "train" in legend and "val" in legend
    page.wait_for_function("document.getElementById('stdout').textContent.length > 0")
    assert "training mid-lr" in page.inner_text("#stdout")
    assert page.locator("#figures img").count() == 1
    assert page.eval_on_selector("#figures img", "img => img.naturalWidth") == 1
    assert "predictions.csv" in page.inner_text("#files")
    assert page.locator("#backtests canvas").count() == 0  # this run has none
    assert "optim" in page.inner_text("#config")
    assert "slurm job 12_3 (array task 3) on node7" in page.inner_text("#identity")
    shot(page, "run", tmp_path)


def test_compare_two_runs(page: Any, site: dict[str, Any], tmp_path: Path) -> None:
    page.goto(site["url"] + "/")
    page.wait_for_selector("#runs tbody tr")
    page.check(f"input[data-id='{site['runs']['small']}']")
    page.check(f"input[data-id='{site['runs']['big']}']")
    page.click("#compare")
    page.wait_for_url("**/compare?ids=*")
    page.wait_for_selector("#overlay canvas")
    assert canvas_has_ink(page, "#overlay canvas")
    assert "optim.lr" in page.inner_text("#params")
    assert "(baseline)" in page.inner_text("#metrics")
    shot(page, "compare", tmp_path)


def test_compare_groups_runs_with_bands(page: Any, site: dict[str, Any], tmp_path: Path) -> None:
    ids = ",".join(site["runs"][k] for k in ("small", "mid", "big"))
    page.goto(site["url"] + f"/compare?ids={ids}&group_by=config.model.hidden")
    page.wait_for_selector("[data-testid=groups] tbody tr")
    rows = page.locator("[data-testid=groups] tbody tr")
    assert rows.count() == 1 and "config.model.hidden=16" in rows.first.inner_text()
    # the three runs' last val losses 0.72, 0.5, 0.41: mean 0.5433, sample std 0.1595
    assert "0.5433 ± 0.1595" in rows.first.inner_text()
    page.wait_for_selector("#overlay canvas")
    assert canvas_has_ink(page, "#overlay canvas")
    assert page.evaluate("document.getElementById('overlay')._chart.series.length") == 4
    shot(page, "compare-groups", tmp_path)
    page.fill("#group-by", "all but seed")  # the learning rate differs: three groups of one
    page.dispatch_event("#group-by", "change")
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=groups] tbody tr').length === 3"
    )
    assert "group_by=all+but+seed" in page.url


def test_notes_and_tags_saved_and_shown_after_a_reload(
    page: Any, site: dict[str, Any], tmp_path: Path
) -> None:
    run = site["runs"]["small"]
    page.goto(site["url"] + f"/run/{run}")  # no token: saving is refused, with the reason
    page.wait_for_selector("#summary div")
    page.fill("#notes", "needs a longer warmup")
    page.click("#save-notes")
    page.wait_for_function(
        "document.querySelector('[data-testid=annotate-error]').textContent.includes('token')"
    )
    page.goto(site["url"] + f"/run/{run}?token={TOKEN}")
    page.wait_for_selector("#summary div")
    page.fill("#tags", "verdict=retry pair=AAPL_MSFT")
    page.fill("#notes", "needs a longer **warmup**")
    page.click("#save-notes")
    page.wait_for_function("document.getElementById('saved').textContent === 'saved'")
    page.reload()
    page.wait_for_function("document.getElementById('notes').value.includes('warmup')")
    assert page.input_value("#tags") == "verdict=retry pair=AAPL_MSFT"
    assert (site["root"] / run / "notes.md").read_text() == "needs a longer **warmup**"
    shot(page, "run-notes", tmp_path)
    page.fill("#tags", "password=x")  # a secret-named tag: refused, its reason shown
    page.click("#save-notes")
    page.wait_for_function(
        "document.querySelector('[data-testid=annotate-error]').textContent.includes('secret')"
    )


def test_running_runs_update_without_a_reload(page: Any, site: dict[str, Any]) -> None:
    run = runlab.start_run({"optim": {"lr": 0.5}}, root=site["root"], name="live-run")
    try:
        page.goto(site["url"] + "/")
        row = f"#runs tbody tr[data-id='{run.id}']"
        page.wait_for_selector(row)
        assert "running" in page.inner_text(row)
        page.evaluate("window.__same_page = true")
        run.log_epoch(0, {"val": {"loss": 0.3}})
    finally:
        run.finish()
    page.wait_for_function(
        f"document.querySelector(\"{row}\")?.innerText.includes('finished')", timeout=15_000
    )
    assert page.evaluate("window.__same_page") is True  # no reload happened


def test_sweep_page(page: Any, site: dict[str, Any], tmp_path: Path) -> None:
    page.goto(site["url"] + "/studies")
    page.click(f"a[href='/study/sweep/{site['runs']['sweep']}']")
    page.wait_for_selector("#by-trial canvas")
    assert canvas_has_ink(page, "#by-trial canvas")
    assert canvas_has_ink(page, "#by-param canvas")
    assert page.locator("[data-testid=parallel] polyline").count() == 3
    assert site["runs"]["big"] in page.inner_text("#best")  # lowest val_loss
    assert page.locator("#trials tbody tr").count() == 3
    page.select_option("#param", "model.hidden")
    page.wait_for_function(
        "document.querySelector('#by-param .title')?.textContent.includes('hidden')"
    )
    # two trials share model.hidden=[32]: all three are still points on the chart
    drawn = "document.getElementById('by-param')._chart.data[1].filter(v => v !== null).length"
    assert page.evaluate(drawn) == 3
    shot(page, "study", tmp_path)


def test_stop_button_stops_a_running_run(page: Any, site: dict[str, Any]) -> None:
    run = runlab.start_run({}, root=site["root"], name="to-stop")
    run.cooperative_signals = True  # this test polls stop_requested itself
    try:
        page.on("dialog", lambda dialog: dialog.accept())  # the confirm, then the answer
        page.goto(f"{site['url']}/run/{run.id}?token={TOKEN}")
        page.wait_for_selector("#stop:not([hidden])")
        page.click("#stop")
        deadline = time.time() + 10
        while not run.stop_requested and time.time() < deadline:
            time.sleep(0.1)
        assert run.stop_requested
        assert (run.dir / "stop.json").is_file()
    finally:
        run.finish()


def test_without_the_token_the_stop_button_is_refused(page: Any, site: dict[str, Any]) -> None:
    run = runlab.start_run({}, root=site["root"], name="not-stopped")
    run.cooperative_signals = True
    try:
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(f"{site['url']}/run/{run.id}")  # no ?token= in this tab
        page.wait_for_selector("#stop:not([hidden])")
        page.click("#stop")
        page.wait_for_function("document.getElementById('error').textContent.includes('token')")
        assert not (run.dir / "stop.json").exists()
    finally:
        run.finish()


def test_backtest_equity_and_drawdown(page: Any, site: dict[str, Any]) -> None:
    page.goto(f"{site['url']}/run/{site['runs']['big']}")
    page.wait_for_selector("[data-key='bt:test:drawdown'] canvas")
    assert canvas_has_ink(page, "[data-key='bt:test:equity'] canvas")
    assert canvas_has_ink(page, "[data-key='bt:test:drawdown'] canvas")


def test_a_running_runs_charts_grow_without_a_reload(page: Any, site: dict[str, Any]) -> None:
    run = runlab.start_run({}, root=site["root"], name="growing")
    try:
        run.log_epoch(0, {"train": {"loss": 1.0}, "val": {"loss": 1.1}})
        page.goto(f"{site['url']}/run/{run.id}")
        # (no chart yet: undefined, and the wait goes on)
        points = "document.querySelector(\"[data-key='epoch:loss']\")?._chart?.data[0].length"
        page.wait_for_function(f"{points} === 1")
        page.evaluate("window.__same_page = true")
        for epoch in (1, 2):
            run.log_epoch(epoch, {"train": {"loss": 0.5}, "val": {"loss": 0.6}})
        page.wait_for_function(f"{points} === 3", timeout=15_000)
        assert page.evaluate("window.__same_page") is True
    finally:
        run.finish()


SVG_WITH_SCRIPT = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" onload="fetch(\'/api/runs\')'
    '.then(() => document.title = \'pwned\')"><script>document.title = "pwned"</script>'
    '<rect width="10" height="10" fill="red"/></svg>'
)


def test_pages_run_under_their_policy_and_run_files_run_nothing(
    browser: Any, site: dict[str, Any]
) -> None:
    """Every page works under its Content-Security-Policy (no inline script, no eval); an SVG
    with a script in a run's figures, opened from the dashboard, runs nothing (it was stored
    XSS: served inline on the dashboard's origin)."""
    run_id = site["runs"]["small"]
    (site["root"] / run_id / "figures" / "evil.svg").write_text(SVG_WITH_SCRIPT)
    context = browser.new_context()
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda err: problems.append(str(err)))
    tab.on(
        "console",
        lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    url = site["url"]
    for path, ready in (
        ("/", "#runs tbody tr"),
        (f"/run/{run_id}", "canvas"),
        (f"/compare?ids={run_id},{site['runs']['big']}", "canvas"),
        ("/studies", "#studies tbody tr"),
        (f"/study/sweep/{site['runs']['sweep']}", "svg"),
        ("/flows", "#flows p, #flows [data-testid=flow]"),
    ):
        tab.goto(url + path)
        tab.wait_for_selector(ready, timeout=10_000)
    assert problems == []
    tab.goto(f"{url}/api/runs/{run_id}/files/figures/evil.svg?inline=1")
    tab.wait_for_timeout(500)
    assert tab.title() != "pwned"
    context.close()


@pytest.fixture(scope="module")
def launch_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A root served with --recipes (tests/test_launch.py's) and a worker running beside it."""
    import subprocess
    import sys

    from runlab.web.app import create_app
    from tests.test_launch import _recipes

    folder = tmp_path_factory.mktemp("launch")
    root, recipes = folder / "runs", _recipes(folder / "recipes")
    root.mkdir()
    repo = str(Path(__file__).resolve().parents[1])
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = repo  # the preflight's and the runs' tests.helpers
    worker = subprocess.Popen([sys.executable, "-m", "runlab", "worker", str(root)])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(root, TOKEN, recipes=recipes)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield {"root": root, "url": f"http://127.0.0.1:{port}"}
    server.should_exit = True
    thread.join(timeout=10)
    worker.terminate()
    worker.wait()
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


def test_launch_a_run_from_a_form_and_watch_it_finish(
    page: Any, launch_site: dict[str, Any], tmp_path: Path
) -> None:
    page.goto(launch_site["url"] + f"/launch?token={TOKEN}")
    form = "form[data-recipe=quick]"
    page.wait_for_selector(form)
    page.fill(f"{form} [data-field='optim.lr']", "0.5")  # outside the recipe's range
    page.click(f"{form} button[type=submit]")
    error = f"{form} [data-error-for='optim.lr']"
    page.wait_for_function(
        f"document.querySelector(\"{error}\").textContent.includes('outside 0.0001 to 0.1')"
    )
    page.fill(f"{form} [data-field='data.n_samples']", "1")  # in range; the preflight says no
    page.fill(f"{form} [data-field='optim.lr']", "0.01")
    page.click(f"{form} button[type=submit]")
    error = f"{form} [data-error-for='data.n_samples']"
    page.wait_for_function(
        f"document.querySelector(\"{error}\").textContent.includes('must be >= 3')", timeout=60_000
    )
    page.fill(f"{form} [data-field='data.n_samples']", "64")
    page.select_option(f"{form} [data-field='model.hidden']", "[8,8]")
    shot(page, "launch", tmp_path)
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector(f"{form} [data-testid=said] a", timeout=60_000)
    page.click(f"{form} [data-testid=said] a")
    page.wait_for_url("**/queue")
    # the queue page refreshes itself: the entry ends finished with a link to its run
    page.wait_for_function(
        "[...document.querySelectorAll('[data-testid=queue] tbody tr')]"
        ".some(r => r.textContent.includes('finished') && r.querySelector('a'))",
        timeout=120_000,
    )
    shot(page, "queue", tmp_path)
    page.click("[data-testid=queue] tbody tr a")
    page.wait_for_function(
        "document.getElementById('identity').textContent.includes('via runlab ui')"
    )
    runs = list(launch_site["root"].glob("*-quick-*/run.json"))
    assert len(runs) == 1
    import json

    info = json.loads(runs[0].read_text())
    assert info["status"] == "finished" and "via runlab ui" in info["launched_by"]


from tests.test_importance import study  # noqa: E402,F401  (a real 30-trial study)


def test_a_studys_page_shows_its_importance(page: Any, study: dict[str, Any]) -> None:  # noqa: F811
    from runlab.web.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(study["root"], TOKEN)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        page.goto(f"http://127.0.0.1:{port}/study/study/bowl")
        page.wait_for_selector("[data-testid=importance] tr")
        rows = page.locator("[data-testid=importance] tr")
        assert rows.count() == 2 and rows.first.inner_text().startswith("+x")
        width = page.eval_on_selector("[data-testid=importance] .bar", "b => b.offsetWidth")
        assert width > 250  # x's importance is above 0.9 of the 300 px scale
    finally:
        server.should_exit = True
        thread.join(timeout=10)
