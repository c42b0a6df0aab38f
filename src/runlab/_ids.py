"""Run ids: sortable by creation time and readable, ``20261122-141503-<name>-<4 hex>``."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


def slugify(name: str, max_len: int = 48) -> str:
    """A name safe inside a directory name: unsafe runs become '-', trimmed, never empty."""
    slug = _UNSAFE.sub("-", name).strip("-.")[:max_len].strip("-.")
    return slug or "run"


def make_run_id(name: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{slugify(name)}-{secrets.token_hex(2)}"
