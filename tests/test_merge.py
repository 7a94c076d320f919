from __future__ import annotations

import datetime as dt

from paperfeed.merge import content_hash, id_strength, merge_papers
from paperfeed.model import Links, new_paper


def test_richer_fields_win_and_sources_accumulate() -> None:
    stored = new_paper(
        title="Matryoshka Representation Learning",
        abstract="Short.",
        authors=["A. Kusupati"],
        categories=["cs.LG"],
        published=dt.date(2022, 5, 26),
        source="listing",
    )
    incoming = new_paper(
        title="Matryoshka representation learning",
        abstract="A much longer abstract that says more.",
        authors=["Aditya Kusupati", "Gantavya Bhatt"],
        categories=["cs.CV", "cs.LG"],
        arxiv_id="2205.13147v3",
        published=dt.date(2022, 5, 27),
        updated=dt.date(2024, 2, 8),
        links=Links(code="https://github.com/RAIVNLab/MRL"),
        upvotes=5,
        source="arxiv-atom",
    )
    merged = merge_papers(stored, incoming)
    assert merged.id == "2205.13147"  # upgraded from the title hash
    assert merged.title == "Matryoshka representation learning"  # arXiv's title wins
    assert merged.abstract == incoming.abstract
    assert merged.authors == incoming.authors
    assert merged.categories == ("cs.LG", "cs.CV")
    assert merged.published == dt.date(2022, 5, 26)
    assert merged.updated == dt.date(2024, 2, 8)
    assert merged.links.code == "https://github.com/RAIVNLab/MRL"
    assert merged.links.abs == "https://arxiv.org/abs/2205.13147"
    assert merged.upvotes == 5
    assert merged.sources == ("listing", "arxiv-atom")


def test_merge_never_downgrades() -> None:
    stored = new_paper(title="T", abstract="long abstract here", arxiv_id="2301.00001", upvotes=9)
    incoming = new_paper(title="T", abstract="short", upvotes=3, doi="10.1000/x")
    merged = merge_papers(stored, incoming)
    assert merged.id == "2301.00001"
    assert merged.abstract == "long abstract here"
    assert merged.upvotes == 9
    assert merged.doi == "10.1000/x"


def test_merge_is_idempotent() -> None:
    a = new_paper(title="T", abstract="x", authors=["A"], source="s1")
    b = new_paper(title="T", abstract="xy", authors=["A", "B"], source="s2")
    once = merge_papers(a, b)
    assert merge_papers(once, b) == once
    assert content_hash(merge_papers(once, a)) == content_hash(once)


def test_content_hash_ignores_sources() -> None:
    a = new_paper(title="T", source="s1")
    b = new_paper(title="T", source="s2")
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(new_paper(title="T", abstract="changed"))


def test_id_strength_order() -> None:
    assert id_strength("title:abc") < id_strength("doi:10.1/x") < id_strength("2301.00001")
