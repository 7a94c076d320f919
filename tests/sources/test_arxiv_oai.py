"""arXiv OAI-PMH ListRecords pages: arXiv and arXivRaw formats, tokens, deletions, errors."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperfeed.errors import FormatError
from paperfeed.model import Links
from paperfeed.sources.arxiv_oai import OaiPage, parse, parse_page
from paperfeed.sources.base import ParseContext, Parsed, Rejected
from tests.sources.helpers import FIXTURES, run_parser, split

FMT = "oai-pmh"
DIR = FIXTURES / "oai-pmh"
ARXIV_PAGE = (DIR / "listrecords-arXiv-page1.xml").read_bytes()
RAW_PAGE = (DIR / "listrecords-arXivRaw-last.xml").read_bytes()
BAD = (DIR / "bad-records.xml").read_bytes()
NO_RECORDS = (DIR / "error-noRecordsMatch.xml").read_bytes()
ALL_FIXTURES = [
    ARXIV_PAGE,
    RAW_PAGE,
    BAD,
    NO_RECORDS,
    (DIR / "error-badResumptionToken.xml").read_bytes(),
    (DIR / "error-badArgument.xml").read_bytes(),
]
CTX = ParseContext(source=FMT, listing="oai", path="page.xml")


def record_lines(data: bytes) -> list[int]:
    return [n for n, line in enumerate(data.splitlines(), 1) if line.strip() == b"<record>"]


def parse_ok(data: bytes) -> list[Parsed]:
    good, bad = split(run_parser(FMT, data))
    assert bad == []
    return good


# ------------------------------------------------------------------ arXiv format


def test_arxiv_format_page() -> None:
    good = parse_ok(ARXIV_PAGE)
    assert [g.paper.id for g in good] == [
        "0704.0001",
        "0704.0002",
        "0704.0004",
        "hep-ex/0307015",
        "hep-th/0108200",
    ]
    first = good[0].paper
    assert first.title == (
        "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    )
    assert first.authors == ("C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan")
    assert first.categories == ("hep-ph",)
    assert first.doi == "10.1103/physrevd.76.013009"
    assert (first.published, first.updated) == (dt.date(2007, 4, 2), dt.date(2007, 7, 24))
    assert first.abstract.startswith("A fully differential calculation")
    assert first.abstract.endswith("logarithmic accuracy.")
    assert first.links == Links(
        abs="https://arxiv.org/abs/0704.0001", pdf="https://arxiv.org/pdf/0704.0001"
    )
    assert first.sources == (FMT,)
    # A bulk harvest is not a feed day.
    assert all(g.entry is None for g in good)
    assert good[1].paper.categories == ("math.CO", "cs.CG")
    assert good[2].paper.updated is None
    assert good[3].paper.authors == ("H1 Collaboration",)
    gates = good[4].paper
    assert gates.authors == ("S. James Gates Jr", "Lubna Rana")
    # Several DOIs in one field: the first is the paper's.
    assert gates.doi == "10.1016/s0370-2693(01)01099-5"
    lines = record_lines(ARXIV_PAGE)
    # Record 3 is deleted: skipped, but the numbering follows the document.
    assert [g.locator for g in good] == [
        f"record {n} (oai:arXiv.org:{i}, line {lines[n - 1]})"
        for n, i in [
            (1, "0704.0001"),
            (2, "0704.0002"),
            (4, "0704.0004"),
            (5, "hep-ex/0307015"),
            (6, "hep-th/0108200"),
        ]
    ]


def test_parse_page_reports_token_and_deletions() -> None:
    page = parse_page(ARXIV_PAGE, CTX)
    assert isinstance(page, OaiPage)
    assert page.resumption_token == "6960524|1001"
    assert page.complete_list_size == 2370
    assert page.cursor == 0
    assert page.deleted == 1
    assert [i.paper.id for i in page.items if isinstance(i, Parsed)] == [
        g.paper.id for g in parse_ok(ARXIV_PAGE)
    ]


# ------------------------------------------------------------------ arXivRaw format


def test_arxiv_raw_page() -> None:
    good = parse_ok(RAW_PAGE)
    assert [g.paper.id for g in good] == [
        "0704.0001",
        "1706.03762",
        "astro-ph/9904306",
        "0901.0512",
    ]
    first, attention, khokhlov, graphene = (g.paper for g in good)
    assert first.authors == ("C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan")
    assert (first.published, first.updated) == (dt.date(2007, 4, 2), dt.date(2007, 7, 24))
    # Versions are ordered by number, not by position: v10 is the last one.
    assert (attention.published, attention.updated) == (dt.date(2017, 6, 12), dt.date(2023, 8, 2))
    assert len(attention.authors) == 8
    assert attention.authors[5] == "Aidan N. Gomez"
    assert attention.categories == ("cs.CL", "cs.LG")
    # A single version: first and last are the same.
    assert khokhlov.published == khokhlov.updated == dt.date(1999, 4, 22)
    assert khokhlov.authors == ("D. L. Khokhlov",)
    assert graphene.title == "Anomalous thermal transport in disordered graphene ribbons"
    assert graphene.authors == ("M. Gonzalez", "P. Smith", "R. A. Jones Jr.")
    assert graphene.categories == ("cond-mat.mes-hall", "cond-mat.dis-nn")
    assert graphene.doi == "10.1103/physrevb.80.035421"


def test_last_page_has_no_token() -> None:
    page = parse_page(RAW_PAGE, CTX)
    assert page.resumption_token is None
    assert (page.complete_list_size, page.cursor) == (2370, 2000)
    assert page.deleted == 1
    assert len(page.items) == 4


def test_get_record_response() -> None:
    record = ARXIV_PAGE[ARXIV_PAGE.index(b"<record>") : ARXIV_PAGE.index(b"</record>") + 9]
    data = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">\n'
        b"<responseDate>2024-03-14T12:03:27Z</responseDate>\n"
        b'<request verb="GetRecord" identifier="oai:arXiv.org:0704.0001" metadataPrefix="arXiv">'
        b"http://export.arxiv.org/oai2</request>\n<GetRecord>\n"
        + record
        + b"\n</GetRecord>\n</OAI-PMH>\n"
    )
    good = parse_ok(data)
    assert [g.paper.id for g in good] == ["0704.0001"]
    assert parse_page(data, CTX).resumption_token is None


# ------------------------------------------------------------------ OAI errors


def test_no_records_match_is_an_empty_result() -> None:
    assert run_parser(FMT, NO_RECORDS) == []
    page = parse_page(NO_RECORDS, CTX)
    assert page == OaiPage(
        items=[], resumption_token=None, complete_list_size=None, cursor=None, deleted=0
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "error-badResumptionToken.xml",
            "OAI-PMH error badResumptionToken: The value of the resumptionToken argument "
            "is invalid or expired.",
        ),
        (
            "error-badArgument.xml",
            "OAI-PMH error badArgument: Illegal argument: 'from' must be a date of the form "
            "YYYY-MM-DD",
        ),
    ],
)
def test_other_oai_errors_are_format_errors(name: str, message: str) -> None:
    data = (DIR / name).read_bytes()
    with pytest.raises(FormatError, match=re.escape(f"<test>: {message}")):
        run_parser(FMT, data)
    with pytest.raises(FormatError, match=re.escape(f"page.xml: {message}")):
        parse_page(data, CTX)


# ------------------------------------------------------------------ bad records


def test_bad_records_are_rejected_and_neighbours_kept() -> None:
    good, bad = split(run_parser(FMT, BAD))
    lines = record_lines(BAD)
    assert [(b.locator, b.reason) for b in bad] == [
        (f"record 1 (oai:arXiv.org:0704.0010, line {lines[0]})", "missing title"),
        (
            f"record 2 (oai:arXiv.org:0704.0011, line {lines[1]})",
            "unparsable date in field 'created': '2007-13-45'",
        ),
        (f"record 3 (oai:arXiv.org:0704.0012, line {lines[2]})", "missing metadata"),
        (
            f"record 5 (oai:arXiv.org:0704.0013, line {lines[4]})",
            "unparsable date in field 'version v1 date': 'sometime in April'",
        ),
    ]
    assert all(b.raw.startswith("<record>") for b in bad)
    assert "2007-13-45" in bad[1].raw
    assert [g.paper.id for g in good] == ["0704.0004"]


def test_broken_utf8_in_one_record_keeps_the_others() -> None:
    data = ARXIV_PAGE.replace(b"<keyname>Streinu</keyname>", b"<keyname>Str\xe9inu</keyname>")
    good, bad = split(run_parser(FMT, data))
    assert [g.paper.id for g in good] == [
        "0704.0001",
        "0704.0004",
        "hep-ex/0307015",
        "hep-th/0108200",
    ]
    assert len(bad) == 1
    assert bad[0].locator.startswith("record 2 (oai:arXiv.org:0704.0002")
    assert bad[0].reason.startswith("broken encoding")


def test_truncated_page_keeps_completed_records() -> None:
    cut = RAW_PAGE.index(b"<title>Improved scenario")
    good, bad = split(run_parser(FMT, RAW_PAGE[:cut]))
    assert [g.paper.id for g in good] == ["0704.0001", "1706.03762"]
    assert len(bad) == 1
    assert bad[0].reason.startswith("truncated or malformed XML at line ")
    assert bad[0].locator.endswith("(after record 3)")
    # A truncated page cannot be trusted for its token either.
    assert parse_page(RAW_PAGE[:cut], CTX).resumption_token is None


def test_every_truncation_keeps_completed_records() -> None:
    for cut in [*range(0, 400, 3), *range(400, len(ARXIV_PAGE), 29)]:
        prefix = ARXIV_PAGE[:cut]
        try:
            items = run_parser(FMT, prefix)
        except FormatError:
            assert re.search(rb"<OAI-PMH[^>]*>", prefix) is None
            continue
        good, bad = split(items)
        completed = prefix.count(b"</record>")
        deleted = 1 if prefix.count(b"</record>") >= 3 else 0
        assert len(good) == completed - deleted
        assert len(bad) == 1
        assert bad[0].reason.startswith("truncated or malformed XML at line")


def test_malformed_record_stops_the_page_with_its_line() -> None:
    data = ARXIV_PAGE.replace(
        b"<categories>math.CO</categories>", b"<categories>math.CO<categories>"
    )
    good, bad = split(run_parser(FMT, data))
    assert [g.paper.id for g in good] == ["0704.0001", "0704.0002"]
    assert len(bad) == 1
    assert "mismatched tag" in bad[0].reason
    # expat notices the unclosed element where the enclosing one ends.
    lines = data.splitlines()
    start = next(n for n, x in enumerate(lines) if b"<id>0704.0004</id>" in x)
    line = lines.index(b"</abstract></arXiv>", start) + 1
    assert bad[0].locator == f"line {line} (after record 3)"
    assert "evaluate the\ndeterminant.\n</abstract></arXiv>" in bad[0].raw


def test_large_harvest_streams() -> None:
    head, rest = RAW_PAGE.split(b"<record>", 1)
    record = b"<record>" + rest.split(b"</record>", 1)[0] + b"</record>\n"
    body = b"".join(
        record.replace(b"0704.0001", b"0704.%04d" % (i + 1)).replace(b"474kb", b"%dkb" % i)
        for i in range(800)
    )
    data = head + body + b"</ListRecords>\n</OAI-PMH>\n"
    stream = io.BytesIO(data)
    items = parse(stream, CTX)
    assert isinstance(next(items), Parsed)
    assert stream.tell() < len(data) // 5
    rest_items = list(items)
    assert len(rest_items) == 799
    assert isinstance(rest_items[-1], Parsed)
    assert rest_items[-1].paper.id == "0704.0800"


# ------------------------------------------------------------------ not this format


def test_unsupported_metadata_format_is_a_format_error() -> None:
    data = (
        b'<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><ListRecords><record>'
        b"<header><identifier>oai:arXiv.org:0704.0001</identifier></header><metadata>"
        b'<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
        b'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>T</dc:title></oai_dc:dc>'
        b"</metadata></record></ListRecords></OAI-PMH>"
    )
    with pytest.raises(FormatError, match="unsupported metadata format <dc>"):
        run_parser(FMT, data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (b"not xml", "not an XML document"),
        ((FIXTURES / "arxiv-atom" / "query-classic.xml").read_bytes(), "root element is <feed>"),
        (b"<html><body>Retry later</body></html>", "root element is <html>"),
    ],
)
def test_not_oai_is_a_format_error(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=re.escape(message)):
        run_parser(FMT, data)


# ------------------------------------------------------------------ fuzzing


def check_contract(data: bytes) -> None:
    try:
        items = run_parser(FMT, data)
    except FormatError:
        return
    for item in items:
        assert isinstance(item, Parsed | Rejected)
        assert item.locator


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    check_contract(data)


XML_BITS = st.sampled_from(
    [
        '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">',
        "</OAI-PMH>",
        "<ListRecords>",
        "</ListRecords>",
        "<record>",
        "</record>",
        "<header>",
        '<header status="deleted">',
        "</header>",
        "<identifier>oai:arXiv.org:0704.0001</identifier>",
        "<metadata>",
        "</metadata>",
        '<arXiv xmlns="http://arxiv.org/OAI/arXiv/">',
        "</arXiv>",
        '<arXivRaw xmlns="http://arxiv.org/OAI/arXivRaw/">',
        "</arXivRaw>",
        "<unknownFormat>",
        "<id>0704.0001</id>",
        "<id>bogus</id>",
        "<title>T</title>",
        "<created>2007-04-02</created>",
        "<updated>yesterday</updated>",
        '<version version="v2"><date>Tue, 24 Jul 2007 20:10:27 GMT</date></version>',
        '<version version="vx"><date>soon</date></version>',
        "<authors>A (1), B and C ((1) X)</authors>",
        "<authors><author><keyname>K</keyname><forenames>F</forenames></author></authors>",
        "<categories>cs.LG  math.CO</categories>",
        "<doi>10.1/x 10.2/y</doi>",
        '<resumptionToken cursor="x" completeListSize="99999999999999">t</resumptionToken>',
        "<resumptionToken/>",
        '<error code="noRecordsMatch">none</error>',
        '<error code="badVerb">bad</error>',
        "&bogus;",
        "<![CDATA[x]]>",
        '<!DOCTYPE OAI-PMH [<!ENTITY a "b">]>',
        "\x00",
        "\udcff",
        " ",
    ]
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(XML_BITS, max_size=30))
def test_fuzz_xml_fragments(bits: list[str]) -> None:
    check_contract("".join(bits).encode("utf-8", errors="surrogateescape"))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(ALL_FIXTURES),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 12), st.binary(max_size=6)), max_size=4),
    st.floats(0, 1),
)
def test_fuzz_mutated_fixtures(
    sample: bytes, edits: list[tuple[float, int, bytes]], keep: float
) -> None:
    data = bytearray(sample)
    for where, width, insert in edits:
        at = int(where * len(data))
        data[at : at + width] = insert
    check_contract(bytes(data[: max(1, int(keep * len(data)))]))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([ARXIV_PAGE, RAW_PAGE, BAD]), st.floats(0, 1))
def test_fuzz_parse_page_truncated(sample: bytes, keep: float) -> None:
    try:
        page = parse_page(sample[: int(keep * len(sample))], CTX)
    except FormatError:
        return
    assert all(isinstance(i, Parsed | Rejected) for i in page.items)
    assert page.deleted >= 0
