"""``runlab ui``: the web dashboard of a runs root."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from runlab.cli.runs import _root_arg
from runlab.errors import ConfigError
from runlab.tracking.roots import ROOT_HELP


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_port(host: str, port: int) -> None:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({err.strerror}); "
                f"pick another with --port or stop what uses it"
            ) from err


def ui(
    root: Path | None = typer.Argument(None, help=ROOT_HELP, show_default=False),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind; any other than loopback needs the token."
    ),
    port: int = typer.Option(8765, "--port", "-p", help="Port to listen on."),
    token: str | None = typer.Option(
        None,
        "--token",
        help="Token for the stop button (and, off loopback, for every page); "
        "default: a new one, printed with the URL.",
        show_default=False,
    ),
    recipes: Path | None = typer.Option(
        None,
        "--recipes",
        help="A folder of recipes (configs with a launch: block): the dashboard may launch "
        "them (off without it).",
        show_default=False,
    ),
    worker: bool = typer.Option(
        False, "--worker", help="Also run a worker here (runlab worker ROOT) for the launches."
    ),
) -> None:
    """Serve the dashboard: runs, one run's charts, compare, studies and sweeps, backtests;
    with --recipes, forms that launch runs, sweeps, studies and flows into a queue."""
    from runlab._imports import require

    require("fastapi", "ui", "runlab ui")
    uvicorn = require("uvicorn", "ui", "runlab ui")
    from runlab.web.app import LOOPBACK_NAMES, create_app

    base = _root_arg(root)
    if not base.is_dir():
        raise ConfigError(f"runs root {base} does not exist; run something first or pass ROOT")
    if not 0 < port < 65536:
        raise ConfigError(f"--port {port}: give a port between 1 and 65535")
    if token is not None and len(token) < 16:
        raise ConfigError("--token: use at least 16 characters (or leave it out for a new one)")
    import secrets

    if recipes is not None and not recipes.is_dir():
        raise ConfigError(f"--recipes {recipes}: not a folder (of configs with a launch: block)")
    if worker and recipes is None:
        raise ConfigError("--worker runs launches: give --recipes DIR too")
    loopback = is_loopback(host)
    secret = token or secrets.token_urlsafe(24)
    _check_port(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/?token={secret}"
    sys.stdout.write(f"runlab ui: {base.resolve()} at {url}\n")
    if not loopback:
        sys.stdout.write("  bound beyond this machine: every request needs the token above\n")
    sys.stdout.write("  Ctrl-C to stop\n")
    sys.stdout.flush()
    hosts = LOOPBACK_NAMES | {host} if loopback else None
    folder = recipes.resolve() if recipes is not None else None
    app = create_app(base, secret, loopback=loopback, hosts=hosts, recipes=folder)
    helper = None
    if worker:
        import subprocess

        helper = subprocess.Popen([sys.executable, "-m", "runlab", "worker", str(base)])
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        if helper is not None:
            helper.terminate()
            helper.wait()


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)
