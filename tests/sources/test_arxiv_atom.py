"""arXiv Atom feeds: query API results (two layouts), listing feeds, errors, broken input."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperfeed.errors import FormatError
from paperfeed.model import Links, ListingEntry
from paperfeed.sources.arxiv_atom import parse
from paperfeed.sources.arxiv_text import detex_name, split_author_string
from paperfeed.sources.base import ParseContext, Parsed, Rejected
from tests.sources.helpers import FIXTURES, run_parser, split

FMT = "arxiv-atom"
DIR = FIXTURES / "arxiv-atom"
CLASSIC = (DIR / "query-classic.xml").read_bytes()
LAYOUT_2025 = (DIR / "query-2025.xml").read_bytes()
LISTING = (DIR / "listing-cs.CL.xml").read_bytes()
LISTING_RSS = (DIR / "listing-rss-cs.LG.xml").read_bytes()
BAD = (DIR / "bad-entries.xml").read_bytes()
ALL_FIXTURES = [CLASSIC, LAYOUT_2025, LISTING, LISTING_RSS, BAD, (DIR / "error.xml").read_bytes()]


def entry_lines(data: bytes, tag: bytes = b"<entry") -> list[int]:
    return [n for n, line in enumerate(data.splitlines(), 1) if line.lstrip().startswith(tag)]


def parse_ok(data: bytes) -> list[Parsed]:
    good, bad = split(run_parser(FMT, data))
    assert bad == []
    return good


# ------------------------------------------------------------------ API, classic layout


def test_classic_layout_maps_every_field() -> None:
    good = parse_ok(CLASSIC)
    assert [p.paper.id for p in good] == [
        "0704.0001",
        "hep-th/9711200",
        "1706.03762",
        "1810.04805",
        "math/0211159",
    ]
    first = good[0]
    paper = first.paper
    assert paper.arxiv_id == "0704.0001"
    # arXiv wraps long titles with a newline and two spaces.
    assert paper.title == (
        "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    )
    assert paper.abstract.startswith("A fully differential calculation in perturbative")
    assert paper.abstract.endswith("judicious selection of events.")
    assert "\n" not in paper.abstract
    assert paper.authors == ("C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan")
    assert paper.categories == ("hep-ph",)
    assert paper.doi == "10.1103/physrevd.76.013009"
    assert paper.published == dt.date(2007, 4, 2)
    assert paper.updated == dt.date(2007, 7, 24)
    assert paper.links == Links(
        abs="http://arxiv.org/abs/0704.0001v2", pdf="http://arxiv.org/pdf/0704.0001v2"
    )
    assert paper.sources == (FMT,)
    # A query API answer is not a feed day: no listing entry.
    assert first.entry is None
    assert first.locator == "entry 1 (0704.0001v2, line 10)"


def test_classic_layout_old_style_ids_versions_and_categories() -> None:
    good = parse_ok(CLASSIC)
    maldacena, attention, bert, perelman = (g.paper for g in good[1:])
    assert maldacena.arxiv_id == "hep-th/9711200"
    assert maldacena.links.pdf == "http://arxiv.org/pdf/hep-th/9711200v3"
    assert maldacena.authors == ("Juan M. Maldacena",)
    assert maldacena.doi == "10.1023/a:1026654312961"
    assert attention.categories == ("cs.CL", "cs.LG")
    assert len(attention.authors) == 8
    assert attention.authors[-1] == "Illia Polosukhin"
    assert (attention.published, attention.updated) == (dt.date(2017, 6, 12), dt.date(2023, 8, 2))
    assert bert.title == (
        "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding"
    )
    assert bert.doi is None
    # The MSC class 53C44 listed as a category is not an arXiv category.
    assert perelman.categories == ("math.DG", "math.MG")
    assert all(g.entry is None for g in good)
    assert [int(g.locator.rsplit("line ", 1)[1].rstrip(")")) for g in good] == entry_lines(CLASSIC)


# ------------------------------------------------------------------ API, 2025 layout


def test_2025_layout_links_without_rel_and_rank_from_start_index() -> None:
    good = parse_ok(LAYOUT_2025)
    resnet, gpt4, gpt3 = (g.paper for g in good)
    assert resnet.links == Links(
        abs="https://arxiv.org/abs/1512.03385v1", pdf="https://arxiv.org/pdf/1512.03385v1"
    )
    assert resnet.authors == ("Kaiming He", "Xiangyu Zhang", "Shaoqing Ren", "Jian Sun")
    # The primary category comes first even when arXiv lists it after the others.
    assert gpt4.categories == ("cs.CL", "cs.AI")
    assert gpt4.authors == ("OpenAI",)
    assert gpt3.doi == "10.48550/arxiv.2005.14165"
    assert gpt3.links.abs == "https://arxiv.org/abs/2005.14165v4"
    assert all(g.entry is None for g in good)


def test_api_error_entry_is_rejected_with_its_message() -> None:
    good, bad = split(run_parser(FMT, (DIR / "error.xml").read_bytes()))
    assert good == []
    assert len(bad) == 1
    assert bad[0].reason == "arXiv API error: incorrect id format for 1234.12345"
    assert bad[0].locator.startswith("entry 1 (")
    assert "api/errors#incorrect_id_format" in bad[0].raw


def test_empty_result_feed_yields_nothing() -> None:
    data = CLASSIC.split(b"<entry>", 1)[0] + b"</feed>\n"
    assert run_parser(FMT, data) == []


# ------------------------------------------------------------------ listing feeds


def test_atom_listing_feed() -> None:
    good = parse_ok(LISTING)
    new, cross, replace, replace_cross = good
    assert new.paper.arxiv_id == "2402.14008"
    assert new.paper.abstract.startswith("Recent advancements have seen Large Language Models")
    assert "Announce Type" not in new.paper.abstract
    assert len(new.paper.authors) == 14
    assert new.paper.authors[:2] == ("Chaoqun He", "Renjie Luo")
    assert new.paper.published == dt.date(2024, 2, 23)
    assert new.paper.updated is None
    assert new.paper.links.abs == "https://arxiv.org/abs/2402.14008"
    assert cross.paper.categories == ("cs.LG", "cs.CL")
    # A replacement is announced on the feed day but was first published earlier.
    assert replace.paper.published is None
    assert replace.paper.updated == dt.date(2024, 2, 23)
    assert "Lélio Renard Lavaud" in replace.paper.authors
    assert "Timothée Lacroix" in replace.paper.authors
    assert replace_cross.paper.doi == "10.5802/jep.257"
    assert [g.entry for g in good] == [
        ListingEntry("test-listing", dt.date(2024, 2, 23), rank) for rank in (1, 2, 3, 4)
    ]


def test_rss_listing_feed() -> None:
    good = parse_ok(LISTING_RSS)
    assert [g.paper.arxiv_id for g in good] == ["2402.14155", "2310.06825"]
    first, second = (g.paper for g in good)
    assert first.abstract.startswith("Task-oriented dialogue systems")
    assert first.categories == ("cs.LG", "cs.CL")
    assert first.published == dt.date(2024, 2, 23)
    assert second.authors == (
        "Albert Q. Jiang",
        "Alexandre Sablayrolles",
        "Arthur Mensch",
        "Chris Bamford",
    )
    assert second.updated == dt.date(2024, 2, 23)
    assert good[1].entry == ListingEntry("test-listing", dt.date(2024, 2, 23), 2)
    assert (
        good[0].locator == f"entry 1 (2402.14155v1, line {entry_lines(LISTING_RSS, b'<item')[0]})"
    )


# ------------------------------------------------------------------ bad entries


def test_bad_entries_are_rejected_and_neighbours_kept() -> None:
    good, bad = split(run_parser(FMT, BAD))
    lines = entry_lines(BAD)
    assert [(b.locator, b.reason) for b in bad] == [
        (f"entry 1 (line {lines[0]})", "missing title"),
        (
            f"entry 3 (2102.00018v2, line {lines[2]})",
            "unparsable date in field 'published': 'yesterday'",
        ),
        (f"entry 4 (1309.4668v1, line {lines[3]})", "missing title"),
    ]
    assert all(b.raw.startswith("<entry") for b in bad)
    assert "yesterday" in bad[1].raw
    assert [g.paper.arxiv_id for g in good] == ["2201.13452"]
    assert good[0].paper.categories == ("math.AP",)
    assert good[0].entry is None


def test_broken_utf8_in_one_entry_keeps_the_others() -> None:
    data = CLASSIC.replace(b"Maldacena", b"Mald\xe1cena", 1)
    good, bad = split(run_parser(FMT, data))
    assert len(good) == 4
    assert [b.locator.split(" (")[0] for b in bad] == ["entry 2"]
    assert bad[0].reason.startswith("broken encoding")
    assert "hep-th/9711200" not in [g.paper.id for g in good]


def test_control_characters_do_not_break_the_feed() -> None:
    data = CLASSIC.replace(b"Good agreement is", b"Good\x0c agreement\x00 is", 1)
    good = parse_ok(data)
    assert len(good) == 5
    assert "Good agreement is" in good[0].paper.abstract


def test_malformed_xml_keeps_entries_before_the_break() -> None:
    data = CLASSIC.replace(b"<title>Attention Is All You Need</title>", b"<title>Attention</titel>")
    good, bad = split(run_parser(FMT, data))
    assert [g.paper.id for g in good] == ["0704.0001", "hep-th/9711200"]
    assert len(bad) == 1
    line = next(n for n, x in enumerate(data.splitlines(), 1) if b"</titel>" in x)
    assert bad[0].reason.startswith(f"truncated or malformed XML at line {line}: mismatched tag")
    assert bad[0].locator == f"line {line} (after entry 2)"
    assert "</titel>" in bad[0].raw


def test_truncated_feed_reports_the_rest() -> None:
    cut = CLASSIC.index(b"<name>Kenton Lee</name>")
    good, bad = split(run_parser(FMT, CLASSIC[:cut]))
    assert len(good) == 3
    assert len(bad) == 1
    assert bad[0].reason.startswith("truncated or malformed XML at line ")
    assert "no element found" in bad[0].reason or "unclosed token" in bad[0].reason


def test_every_truncation_keeps_completed_entries() -> None:
    for cut in [*range(300), *range(300, len(CLASSIC), 23)]:
        prefix = CLASSIC[:cut]
        try:
            items = run_parser(FMT, prefix)
        except FormatError:
            # Only a prefix that has not opened the feed element may be refused whole.
            assert re.search(rb"<feed[^>]*>", prefix) is None
            continue
        good, bad = split(items)
        assert len(good) == prefix.count(b"</entry>")
        assert len(bad) == 1
        assert bad[0].reason.startswith("truncated or malformed XML at line")


# ------------------------------------------------------------------ not a feed


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"  \n\t ", "empty"),
        (b"hello world", "not an XML feed"),
        (b"<html><body><p>503 Service Unavailable</p></body></html>", "root element is <html>"),
        (
            (FIXTURES / "oai-pmh" / "listrecords-arXiv-page1.xml").read_bytes(),
            "root element is <OAI-PMH>",
        ),
        (b'{"entries": []}', "not an XML feed"),
        (b"\x1f\x8b\x08\x00garbage", "not an XML feed"),
    ],
)
def test_not_a_feed_is_a_format_error(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=re.escape(message)) as info:
        run_parser(FMT, data)
    assert "<test>" in str(info.value)


def test_entity_expansion_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>&b;</title></entry></feed>'
    )
    with pytest.raises(FormatError, match="forbidden XML construct"):
        run_parser(FMT, bomb)


def test_external_entity_is_refused() -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>&x;</title></entry></feed>'
    )
    with pytest.raises(FormatError, match="forbidden XML construct"):
        run_parser(FMT, xxe)


def test_deep_nesting_is_reported_not_crashed() -> None:
    data = b'<feed xmlns="http://www.w3.org/2005/Atom"><entry>' + b"<x>" * 5000
    good, bad = split(run_parser(FMT, data))
    assert good == []
    assert len(bad) == 1
    assert "nested deeper than" in bad[0].reason


# ------------------------------------------------------------------ encodings and streams


def test_declared_latin1_encoding_is_honoured() -> None:
    text = CLASSIC.decode("utf-8").replace('encoding="UTF-8"', 'encoding="ISO-8859-1"', 1)
    good = parse_ok(text.encode("latin-1"))
    assert good[0].paper.authors[0] == "C. Balázs"


def test_utf16_feed() -> None:
    text = CLASSIC.decode("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"', 1)
    good = parse_ok(text.encode("utf-16"))
    assert len(good) == 5
    assert good[0].paper.authors[0] == "C. Balázs"


def test_gzip_stream_and_truncated_gzip() -> None:
    packed = gzip.compress(big_feed(100))
    ctx = ParseContext(source=FMT, listing="x", path="feed.xml.gz")
    items = list(parse(gzip.GzipFile(fileobj=io.BytesIO(packed)), ctx))
    assert len([i for i in items if isinstance(i, Parsed)]) == 100
    items = list(parse(gzip.GzipFile(fileobj=io.BytesIO(packed[: len(packed) // 2])), ctx))
    good, bad = split(items)
    assert 10 <= len(good) < 100
    assert len(bad) == 1
    assert "could not be read" in bad[0].reason
    with pytest.raises(FormatError, match="could not be read"):
        list(parse(gzip.GzipFile(fileobj=io.BytesIO(b"\x1f\x8b\x08\x00broken")), ctx))


class CountingStream(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.consumed = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.consumed += len(chunk)
        return chunk

    def read1(self, size: int | None = -1) -> bytes:
        return self.read(size)


def big_feed(entries: int) -> bytes:
    """Distinct entries (so that compression cannot hide the size) with ids 0704.0001..."""
    head, rest = CLASSIC.split(b"<entry>", 1)
    entry = b"<entry>" + rest.split(b"</entry>", 1)[0] + b"</entry>\n"
    rng = random.Random(7)
    body = [
        entry.replace(b"0704.0001", b"0704.%04d" % (i + 1)).replace(
            b"<summary>", b"<summary>" + rng.randbytes(300).hex().encode()
        )
        for i in range(entries)
    ]
    return head + b"".join(body) + b"</feed>\n"


def test_large_feed_streams() -> None:
    data = big_feed(600)
    stream = CountingStream(data)
    items = parse(stream, ParseContext(source=FMT, listing="x"))
    first = next(items)
    assert isinstance(first, Parsed)
    # The first entry comes out long before the whole feed has been read.
    assert stream.consumed < len(data) // 10
    rest = list(items)
    assert len(rest) == 599
    assert isinstance(rest[-1], Parsed)
    assert rest[-1].paper.id == "0704.0600"
    assert stream.consumed == len(data)


# ------------------------------------------------------------------ helpers


def test_split_author_string() -> None:
    assert split_author_string("A. One, B. Two and C. Three") == ["A. One", "B. Two", "C. Three"]
    assert split_author_string("A. One, B. Two, and C. Three, Jr.") == [
        "A. One",
        "B. Two",
        "C. Three Jr.",
    ]
    assert split_author_string(
        "M. Gonzalez (1 and 2), P. Smith (2) ((1) UAM, Madrid, (2) Cambridge)"
    ) == ["M. Gonzalez", "P. Smith"]
    assert split_author_string("") == []


def test_detex_name() -> None:
    assert detex_name(r"C. Bal\'azs") == "C. Balázs"
    assert detex_name(r"Erd\H{o}s and G\"{o}del") == "Erdős and Gödel"
    assert detex_name(r"S\o rensen") == "Sørensen"
    assert detex_name("no accents") == "no accents"


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
        "<feed>",
        "</feed>",
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        "<entry>",
        "</entry>",
        "<item>",
        "<title>T</title>",
        "<title>",
        "</title>",
        "<id>http://arxiv.org/abs/2301.12345v2</id>",
        "<id>oai:arXiv.org:hep-th/9901001v1</id>",
        "<id>http://arxiv.org/api/errors#x</id>",
        "<published>2020-01-01</published>",
        "<published>x</published>",
        "<updated>2020-13-01</updated>",
        "<pubDate>Fri, 23 Feb 2024 00:00:00 -0500</pubDate>",
        '<link href="http://arxiv.org/pdf/1" title="pdf"/>',
        "<link>https://arxiv.org/abs/2402.14155</link>",
        '<category term="cs.LG"/>',
        '<arxiv:primary_category xmlns:arxiv="a" term=""/>',
        "<author><name>A \\'e</name></author>",
        "<dc:creator>A, B and C</dc:creator>",
        "<summary>arXiv:1 Announce Type: new Abstract: x</summary>",
        "<arxiv:doi>10.1/x y</arxiv:doi>",
        "<opensearch:startIndex>99999999999</opensearch:startIndex>",
        "<startIndex>7</startIndex>",
        "&amp;",
        "&bogus;",
        "<![CDATA[x]]>",
        "<!-- c -->",
        "<?pi x?>",
        '<!DOCTYPE feed [<!ENTITY a "b">]>',
        "<!DOCTYPE feed>",
        "\x00",
        "\udcff",
        "\ufdd0",
        " ",
        "\n",
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
