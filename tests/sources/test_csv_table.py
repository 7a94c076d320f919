"""CSV / TSV reading lists with the documented column names."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperfeed.errors import FormatError
from paperfeed.model import Links, ListingEntry, Paper, new_paper
from paperfeed.sources.base import Parsed, Rejected, clean_text

from .helpers import FIXTURES, run_parser, split

EXPORT = (FIXTURES / "csv" / "export.csv").read_bytes()
SEMICOLON = (FIXTURES / "csv" / "spreadsheet-semicolon.csv").read_bytes()
TSV = (FIXTURES / "csv" / "reading-list.tsv").read_bytes()

# The column set of paperfeed's CSV exporter.
EXPORT_COLUMNS = [
    "id",
    "arxiv_id",
    "doi",
    "title",
    "abstract",
    "authors",
    "categories",
    "published",
    "updated",
    "url",
    "pdf_url",
    "code_url",
    "project_url",
    "upvotes",
]


def export_row(paper: Paper) -> list[str]:
    """A row as the exporter writes it: '; '-joined authors, space-joined categories."""
    return [
        paper.id,
        paper.arxiv_id or "",
        paper.doi or "",
        paper.title,
        paper.abstract,
        "; ".join(paper.authors),
        " ".join(paper.categories),
        paper.published.isoformat() if paper.published else "",
        paper.updated.isoformat() if paper.updated else "",
        paper.links.abs or "",
        paper.links.pdf or "",
        paper.links.code or "",
        paper.links.project or "",
        "" if paper.upvotes is None else str(paper.upvotes),
    ]


def export(papers: list[Paper], delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(EXPORT_COLUMNS)
    writer.writerows(export_row(p) for p in papers)
    return out.getvalue().encode()


def test_export_fixture() -> None:
    good, bad = split(run_parser("csv", EXPORT))
    assert bad == []
    assert [g.paper.id for g in good] == [
        "2310.06825",
        "doi:10.1038/nature14539",
        good[2].paper.id,
        "1706.03762",
        "hep-th/9711200",
    ]
    mistral = good[0]
    assert mistral.locator == "line 2"
    assert mistral.paper.abstract.startswith("We introduce Mistral 7B v0.1")
    assert 'and the "best" 34B model in reasoning.' in mistral.paper.abstract
    assert mistral.paper.authors == ("Albert Q. Jiang", "Alexandre Sablayrolles", "Arthur Mensch")
    assert mistral.paper.categories == ("cs.CL", "cs.AI", "cs.LG")
    assert mistral.paper.upvotes == 42
    assert mistral.paper.links.code == "https://github.com/mistralai/mistral-src"
    assert mistral.entry is None
    # The quoted abstract spans lines 2-5, so the next record starts on line 6.
    assert good[1].locator == "line 6"
    assert good[1].paper.links.abs == "https://www.nature.com/articles/nature14539"
    notes = good[2].paper
    assert notes.id.startswith("title:")  # our own "title:..." id is not identity
    assert notes.id != "title:0f3c1a9d2b7e4c55"
    assert notes.title == "Notes on our lab's evaluation protocol, v2"
    assert good[4].paper.doi == "10.1023/a:1026654312961"


def test_exporter_columns_round_trip() -> None:
    papers = [
        new_paper(
            title="Mistral 7B",
            abstract='We introduce Mistral 7B, a "fast" model;\nsee below, too.',
            authors=["Albert Q. Jiang", "Alexandre Sablayrolles"],
            categories=["cs.CL", "cs.LG"],
            arxiv_id="2310.06825",
            published=dt.date(2023, 10, 10),
            updated=dt.date(2023, 10, 12),
            links=Links(code="https://github.com/mistralai/mistral-src"),
            upvotes=42,
            source="csv",
        ),
        new_paper(
            title="Deep learning",
            doi="10.1038/nature14539",
            authors=["Yann LeCun", "Yoshua Bengio", "Geoffrey Hinton"],
            links=Links(
                abs="https://www.nature.com/articles/nature14539",
                pdf="https://www.nature.com/articles/nature14539.pdf",
                project="https://example.org/deep-learning",
            ),
            upvotes=0,
            source="csv",
        ),
        new_paper(title="Notes, v2: what we tried", abstract="Internal.", source="csv"),
        new_paper(title="Witten 1995", arxiv_id="hep-th/9503124", source="csv"),
    ]
    for delimiter in (",", ";", "\t"):
        good, bad = split(run_parser("csv", export(papers, delimiter)))
        assert bad == []
        assert [g.paper for g in good] == papers


def test_spreadsheet_export_with_bom_semicolons_and_crlf() -> None:
    good, bad = split(run_parser("csv", SEMICOLON, listing="reading-group"))
    assert bad == []
    assert [g.paper.id for g in good] == ["2310.06825", "2307.09288", "2309.06180"]
    mistral = good[0]
    assert mistral.paper.title == "Mistral 7B"  # no BOM left in the first header
    assert mistral.paper.authors == ("Albert Q. Jiang", "Alexandre Sablayrolles", "Arthur Mensch")
    assert mistral.paper.published == dt.date(2023, 10, 10)
    assert mistral.entry == ListingEntry("reading-group", dt.date(2023, 10, 11), 1)
    assert good[1].paper.authors == ("Hugo Touvron", "Louis Martin")
    assert good[2].paper.published == dt.date(2023, 9, 12)
    assert good[2].paper.upvotes is None
    assert [g.entry.rank for g in good if g.entry] == [1, 2, 3]


def test_tsv() -> None:
    good, bad = split(run_parser("csv", TSV))
    assert bad == []
    assert [g.paper.id for g in good[:2]] == ["1512.03385", "1412.6980"]
    assert good[1].paper.authors == ("Diederik P. Kingma", "Jimmy Ba")
    alexnet = good[2].paper
    assert alexnet.links.abs == "https://papers.nips.cc/paper/4824"
    assert alexnet.published == dt.date(2012, 1, 1)
    assert alexnet.authors[-1] == "Geoffrey E. Hinton"


@pytest.mark.parametrize("sep", [b";", b"\t"])
def test_excel_separator_line(sep: bytes) -> None:
    data = b"sep=%s\r\nTitle%sPublished\r\nA paper, with a comma%s2024-03-13\r\n" % (sep, sep, sep)
    (item,) = run_parser("csv", data)
    assert isinstance(item, Parsed)
    assert item.paper.title == "A paper, with a comma"
    assert item.paper.published == dt.date(2024, 3, 13)
    assert item.locator == "line 3"


HEADER = b"id,title,published,upvotes\n"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b"2301.00001,Caf\xe9 paper,2023-01-01,1\n", "broken encoding: line 3 is not valid UTF-8"),
        (b"2301.00001,Too few,2023-01-01\n", "row has 3 columns, the header has 4"),
        (b"2301.00001,Too,many,2023-01-01,1\n", "row has 5 columns, the header has 4"),
        (b"2301.00001,,2023-01-01,1\n", "missing title"),
        (b"2301.00001,Bad date,yesterday,1\n", "unparsable date in field 'published'"),
        (b"2301.00001,Bad votes,2023-01-01,lots\n", "invalid number in field 'upvotes'"),
    ],
)
def test_bad_rows_are_rejected_and_neighbours_kept(bad: bytes, reason: str) -> None:
    data = HEADER + b"2301.00002,Before,2023-01-02,2\n" + bad + b"2301.00003,After,2023-01-03,3\n"
    items = run_parser("csv", data)
    assert [type(i).__name__ for i in items] == ["Parsed", "Rejected", "Parsed"]
    rejected = items[1]
    assert isinstance(rejected, Rejected)
    assert rejected.locator == "line 3"
    assert rejected.reason.startswith(reason)
    assert rejected.raw
    rejected.raw.encode("utf-8")  # storable even when the row was not UTF-8


def test_control_characters_are_cleaned() -> None:
    (item,) = run_parser("csv", HEADER + b"1,Nul\x00byte\x07,2023,1\n")
    assert isinstance(item, Parsed)
    assert item.paper.title == "Nul byte"


def test_broken_encoding_inside_a_multiline_record() -> None:
    data = HEADER + b'1,"First line\nsecond \xff line",2023,1\n2,Next,2024,2\n'
    items = run_parser("csv", data)
    assert [(type(i).__name__, i.locator) for i in items] == [
        ("Rejected", "line 2"),
        ("Parsed", "line 4"),
    ]
    assert isinstance(items[0], Rejected)
    assert "line 3 is not valid UTF-8" in items[0].reason


def test_unbalanced_quote_costs_only_its_own_line() -> None:
    rows = [b"%d,Paper %d,2023-01-%02d,%d\n" % (n, n, n, n) for n in range(1, 8)]
    rows[2] = b'3,"Unclosed quote,2023-01-03,3\n'
    items = run_parser("csv", HEADER + b"".join(rows))
    good, bad = split(items)
    assert [b.locator for b in bad] == ["line 4"]
    assert [g.paper.title for g in good] == [f"Paper {n}" for n in (1, 2, 4, 5, 6, 7)]
    assert [g.locator for g in good] == ["line 2", "line 3", "line 5", "line 6", "line 7", "line 8"]


def test_blank_and_empty_rows_are_skipped() -> None:
    data = HEADER + b"\n,,,\n1,One,2023,1\n\n\n2,Two,2024,2"
    good, bad = split(run_parser("csv", data))
    assert bad == []
    assert [(g.paper.title, g.locator) for g in good] == [("One", "line 4"), ("Two", "line 7")]


def test_format_errors() -> None:
    with pytest.raises(FormatError, match="empty"):
        run_parser("csv", b"")
    with pytest.raises(FormatError, match="empty"):
        run_parser("csv", b"\r\n\n")
    with pytest.raises(FormatError, match="no 'title' column"):
        run_parser("csv", b"name,year\nAttention,2017\n")
    with pytest.raises(FormatError, match="no 'title' column"):
        run_parser("csv", b"Title: Attention Is All You Need\nAbstract: ...\n")
    assert run_parser("csv", HEADER) == []


cell_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(
    titles=st.lists(cell_text, min_size=1, max_size=5),
    abstract=cell_text,
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_generated_rows_round_trip(titles: list[str], abstract: str, delimiter: str) -> None:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(["title", "abstract"])
    for title in titles:
        writer.writerow([title, abstract])
    items = run_parser("csv", out.getvalue().encode())
    # A row of blank cells is skipped; a row with a title that cleans to nothing is not.
    expected = [clean_text(t) for t in titles if t.strip() or abstract.strip()]
    assert [i.paper.title if isinstance(i, Parsed) else "" for i in items] == expected
    assert all(i.reason == "missing title" for i in items if isinstance(i, Rejected))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    for prefix in (b"", HEADER, b"title\t\xff\n"):
        try:
            items = run_parser("csv", prefix + data)
        except FormatError:
            continue
        assert all(isinstance(i, (Parsed, Rejected)) for i in items)
        for item in items:
            if isinstance(item, Rejected):
                item.raw.encode("utf-8")


@settings(max_examples=200, deadline=None)
@given(
    source=st.sampled_from([EXPORT, SEMICOLON, TSV]),
    position=st.integers(min_value=0, max_value=len(EXPORT)),
    noise=st.binary(max_size=12),
    drop=st.integers(min_value=0, max_value=8),
)
def test_fuzz_mutated_samples(source: bytes, position: int, noise: bytes, drop: int) -> None:
    at = min(position, len(source))
    mutated = source[:at] + noise + source[at + drop :]
    try:
        items = run_parser("csv", mutated)
    except FormatError:
        return
    assert all(isinstance(i, (Parsed, Rejected)) for i in items)
    if (
        source is TSV
        and at > TSV.index(b"\n")
        and not set(noise + source[at : at + drop]) & set(b'\n\r"\t')
    ):
        # Damage inside one row of a file without quoted fields costs that row only.
        assert len(split(items)[0]) >= 2
