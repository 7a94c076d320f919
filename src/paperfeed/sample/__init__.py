"""The bundled sample corpus: four days of a daily-papers listing (CC0 arXiv metadata).

Made from saved listing pages by ``scripts/make_sample.py``; a JSON-lines file in the
generic format, one line per appearance (``feed_date``, ``rank``, ``listing``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SAMPLE_FILE = "daily-papers-sample.jsonl.gz"


def sample_path() -> Path:
    """Path of the bundled sample file (inside the installed package)."""
    return Path(str(resources.files(__name__).joinpath(SAMPLE_FILE)))
