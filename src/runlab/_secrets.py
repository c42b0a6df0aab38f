"""Secret redaction: keys naming a token, secret, password, API key or credential become ``***``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "***"
_SECRET_KEY = re.compile(r"token|secret|password|api_?key|credential", re.IGNORECASE)


def is_secret_key(key: object) -> bool:
    return isinstance(key, str) and _SECRET_KEY.search(key) is not None


def redact(obj: Any) -> Any:
    """A copy of ``obj`` with every secret-named key's value replaced, at any depth."""
    if isinstance(obj, Mapping):
        return {k: (REDACTED if is_secret_key(k) else redact(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(v) for v in obj]
    return obj
