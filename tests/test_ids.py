from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paperfeed.ids import (
    ArxivId,
    normalize_doi,
    normalize_title,
    parse_arxiv_id,
    stable_id,
    title_key,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2301.12345", ArxivId("2301.12345")),
        ("2301.12345v2", ArxivId("2301.12345", 2)),
        ("arXiv:2301.12345v12", ArxivId("2301.12345", 12)),
        ("ARXIV: 2301.12345", ArxivId("2301.12345")),
        ("0704.0001", ArxivId("0704.0001")),
        ("1412.6980v9", ArxivId("1412.6980", 9)),
        ("hep-th/9901001", ArxivId("hep-th/9901001")),
        ("hep-th/9901001v3", ArxivId("hep-th/9901001", 3)),
        ("math.AG/0601001", ArxivId("math/0601001")),
        ("cond-mat/0207270v1", ArxivId("cond-mat/0207270", 1)),
        ("https://arxiv.org/abs/2301.12345v3", ArxivId("2301.12345", 3)),
        ("http://arxiv.org/abs/hep-th/9901001v1", ArxivId("hep-th/9901001", 1)),
        ("https://arxiv.org/pdf/2301.12345.pdf", ArxivId("2301.12345")),
        ("https://arxiv.org/pdf/2301.12345v2", ArxivId("2301.12345", 2)),
        ("https://export.arxiv.org/abs/2301.12345?context=cs", ArxivId("2301.12345")),
        ("arxiv.org/html/2403.08764v1/", ArxivId("2403.08764", 1)),
        ("10.48550/arXiv.2301.12345", ArxivId("2301.12345")),
        ("https://doi.org/10.48550/arXiv.2301.12345", ArxivId("2301.12345")),
    ],
)
def test_parse_arxiv_id_accepts_every_spelling(text: str, expected: ArxivId) -> None:
    assert parse_arxiv_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "2313.12345",  # month 13
        "1412.12345",  # five digits before 2015
        "1501.1234",  # four digits from 2015
        "hello world",
        "10.1038/nature12373",
        "12345",
        "hep-th/990100",
    ],
)
def test_parse_arxiv_id_rejects_non_ids(text: str) -> None:
    assert parse_arxiv_id(text) is None


def test_arxiv_id_str_and_urls() -> None:
    a = ArxivId("2301.12345", 2)
    assert str(a) == "2301.12345v2"
    assert a.abs_url == "https://arxiv.org/abs/2301.12345"
    assert not a.old_style
    assert ArxivId("hep-th/9901001").old_style


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.1038/Nature12373", "10.1038/nature12373"),
        ("https://doi.org/10.1145/3292500.3330701", "10.1145/3292500.3330701"),
        ("doi:10.1000/xyz.", "10.1000/xyz"),
        ("not a doi", None),
        ("11.1000/xyz", None),
    ],
)
def test_normalize_doi(text: str, expected: str | None) -> None:
    assert normalize_doi(text) == expected


def test_title_key_ignores_case_accents_punctuation_latex() -> None:
    a = title_key("Attention Is All You Need")
    assert a == title_key("  attention is all you need. ")
    assert a == title_key("Attention is all you {N}eed!")
    assert title_key("Ünïcode Tïtle") == title_key("unicode title")
    assert title_key("\\emph{Deep} learning") == title_key("Deep learning")
    assert a != title_key("Attention Is Not All You Need")
    assert len(a) == 16


def test_stable_id_rule() -> None:
    assert stable_id(arxiv_id="arXiv:2301.12345v2", doi="10.1/x", title="T") == "2301.12345"
    assert stable_id(arxiv_id=None, doi="10.1000/X", title="T") == "doi:10.1000/x"
    assert (
        stable_id(arxiv_id="garbage", doi=None, title="A Title") == f"title:{title_key('A Title')}"
    )


@given(st.text(max_size=200))
def test_parsers_never_raise(text: str) -> None:
    parse_arxiv_id(text)
    normalize_doi(text)
    assert isinstance(normalize_title(text), str)
    assert len(title_key(text)) == 16


@given(
    st.integers(min_value=7, max_value=99).filter(lambda y: y != 15),
    st.integers(1, 12),
    st.integers(1, 9999),
    st.one_of(st.none(), st.integers(1, 30)),
)
def test_new_style_ids_round_trip(year: int, month: int, number: int, version: int | None) -> None:
    digits = 5 if year >= 15 else 4
    base = f"{year:02d}{month:02d}.{number:0{digits}d}"
    text = base + (f"v{version}" if version else "")
    assert parse_arxiv_id(text) == ArxivId(base, version)
    assert parse_arxiv_id(f"https://arxiv.org/abs/{text}") == ArxivId(base, version)
