"""Secret redaction: config values under secret-looking keys become ``***``.

A key is secret when its name contains ``secret``, ``password``, ``api_key``/``apikey`` or
``credential`` (any case), or has ``token`` as one of its words (``auth_token``, ``hfToken``,
``GITHUB_TOKEN``). ``token`` is matched as a word, not a substring, so that hyper-parameters such
as ``max_tokens``, ``tokenizer`` or ``tokens_per_sec`` stay visible.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "***"
_URL_PASSWORD = re.compile(r"(://[^/?#@:\s]*:)[^/?#@\s]*@")  # scheme://user:PASSWORD@host
_SECRET_SUBSTRING = re.compile(r"secret|password|passwd|api_?key|credential", re.IGNORECASE)
_SECRET_WORDS = {"token"}
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def is_secret_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    if _SECRET_SUBSTRING.search(key):
        return True
    return any(word.lower() in _SECRET_WORDS for word in _WORDS.findall(key))


def redact(obj: Any) -> Any:
    """A copy of ``obj`` with every secret-named key's value replaced, at any depth."""
    if isinstance(obj, Mapping):
        return {k: (REDACTED if is_secret_key(k) else redact(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(v) for v in obj]
    return obj


def redact_url(text: str) -> str:
    """``postgresql://me:pw@host/db`` -> ``postgresql://me:***@host/db``."""
    return _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", text)


def redact_options(obj: Any) -> Any:
    """:func:`redact`, and passwords inside URLs (a tracking URI with credentials)."""
    obj = redact(obj)
    if isinstance(obj, Mapping):
        return {k: redact_options(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_options(v) for v in obj]
    return redact_url(obj) if isinstance(obj, str) else obj
