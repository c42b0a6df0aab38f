"""runlab package: a bundle that predicts without runlab (checked in a virtual environment that
has torch, numpy and safetensors and no runlab), against the run's own model; and verify,
which catches a changed byte, a pickle and a missing file."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

import runlab
from runlab.train import bundle

pytest.importorskip("safetensors")
QUICK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.yaml"
DEPS = [  # what torch, numpy and safetensors import
    "torch", "torchgen", "functorch", "numpy", "numpy.libs", "safetensors",
    "typing_extensions.py", "sympy", "mpmath", "networkx", "jinja2", "markupsafe", "fsspec",
    "filelock",
]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    subprocess.run(
        [sys.executable, "-m", "runlab", "run", str(QUICK), "trainer.epochs=2",
         "data.n_samples=512", "-o", str(root)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return root


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runlab", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with torch, numpy and safetensors (this one's, linked) and no
    runlab."""
    env = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    site = Path(sysconfig.get_paths()["purelib"])
    deps = env / "deps"
    deps.mkdir()
    for name in DEPS:
        if (site / name).exists():
            (deps / name).symlink_to(site / name)
    python = env / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "deps.pth").write_text(str(deps) + "\n")
    probe = (
        "import torch, numpy, safetensors\n"
        "try:\n import runlab\nexcept ImportError: print('no runlab')"
    )
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip() == "no runlab", out.stderr
    return python


def test_a_bundle_predicts_like_the_run_without_runlab(
    trained: Path, tmp_path: Path, bare_python: Path
) -> None:
    out = tmp_path / "bundle"
    done = _cli("package", "quickstart", "-r", str(trained), "-o", str(out), "--archive")
    assert done.returncode == 0, done.stderr
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"model.pt2", "model.safetensors", "predict.py", "bundle.json", "README.md",
            "MANIFEST.json", "examples/golden.json", "config.yaml", "metrics.json",
            "provenance.json", "data.json"} <= names  # fmt: skip
    assert Path(str(out) + ".tar.gz").is_file()
    golden = subprocess.run([str(bare_python), "predict.py"], cwd=out, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert golden.returncode == 0 and "golden examples match" in golden.stdout, golden.stderr
    meta = json.loads((out / "bundle.json").read_text())
    rows = np.random.default_rng(7).normal(size=(20, len(meta["feature_names"])))
    csv = tmp_path / "new.csv"
    lines = [",".join(meta["feature_names"])]
    lines += [",".join(repr(float(v)) for v in row) for row in rows]
    csv.write_text("\n".join(lines) + "\n")
    got = subprocess.run([str(bare_python), "predict.py", str(csv)], cwd=out,
                         capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    theirs = np.array([json.loads(line) for line in got.stdout.splitlines()])
    ours = runlab.load_model("quickstart", root=str(trained)).predict(rows)
    np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-6)
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: pytorch\n") and "## Limitations" in card
    checked = _cli("package", "verify", str(out))
    assert checked.returncode == 0 and checked.stdout.startswith("ok:"), checked.stdout


@pytest.mark.parametrize("damage", ["byte", "pickle", "missing", "extra", "predict"])
def test_verify_catches_a_damaged_bundle(trained: Path, tmp_path: Path, damage: str) -> None:
    out = tmp_path / "bundle"
    assert _cli("package", "quickstart", "-r", str(trained), "-o", str(out)).returncode == 0
    if damage == "byte":
        data = bytearray((out / "model.safetensors").read_bytes())
        data[-1] ^= 1
        (out / "model.safetensors").write_bytes(bytes(data))
    elif damage == "pickle":  # a pickle the manifest even vouches for
        import pickle

        (out / "examples" / "rows.bin").write_bytes(pickle.dumps([1, 2], protocol=4))
        manifest = json.loads((out / "MANIFEST.json").read_text())
        manifest["sha256"] = bundle._hashes(out)
        (out / "MANIFEST.json").write_text(json.dumps(manifest))
    elif damage == "missing":
        (out / "metrics.json").unlink()
    elif damage == "extra":
        (out / "notes.txt").write_text("added later")
    else:  # predict.py's check fails: the golden output no longer matches
        golden = json.loads((out / "examples" / "golden.json").read_text())
        golden["output"] = [v + 1 for v in golden["output"]]
        (out / "examples" / "golden.json").write_text(json.dumps(golden))
        manifest = json.loads((out / "MANIFEST.json").read_text())
        manifest["sha256"] = bundle._hashes(out)
        (out / "MANIFEST.json").write_text(json.dumps(manifest))
    checked = _cli("package", "verify", str(out))
    expected = {"byte": "SHA-256 differs", "pickle": "holds a pickle", "missing": "missing",
                "extra": "not in the manifest", "predict": "predict.py"}[damage]  # fmt: skip
    assert checked.returncode == 1 and expected in checked.stdout, checked.stdout


def test_torch_export_holds_no_pickle_once_written(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    assert _cli("package", "quickstart", "-r", str(trained), "-o", str(out)).returncode == 0
    assert not bundle._pickled(out / "model.pt2")
    raw = tmp_path / "raw.pt2"
    import torch

    model = torch.nn.Linear(3, 1)
    torch.export.save(torch.export.export(model, (torch.zeros(2, 3),)), str(raw))
    assert bundle._pickled(raw)  # torch's own archive pickles its sample inputs


def test_a_model_export_cannot_trace_still_packages(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runlab.tracking.resolve import resolve_run

    def untraceable(*args: object) -> str:
        raise RuntimeError("data-dependent control flow\nmore")

    monkeypatch.setitem(bundle._EXPORT, "pt2", untraceable)
    meta = bundle.package(resolve_run("quickstart", trained), tmp_path / "b")
    assert meta["formats"] == {} and meta["skipped"]["pt2"].startswith("RuntimeError: data")
    assert (tmp_path / "b" / "model.safetensors").is_file()
    assert "pt2 (RuntimeError" in (tmp_path / "b" / "README.md").read_text()
    assert any("predict.py" in p for p in bundle.verify(tmp_path / "b"))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["package", "no-such-run", "-o", "{tmp}/b"], "no-such-run"),
        (["package", "quickstart", "-o", "{tmp}/full"], "not empty"),
        (["package", "quickstart", "-o", "{tmp}/b", "--formats", "tflite"], "tflite"),
        (["package", "quickstart"], "-o DIR"),
        (["package", "quickstart", "-o", "{tmp}/b", "--checkpoint", "epoch_0099"], "epoch_0099"),
        (["package", "verify", "{tmp}/nothing"], "not a directory"),
        (["package", "verify", "{tmp}/full"], "not a runlab bundle"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    trained: Path, tmp_path: Path, args: list[str], words: str
) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    done = _cli(*[a.format(tmp=tmp_path) for a in args], "-r", str(trained))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr
    assert not (tmp_path / "b").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]


def test_onnx_predicts_like_the_run_with_onnxruntime_alone(trained: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    out = tmp_path / "bundle"
    done = _cli(
        "package", "quickstart", "-r", str(trained), "-o", str(out), "--formats", "pt2,onnx"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "bundle.json").read_text())["formats"]["onnx"] == "model.onnx"
    checked = _cli("package", "verify", str(out))
    assert checked.returncode == 0, checked.stdout
    rows = np.random.default_rng(3).normal(size=(5, 16)).tolist()
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    code = (
        "import runpy, sys; sys.modules['runlab'] = None; sys.modules['torch'] = None; "
        f"sys.argv = ['predict_onnx.py', {str(tmp_path / 'rows.json')!r}]; "
        "runpy.run_path('predict_onnx.py', run_name='__main__')"
    )
    got = subprocess.run([sys.executable, "-I", "-c", code], cwd=out, capture_output=True,
                         text=True, check=True)  # fmt: skip
    theirs = np.array([json.loads(line) for line in got.stdout.splitlines()])
    ours = runlab.load_model("quickstart", root=str(trained)).predict(np.asarray(rows))
    np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-5)
