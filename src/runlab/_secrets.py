"""Secret redaction, before anything is written, indexed, mirrored or shown.

What is a secret (docs/security.md lists the same):

* the value of a key whose name contains ``secret``, ``password``/``passwd``, ``passphrase``,
  ``api_key``/``apikey``, ``access_key``, ``private_key`` or ``credential`` (any case), or has
  ``token``, ``auth`` or ``authorization`` as one of its words (``auth_token``, ``hfToken``,
  ``GITHUB_TOKEN``, ``auth``). Words, not substrings, for those three, so that
  hyper-parameters such as ``max_tokens``, ``tokenizer`` or ``author`` stay visible;
* a password inside a URL (``postgresql://me:pw@host/db``) and the value of a secret-named query
  parameter (``?token=...``, ``&api_key=...``), wherever the URL is;
* a copy of a secret: a string that contains a secret value of 6 characters or more
  (``notes: "pw ${db.password}"`` after interpolation), in the same config or in the command
  line and tags written beside it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "***"
_SECRET_SUBSTRING = re.compile(
    r"secret|password|passwd|passphrase|api_?key|access_?key|private_?key|credential",
    re.IGNORECASE,
)
_SECRET_WORDS = {"token", "auth", "authorization"}
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_URL_PASSWORD = re.compile(r"(://[^/?#@:\s]*:)[^/?#@\s]*@")  # scheme://user:PASSWORD@host
_QUERY_PARAM = re.compile(r"([?&;])([^=&;#\s]+)=([^&;#\s]*)")
# a secret value shorter than this is redacted under its key only: copies of "none" or "1234"
# cannot be told from ordinary values
MIN_COPIED = 6


def is_secret_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    return _secret_name(key)


@functools.lru_cache(maxsize=4096)
def _secret_name(key: str) -> bool:
    """(Remembered: a config's hundred-odd key names come back with every run and every
    combination of a sweep.)"""
    if _SECRET_SUBSTRING.search(key):
        return True
    return any(word.lower() in _SECRET_WORDS for word in _WORDS.findall(key))


def is_secret_path(path: Iterable[object]) -> bool:
    """A dotted name (``config.db.password``) that reaches into a secret."""
    return any(is_secret_key(part) for part in path)


def redact_url(text: str) -> str:
    """``postgresql://me:pw@host/db`` -> ``postgresql://me:***@host/db``; ``?token=x`` ->
    ``?token=***``."""
    text = _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", text)
    if "=" not in text or not any(c in text for c in "?&;"):
        return text

    def query(m: re.Match[str]) -> str:
        key = m.group(2)
        return f"{m.group(1)}{key}={REDACTED}" if is_secret_key(key) else m.group(0)

    return _QUERY_PARAM.sub(query, text)


def secret_values(obj: Any) -> set[str]:
    """Every value held under a secret-named key in ``obj`` (as text), to find its copies."""
    found: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, Mapping):
            for v in value.values():
                collect(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                collect(v)
        elif value is not None and not isinstance(value, bool) and str(value) != REDACTED:
            found.add(str(value))

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                (collect if is_secret_key(k) else walk)(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)

    walk(obj)
    return {s for s in found if len(s) >= MIN_COPIED}


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without URL passwords, secret query parameters or copies of ``secrets``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_COPIED and secret in text:
            text = text.replace(secret, REDACTED)
    return redact_url(text)


def redact(obj: Any, secrets: Iterable[str] | None = None) -> Any:
    """A copy of ``obj`` with every secret-named key's value replaced, at any depth, and every
    copy of such a value (``secrets``: more values to treat so, e.g. from the config beside)."""
    known = secret_values(obj) | set(secrets or ())
    return _redact(obj, known)


def _redact(obj: Any, secrets: set[str]) -> Any:
    if isinstance(obj, Mapping):
        return {k: (REDACTED if is_secret_key(k) else _redact(v, secrets)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_redact(v, secrets) for v in obj]
    if isinstance(obj, str):
        return redact_text(obj, secrets)
    if obj is not None and not isinstance(obj, (bool, float)) and str(obj) in secrets:
        return REDACTED  # an integer copied from a secret
    return obj


def redact_args(args: Iterable[str], secrets: Iterable[str] = ()) -> list[str]:
    """A command line (or overrides) without secrets: ``+db.password=PW`` ->
    ``+db.password=***``, ``--storage postgresql://u:pw@h/db`` -> ``...u:***@h/db``, and any
    copy of ``secrets``."""
    known = set(secrets)
    out = []
    for arg in args:
        key, eq, _ = str(arg).partition("=")
        if eq and is_secret_path(key.lstrip("+~-").split(".")):
            out.append(f"{key}={REDACTED}")
        else:
            out.append(redact_text(str(arg), known))
    return out
