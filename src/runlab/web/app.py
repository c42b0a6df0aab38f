"""The dashboard's FastAPI app: HTML pages and JSON read from a runs root.

Read-only, except ``POST /api/runs/{id}/stop``, which needs the token in the
``X-Runlab-Token`` header (a header, not a cookie, so another site cannot forge it). Bound to
a non-loopback address (``private=False``), every API call needs the token: header, the
``runlab_token`` cookie set when a page is opened with ``?token=``, or ``?token=`` itself.
"""

from __future__ import annotations

import hmac
import math
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from runlab.errors import ConfigError, ExpressionError, RunlabError, RunNotFoundError
from runlab.web import data

STATIC = Path(__file__).parent / "static"
PAGES = {
    "/": "runs.html",
    "/compare": "compare.html",
    "/studies": "studies.html",
    "/flows": "flows.html",
    "/launch": "launch.html",
    "/queue": "queue.html",
}
# Pages run only the dashboard's own scripts; run files (a figure, anything a run wrote) are
# sandboxed: an SVG with a script, opened from the dashboard, runs nothing on its origin.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
FILE_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
TOKEN_HEADER = "x-runlab-token"
TOKEN_COOKIE = "runlab_token"
MAX_PAGE = 500
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def clean(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def _json(payload: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(clean(payload), status_code=status)


def same_token(given: str, token: str) -> bool:
    """Constant-time comparison; any text (compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(given.encode(), token.encode())


def create_app(
    root: Path,
    token: str,
    loopback: bool = True,
    hosts: frozenset[str] | None = None,
    recipes: Path | None = None,
) -> FastAPI:
    """The app serving ``root``. ``loopback``: bound to 127.0.0.1/::1 only, so reads need no
    token (the stop button still does). ``hosts``: the Host names to answer (``runlab ui`` on
    loopback passes the loopback names, so a web page whose DNS name points at 127.0.0.1,
    DNS rebinding, gets nothing); None answers any."""
    app = FastAPI(title="runlab", docs_url=None, redoc_url=None, openapi_url=None)
    _guard(app, token, loopback, hosts)
    for route, page in PAGES.items():
        app.add_api_route(route, _page(page), methods=["GET"], include_in_schema=False)
    app.add_api_route("/run/{run_id}", _page("run.html"), methods=["GET"])
    app.add_api_route("/study/{kind}/{name}", _page("study.html"), methods=["GET"])
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(_api(Path(root), token, loopback))
    launches = APIRouter()
    _launch_api(launches, Path(root), token, recipes)
    app.include_router(launches)
    return app


def _presented(request: Request) -> str:
    """The token a request carries: header, cookie or ``?token=``."""
    return (
        request.headers.get(TOKEN_HEADER)
        or request.cookies.get(TOKEN_COOKIE)
        or request.query_params.get("token")
        or ""
    )


def _guard(app: FastAPI, token: str, loopback: bool, hosts: frozenset[str] | None) -> None:
    """Host check, token check, security headers, and errors as JSON with their status."""
    presented = _presented

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        if hosts is not None and request.url.hostname not in hosts:
            return _json({"detail": f"unknown host {request.url.hostname!r}"}, 421)
        needs_token = not loopback and request.url.path.startswith("/api/")
        if needs_token and not same_token(presented(request), token):
            detail = "this dashboard needs its token: open the URL `runlab ui` printed"
            return _json({"detail": detail}, 401)
        response: Response = await call_next(request)
        query_token = request.query_params.get("token")
        if query_token and same_token(query_token, token):
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        files = "/files/" in request.url.path
        response.headers["Content-Security-Policy"] = FILE_CSP if files else PAGE_CSP
        return response

    @app.exception_handler(ExpressionError)
    async def bad_expression(request: Request, err: ExpressionError) -> JSONResponse:
        return _json({"detail": str(err)}, 400)

    @app.exception_handler(RunNotFoundError)
    async def not_found(request: Request, err: RunNotFoundError) -> JSONResponse:
        return _json({"detail": str(err)}, 404)

    @app.exception_handler(ConfigError)
    async def bad_value(request: Request, err: ConfigError) -> JSONResponse:
        return _json({"detail": str(err)}, 422)

    @app.exception_handler(RunlabError)
    async def refused(request: Request, err: RunlabError) -> JSONResponse:
        return _json({"detail": str(err)}, 409)


def _api(root: Path, token: str, loopback: bool) -> APIRouter:
    """The JSON API over the runs root (reads; stopping a run needs the token)."""
    app, presented = APIRouter(), _presented

    @app.get("/api/info")
    def info(request: Request) -> JSONResponse:
        return _json(
            {
                "root": str(root.resolve()),
                "loopback": loopback,
                "token_ok": same_token(presented(request), token),
            }
        )

    @app.get("/api/runs")
    def runs(
        where: str | None = None, sort: str | None = None, offset: int = 0, limit: int = 50
    ) -> JSONResponse:
        limit = max(1, min(limit, MAX_PAGE))
        return _json(data.runs_page(root, where, sort, max(0, offset), limit))

    @app.get("/api/runs/{run_id}")
    def run(run_id: str) -> JSONResponse:
        return _json(data.run_detail(data.find_run(root, run_id)))

    @app.get("/api/runs/{run_id}/series")
    def series(run_id: str, points: int = 1000) -> JSONResponse:
        points = max(10, min(points, 20_000))
        return _json(data.series(data.find_run(root, run_id), points))

    @app.get("/api/runs/{run_id}/stdout")
    def stdout(run_id: str, lines: int = 200) -> JSONResponse:
        record = data.find_run(root, run_id)
        return _json({"text": data.stdout_tail(record, max(1, min(lines, 5000)))})

    @app.get("/api/runs/{run_id}/backtests")
    def backtests(run_id: str, points: int = 1000) -> JSONResponse:
        return _json(data.backtests(data.find_run(root, run_id), max(10, min(points, 20_000))))

    @app.get("/api/runs/{run_id}/files/{relative:path}")
    def download(run_id: str, relative: str, inline: bool = False) -> FileResponse:
        path = data.safe_file(data.find_run(root, run_id), relative)
        disposition = "inline" if inline and path.suffix.lower() in data.FIGURES else "attachment"
        kind = None if disposition == "inline" else "application/octet-stream"
        return FileResponse(
            path, media_type=kind, filename=path.name, content_disposition_type=disposition
        )

    @app.post("/api/runs/{run_id}/stop")
    def stop(run_id: str, request: Request) -> JSONResponse:
        given = request.headers.get(TOKEN_HEADER, "")
        if not same_token(given, token):
            return _json({"detail": "stopping a run needs the token that `runlab ui` printed"}, 403)
        from runlab.monitor.stop import request_stop

        message = request_stop(data.find_run(root, run_id), reason="runlab ui")
        return _json({"detail": message})

    _annotate_api(app, root, token)

    @app.get("/api/compare")
    def compare(ids: str, baseline: str | None = None) -> JSONResponse:
        wanted = [i for i in ids.split(",") if i]
        if not wanted:
            return _json({"detail": "ids: give run ids separated by commas"}, 400)
        return _json(data.compare_runs(root, wanted, baseline or None))

    @app.get("/api/compare/groups")
    def compare_groups(ids: str, group_by: str, curve: str | None = None) -> JSONResponse:
        wanted = [i for i in ids.split(",") if i]
        if not wanted:
            return _json({"detail": "ids: give run ids separated by commas"}, 400)
        try:
            return _json(data.compare_groups(root, wanted, group_by, curve or None))
        except ConfigError as err:
            return _json({"detail": str(err)}, 400)

    _groups_api(app, root)
    return app


def _annotate_api(app: APIRouter, root: Path, token: str) -> None:
    """Notes and tags of a run: changes, each needing the token (:func:`_body`)."""

    @app.put("/api/runs/{run_id}/notes")
    async def notes(run_id: str, request: Request) -> JSONResponse:
        from runlab.tracking.annotate import write_notes

        body = await _body(request, token)
        if isinstance(body, JSONResponse):
            return body
        record = data.find_run(root, run_id)
        write_notes(record.path, body.get("text"))
        return _json({"notes": record.notes})

    @app.put("/api/runs/{run_id}/tags")
    async def tags(run_id: str, request: Request) -> JSONResponse:
        from runlab.tracking.annotate import check_tags, set_tags

        body = await _body(request, token)
        if isinstance(body, JSONResponse):
            return body
        record = data.find_run(root, run_id)
        wanted = check_tags(body.get("tags"))
        gone = [k for k in record.tags if k not in wanted]
        return _json({"tags": set_tags(record.path, record.tags, wanted, gone)})


LAUNCHES_PER_MINUTE = 10
PENDING_MAX = 100


def _launch_api(app: APIRouter, root: Path, token: str, recipes: Path | None) -> None:
    """Launching from recipes (``runlab ui --recipes DIR``; nothing to launch without it):
    the recipes and their forms, a launch (token, origin, the recipe's schema, a preflight,
    rate and queue limits; an audit line), the queue and cancelling an entry."""
    import asyncio
    import collections
    import getpass
    import time

    from runlab.queue.plan import plan, preflight
    from runlab.queue.recipes import FieldError, load_recipes
    from runlab.queue.store import Queue

    queue, recent = Queue(root), collections.deque[float]()

    @app.get("/api/recipes")
    def recipes_list() -> JSONResponse:
        if recipes is None:
            return _json({"enabled": False, "recipes": [], "problems": []})
        found, problems = load_recipes(recipes)
        return _json(
            {"enabled": True, "recipes": [r.describe() for r in found.values()],
             "problems": problems}
        )  # fmt: skip

    @app.post("/api/launch")
    async def launch(request: Request) -> JSONResponse:
        body = await _body(request, token)
        if isinstance(body, JSONResponse):
            return body
        if recipes is None:
            return _json({"detail": "launching is off: runlab ui --recipes DIR turns it on"}, 403)
        now = time.time()
        while recent and recent[0] < now - 60:
            recent.popleft()
        if len(recent) >= LAUNCHES_PER_MINUTE or queue.pending() >= PENDING_MAX:
            return _json({"detail": "too many launches: wait for the queue to drain"}, 429)
        found, _ = load_recipes(recipes)
        recipe = found.get(str(body.get("recipe")))
        if recipe is None:
            return _json({"detail": f"no recipe {body.get('recipe')!r}", "field": "recipe"}, 422)
        recent.append(now)  # every attempt counts: a refused one costs a preflight too
        try:
            planned = plan(recipe, body, root)
            await asyncio.to_thread(preflight, planned, list(recipe.fields))
        except FieldError as err:
            return _json({"detail": str(err), "field": err.field}, 422)
        client = request.client.host if request.client else "?"
        by = f"{getpass.getuser()} via runlab ui from {client}"
        entry = queue.put({**vars(planned), "launched_by": by})
        queue.audit({"entry": entry, "recipe": recipe.name, "kind": planned.kind,
                     "values": planned.values, "launcher": planned.launcher, "by": by})  # fmt: skip
        return _json({"entry": entry, "position": queue.pending()}, 201)

    @app.get("/api/queue")
    def queue_list() -> JSONResponse:
        keep = ("id", "state", "position", "recipe", "kind", "launcher", "values", "launched_by",
                "queued", "started", "ended", "status", "exit_code", "run_id", "sweep_id",
                "study", "attempts", "worker")  # fmt: skip
        rows = [{k: e.get(k) for k in keep} for e in queue.entries()]
        return _json({"enabled": recipes is not None, "entries": rows[::-1]})

    @app.post("/api/queue/{ident}/cancel")
    async def cancel(ident: str, request: Request) -> JSONResponse:
        body = await _body(request, token)
        if isinstance(body, JSONResponse):
            return body
        if not all(c.isalnum() or c == "-" for c in ident):
            return _json({"detail": f"no queue entry {ident!r}"}, 404)
        client = request.client.host if request.client else "?"
        return _json({"detail": queue.cancel(ident, f"runlab ui from {client}")})


def _groups_api(app: APIRouter, root: Path) -> None:
    """Studies, sweeps and flows: reads."""

    @app.get("/api/studies")
    def studies() -> JSONResponse:
        return _json(data.studies(root))

    @app.get("/api/studies/{kind}/{name}")
    def study(kind: str, name: str) -> JSONResponse:
        return _json(data.study_detail(root, kind, name))

    @app.get("/api/studies/study/{name}/importance")
    def importance(name: str) -> JSONResponse:
        return _json(data.study_importance(root, name))

    @app.get("/api/flows")
    def flows() -> JSONResponse:
        return _json(data.flows(root))


async def _body(request: Request, token: str) -> dict[str, Any] | JSONResponse:
    """A mutating call's JSON body, once its token (a header, even on loopback: a cookie or a
    query would let another site's page send it) and its Origin (the page's own, when a
    browser says one) are right: 401 without the token, 403 from another origin, 422 for a
    body that is not a JSON object."""
    from urllib.parse import urlsplit

    if not same_token(request.headers.get(TOKEN_HEADER, ""), token):
        detail = "a change needs the token `runlab ui` printed, in the X-Runlab-Token header"
        return _json({"detail": detail}, 401)
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        return _json({"detail": f"refused: a request from another origin ({origin})"}, 403)
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return _json({"detail": "the body is a JSON object"}, 422)
    return body


def _page(name: str) -> Any:
    def page() -> FileResponse:
        return FileResponse(STATIC / name, media_type="text/html")

    page.__name__ = f"page_{name.split('.')[0]}"
    return page
