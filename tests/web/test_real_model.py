"""End to end with the real all-MiniLM-L6-v2: the sample embedded, the engine built lazily
by the app (as `paperfeed serve` does), searched and browsed through the pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from paperfeed.index import semantic
from paperfeed.ingest import ingest_file
from paperfeed.sample import sample_path
from paperfeed.search import SearchEngine
from paperfeed.settings import Settings
from paperfeed.store import open_store
from paperfeed.web import create_app

pytestmark = pytest.mark.slow


def test_pages_with_the_real_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sentence_transformers")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "2")
    settings = Settings.resolve(tmp_path / "data")
    with open_store(settings) as store:
        ingest_file(store, sample_path())
        semantic.build(settings, store)
        built: list[SearchEngine] = []

        def factory() -> SearchEngine:
            engine = semantic.open_engine(settings, store)
            built.append(engine)
            return engine

        app = create_app(settings, store, factory)
        with TestClient(app, raise_server_exceptions=False) as client:
            r = client.get("/search", params={"q": "text-to-image personalization"})
            assert r.status_code == 200
            assert 'value="hybrid" checked' in r.text
            found = re.findall(r'<h2 class="title"><a href="([^"]+)">([^<]+)</a>', r.text)
            assert sum("Personalization" in t for _, t in found[:5]) >= 3
            # By meaning alone, a paraphrase with none of the title words still finds them.
            meaning = client.get(
                "/api/v1/search",
                params={"q": "teach a picture generator a new subject from a few photos"},
            ).json()
            assert meaning["mode"] == "hybrid"
            assert any(
                "Personalization" in x["paper"]["title"] or "Subject" in x["paper"]["title"]
                for x in meaning["results"][:5]
            )
            nothing = client.get("/search", params={"q": "qwxz vbnm plokij"})
            assert "Nothing relevant found" in nothing.text
            paper = client.get(found[0][0])
            similar = re.findall(r'<ol class="similar">(.*?)</ol>', paper.text, re.S)
            assert similar
            assert len(re.findall(r"<li>", similar[0])) == 8
        assert len(built) == 1  # built once, whatever the number of requests
