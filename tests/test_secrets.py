"""What counts as a secret, as a table: each row a value and what may be written of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from runlab._secrets import redact, redact_args, redact_url

SECRET_KEYS = [
    "password", "db_password", "passwd", "passphrase", "api_key", "apiKey", "access_key",
    "AWS_SECRET_ACCESS_KEY", "private_key", "privateKey", "credentials", "auth", "auth_token",
    "hfToken", "GITHUB_TOKEN", "Authorization", "client_secret",
]  # fmt: skip
PLAIN_KEYS = ["max_tokens", "tokenizer", "tokens_per_sec", "author", "authors", "keyword", "lr"]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_keys(key: str) -> None:
    assert redact({"a": {key: "value-1234"}}) == {"a": {key: "***"}}


@pytest.mark.parametrize("key", PLAIN_KEYS)
def test_ordinary_keys_stay_visible(key: str) -> None:
    assert redact({key: 8}) == {key: 8}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://me:pw@host/db", "postgresql://me:***@host/db"),
        ("https://user:p%40ss@h:8080/x?y=1", "https://user:***@h:8080/x?y=1"),
        ("http://h/api?token=abc&page=2", "http://h/api?token=***&page=2"),
        ("s3://bucket/x?X-Amz-Credential=AK&b=1", "s3://bucket/x?X-Amz-Credential=***&b=1"),
        ("http://host:5000/path", "http://host:5000/path"),  # a port is not a password
        ("sqlite:////tmp/a.db", "sqlite:////tmp/a.db"),
        ("ratio a=b", "ratio a=b"),
    ],
)
def test_credentials_inside_urls(text: str, expected: str) -> None:
    assert redact_url(text) == expected
    assert redact({"anything": text}) == {"anything": expected}


def test_copies_of_a_secret_are_redacted_wherever_they_went() -> None:
    cfg = {
        "db": {"password": "hunter2-long"},
        "notes": "pw hunter2-long, twice: hunter2-long",
        "list": ["x", "hunter2-long"],
        "short": {"token": "none"},  # too short to look for: only its own key is redacted
        "activation": "none",
    }
    assert redact(cfg) == {
        "db": {"password": "***"},
        "notes": "pw ***, twice: ***",
        "list": ["x", "***"],
        "short": {"token": "***"},
        "activation": "none",
    }


def test_command_lines_lose_their_secrets() -> None:
    args = [
        "runlab",
        "run",
        "c.yaml",
        "+db.password=hunter2-long",
        "~auth",
        "notes=see hunter2-long",
        "--storage",
        "postgresql://u:pw@h/db",
        "optim.lr=0.1",
    ]
    assert redact_args(args, {"hunter2-long"}) == [
        "runlab",
        "run",
        "c.yaml",
        "+db.password=***",
        "~auth",
        "notes=see ***",
        "--storage",
        "postgresql://u:***@h/db",
        "optim.lr=0.1",
    ]


def test_a_sweep_with_a_secret_override_cannot_resume_it_silently(
    cli, root: Path, tmp_path: Path
) -> None:
    """sweep.json does not keep the secret, so a resume must not run with '***'."""
    quick = str(Path(__file__).resolve().parents[1] / "examples" / "quickstart.yaml")
    args = ["~model", "+model._target_=tests.helpers.NaNAfter", "+model.after=25"]
    code, _, err = cli(
        "sweep", quick, *args, "+db.password=hunter2-long", "optim.lr=0.1,0.2",
        "trainer.epochs=2", "-o", root, "-f", "json",
    )  # fmt: skip
    assert code == 1, err  # both runs fail (NaN): the resume below has work to do
    sweep = (root / "sweeps").glob("*/sweep.json")
    text = next(sweep).read_text()
    assert "hunter2-long" not in text and "+db.password=***" in text
    code, _, err = cli("sweep", "--resume", "quickstart", "-o", root)
    assert code == 2 and err.count("\n") == 1 and "oc.env" in err, err
