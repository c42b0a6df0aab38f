from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from runlab.cli.main import main

# `make test` (and CI) draws the same Hypothesis examples every run, so a red CI is a
# reproducible failure; `make fuzz` draws new ones, ten times as many, to look for more.
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("fuzz", max_examples=1000, print_blob=True)
settings.load_profile(os.environ.get("RUNLAB_HYPOTHESIS", "repeatable"))

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """W&B offline under tmp_path, an MLflow SQLite store whose artifacts stay in tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return {"uri": uri, "wandb": tmp_path / "wb" / "wandb"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "runs"


CliResult = tuple[int, str, str]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run the runlab CLI in-process: (exit code, stdout, stderr)."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def python_script(tmp_path: Path, code: str, name: str = "script.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(code))
    return path


def run_python(
    script: Path, *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` mounted at ``folder`` (a full disk, a read-only root); the
    test skips where mounting is not allowed (not root, no CAP_SYS_ADMIN)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A one-node Slurm cluster of this session's own (tests/clusters/slurm.sh), found by
    clients through SLURM_CONF; the tests that need it are skipped, saying why, when it
    cannot be started (no Slurm packages, not root)."""
    script = REPO / "tests" / "clusters" / "slurm.sh"
    folder = tmp_path_factory.mktemp("slurm")
    proc = subprocess.run(
        ["bash", str(script), "up", str(folder)], capture_output=True, text=True, timeout=180
    )
    if proc.returncode != 0:
        why = (proc.stdout.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"Slurm tests skipped: no Slurm cluster could be started ({why})")
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(folder / "slurm.conf")
    try:
        yield folder
    finally:
        subprocess.run(["bash", str(script), "down", str(folder)], timeout=60)
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous


CONDOR_ROOTFS = os.environ.get("RUNLAB_CONDOR_ROOTFS", "/opt/runlab-condor")


def _python_paths() -> list[str]:
    """What a job needs to run this interpreter and its environment at the same paths."""
    base = os.path.realpath(sys.base_prefix)
    if base == "/usr":  # Debian's own Python: its files, not the tree's whole /usr
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        found = [f"/usr/lib/{version}", os.path.realpath(sys._base_executable)]
        found += [p for p in ("/usr/lib/python3/dist-packages",) if os.path.isdir(p)]
    else:
        found = [base]
    return [*found, os.path.realpath(sys.prefix)]


@pytest.fixture(scope="session")
def htcondor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A personal HTCondor pool in a Debian 13 tree (tests/clusters/htcondor.sh; .ci/run makes
    the tree), its tools on PATH through wrappers; skipped, saying why, when it cannot start.
    Yields a folder the pool's user (runlab) may write: jobs run as that user."""
    import tempfile

    script = REPO / "tests" / "clusters" / "htcondor.sh"
    bindir = tmp_path_factory.mktemp("condor-bin")
    work = Path(tempfile.mkdtemp(prefix="runlab-condor-", dir="/tmp"))
    work.chmod(0o777)
    paths = ["/tmp", str(REPO), *_python_paths()]
    proc = subprocess.run(
        ["bash", str(script), "up", CONDOR_ROOTFS, str(bindir), *paths],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "RUNLAB_CONDOR_PYTHON": os.path.realpath(sys._base_executable)},
    )
    if proc.returncode != 0:
        why = ((proc.stdout + proc.stderr).strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"HTCondor tests skipped: no HTCondor pool could be started ({why})")
    previous = os.environ["PATH"]
    os.environ["PATH"] = f"{bindir}:{previous}"
    try:
        yield work
    finally:
        os.environ["PATH"] = previous
        subprocess.run(["bash", str(script), "down", CONDOR_ROOTFS], timeout=120)


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A PostgreSQL server of this session's own (Debian's postgresql: initdb and pg_ctl run as
    the postgres user, trust authentication on 127.0.0.1); yields its URL. Skipped, saying why,
    when it cannot start."""
    import glob
    import pwd
    import shutil
    import socket
    import tempfile

    pytest.importorskip("psycopg", reason="PostgreSQL tests skipped: no psycopg")
    found = shutil.which("initdb") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1:]), None
    )
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        user = None
    if found is None or user is None or os.getuid() != 0:
        pytest.skip("PostgreSQL tests skipped: needs root, Debian's postgresql and its user")
    bin_dir = os.path.dirname(found)
    folder = Path(tempfile.mkdtemp(prefix="runlab-pg-", dir="/tmp"))
    os.chown(folder, user.pw_uid, user.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def as_postgres(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=folder,
        )

    data = folder / "data"
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    steps = [
        (f"{bin_dir}/initdb", "-D", str(data), "--auth=trust", "-U", "postgres"),
        (f"{bin_dir}/pg_ctl", "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w",
         "start"),
    ]  # fmt: skip
    for step in steps:
        proc = as_postgres(*step)
        if proc.returncode != 0:
            why = ((proc.stdout + proc.stderr).strip().splitlines() or ["no output"])[-1]
            shutil.rmtree(folder, ignore_errors=True)
            pytest.skip(f"PostgreSQL tests skipped: {Path(step[0]).name} failed ({why})")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        as_postgres(f"{bin_dir}/pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
