"""Numbered schema migrations, shipped as ``NNNN_name.sql`` files inside a backend package.

Each migration runs in its own transaction together with the row that records it, so a
crash mid-migration leaves the previous schema intact and the next open simply retries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(package: str) -> list[Migration]:
    """All migrations of a backend, in order; numbering gaps or duplicates are a bug."""
    found: list[Migration] = []
    for entry in resources.files(package).iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda mig: mig.version)
    expected = list(range(1, len(found) + 1))
    if [mig.version for mig in found] != expected:
        raise RuntimeError(f"migrations in {package} are not numbered 1..N: {found!r}")
    return found
