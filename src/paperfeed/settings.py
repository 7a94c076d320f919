"""Where paperfeed keeps its data, and the other settings every face shares.

Resolution order for the data directory: an explicit argument (``--data-dir``), then the
``PAPERFEED_HOME`` environment variable, then ``$XDG_DATA_HOME/paperfeed`` (by default
``~/.local/share/paperfeed``).

The store is SQLite inside the data directory unless a PostgreSQL URL is given (the
``database_url`` argument, else ``PAPERFEED_DATABASE_URL``); the data directory still holds
what is not in the database (models, and the vector files of a SQLite store).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DB_FILENAME = "paperfeed.db"
DATABASE_URL_ENV = "PAPERFEED_DATABASE_URL"


def default_data_dir() -> Path:
    env = os.environ.get("PAPERFEED_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "paperfeed"


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    # postgresql://user:password@host:port/dbname selects the PostgreSQL store; None: SQLite.
    database_url: str | None = None

    @classmethod
    def resolve(
        cls, data_dir: str | Path | None = None, database_url: str | None = None
    ) -> Settings:
        path = Path(data_dir).expanduser() if data_dir else default_data_dir()
        url = database_url or os.environ.get(DATABASE_URL_ENV) or None
        return cls(data_dir=path.resolve(), database_url=url)

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_FILENAME
