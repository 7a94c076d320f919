"""The RIS parser: Zotero (CRLF), Mendeley and arXiv-like exports, every kind of bad record,
streaming, and fuzzing."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperfeed.errors import FormatError
from paperfeed.sources.base import ParseContext, Parsed, Rejected
from paperfeed.sources.ris import parse
from tests.sources.helpers import FIXTURES, run_parser, split

RIS = FIXTURES / "ris"


def parse_file(name: str) -> tuple[list[Parsed], list[Rejected]]:
    return split(run_parser("ris", (RIS / name).read_bytes()))


def record(*lines: str) -> str:
    return "".join(f"{line}\n" for line in ("TY  - JOUR", *lines, "ER  - "))


def parse_text(text: str) -> tuple[list[Parsed], list[Rejected]]:
    return split(run_parser("ris", text.encode("utf-8")))


# -- real-world exports ------------------------------------------------------------------


def test_zotero_export_with_crlf() -> None:
    good, bad = parse_file("zotero.ris")
    assert bad == []
    assert [p.locator for p in good] == [
        "record 1 (line 1)",
        "record 2 (line 25)",
        "record 3 (line 43)",
    ]
    vaswani, lstm, book = (p.paper for p in good)
    assert vaswani.title == "Attention Is All You Need"
    assert vaswani.authors[0] == "Ashish Vaswani"
    assert vaswani.authors[5] == "Aidan N. Gomez"
    assert len(vaswani.authors) == 8
    assert vaswani.arxiv_id == "1706.03762"
    assert vaswani.published == dt.date(2017, 12, 5)  # DA is more precise than PY
    assert vaswani.abstract.startswith("The dominant sequence transduction models")
    assert vaswani.abstract.endswith("dispensing with recurrence and convolutions entirely.")
    assert vaswani.categories == ()  # "Computer Science - ..." keywords are not categories
    # L1 is a local file: not a link; the arXiv links come from the id.
    assert vaswani.links.pdf == "https://arxiv.org/pdf/1706.03762"
    assert lstm.authors == ("Sepp Hochreiter", "Jürgen Schmidhuber")
    assert lstm.doi == "10.1162/neco.1997.9.8.1735"
    assert lstm.published == dt.date(1997, 11, 15)
    assert lstm.links.abs == "https://doi.org/10.1162/neco.1997.9.8.1735"
    assert book.authors == ("Bernhard Schölkopf", "Alexander J. Smola")  # A2 is an editor
    assert book.published == dt.date(2002, 1, 1)  # DA 2002/// : year only
    assert all(p.entry is None for p in good)


def test_mendeley_export() -> None:
    good, bad = parse_file("mendeley.ris")
    assert bad == []
    bert, mobilenets, resnet = (p.paper for p in good)
    assert bert.arxiv_id == "1810.04805"
    assert bert.published == dt.date(2018, 1, 1)
    assert bert.authors == ("Jacob Devlin", "Ming-Wei Chang", "Kenton Lee", "Kristina Toutanova")
    assert mobilenets.arxiv_id == "1704.04861"  # from a .pdf URL
    assert resnet.doi == "10.1109/cvpr.2016.90"
    # A multi-line abstract: continuation lines are joined.
    assert resnet.abstract == (
        "Deeper neural networks are more difficult to train. We present a residual learning "
        "framework to ease the training of networks that are substantially deeper than those "
        "used previously."
    )


def test_arxiv_like_export() -> None:
    good, bad = parse_file("arxiv_like.ris")
    assert bad == []
    adam, maldacena, ddpm = (p.paper for p in good)
    assert adam.title == "Adam: A Method for Stochastic Optimization"  # T1
    assert adam.authors == ("Diederik P. Kingma", "Jimmy Ba")  # A1
    assert adam.published == dt.date(2014, 12, 22)  # Y1
    assert adam.abstract.startswith("We introduce Adam")  # N2
    assert adam.arxiv_id == "1412.6980"
    assert adam.categories == ("cs.LG",)  # "machine learning; optimization" is no category
    assert maldacena.arxiv_id == "hep-th/9711200"
    assert maldacena.categories == ("hep-th",)
    assert ddpm.arxiv_id == "2006.11239"  # from the arXiv DOI
    assert ddpm.published == dt.date(2020, 6, 19)  # ISO DA
    assert ddpm.categories == ("cs.LG", "stat.ML")


# -- field variants ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["PY  - 2023"], dt.date(2023, 1, 1)),
        (["PY  - 2023/03/14"], dt.date(2023, 3, 14)),
        (["PY  - 2023/03/14/"], dt.date(2023, 3, 14)),
        (["PY  - 2023///"], dt.date(2023, 1, 1)),
        (["PY  - 2023/03//"], dt.date(2023, 3, 1)),
        (["Y1  - 2023/03/14/Spring meeting"], dt.date(2023, 3, 14)),
        (["DA  - 2023-03-14"], dt.date(2023, 3, 14)),
        (["DA  - March 14, 2023"], dt.date(2023, 3, 14)),
        (["DA  - 2023-03-14T09:30:00Z", "PY  - 2023/03/14/"], dt.date(2023, 3, 14)),
        (["PY  - 2023", "DA  - 2023/06/01/"], dt.date(2023, 6, 1)),
        (["DA  - 2023/06//", "Y1  - 2023/06/09"], dt.date(2023, 6, 9)),
        (["Y2  - 2024/01/01/"], None),  # an access date is not a publication date
    ],
)
def test_dates(lines: list[str], expected: dt.date | None) -> None:
    good, bad = parse_text(record("TI  - T", *lines))
    assert bad == []
    assert good[0].paper.published == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("PY  - 2023/13/01/", "unparsable date in field 'PY': '2023/13/01/'"),
        ("DA  - 2023/02/30", "unparsable date in field 'DA'"),
        ("PY  - 2023//14/", "unparsable date in field 'PY'"),
        ("PY  - 2023/ab/", "unparsable date in field 'PY'"),
        ("Y1  - next week", "unparsable date in field 'Y1'"),
        ("PY  - 0999", "implausible year in field 'PY'"),
        # dateutil would read a time zone "R" in it (and warn): never handed to it.
        ("PY  - 20A3R1", "unparsable date in field 'PY'"),
        ("DA  - March 1st 2023 EST", "unparsable date in field 'DA'"),
    ],
)
def test_bad_dates_are_rejected(line: str, reason: str) -> None:
    good, bad = parse_text(record("TI  - Bad", line) + record("TI  - Good"))
    assert [p.paper.title for p in good] == ["Good"]
    assert bad[0].locator == "record 1 (line 1)"
    assert bad[0].reason.startswith(reason)


def test_authors_and_titles() -> None:
    good, _ = parse_text(
        record(
            "T1  - Primary Title",
            "TI  - Preferred Title",
            "AU  - Smith, John, Jr.",
            "A1  - Ignored, When AU Exists",
            "AU  - Plato",
            "AU  - Plato",
            "AU  - Doe, J.; Roe, R.",
            "AU  - Ada Lovelace",
            "A2  - Editor, Ed",
            "A3  - Series, Editor",
        )
    )
    paper = good[0].paper
    assert paper.title == "Preferred Title"
    assert paper.authors == (
        "John Smith Jr.",
        "Plato",
        "Plato",  # two authors may share a name
        "J. Doe",
        "R. Roe",
        "Ada Lovelace",
    )


def test_links_and_ids() -> None:
    good, _ = parse_text(
        record(
            "TI  - A",
            "UR  - https://publisher.example/article/1; https://arxiv.org/abs/2301.12345v2",
            "L1  - https://publisher.example/article/1.pdf",
        )
        + record("TI  - B", "N1  - arXiv:2301.54321 [cs]", "UR  - ftp://not-a-web-link")
        + record("TI  - C", "ID  - arXiv:2102.00001v1")
        + record("TI  - D", "JO  - arXiv preprint arXiv:2203.00002")
    )
    a, b, c, d = (p.paper for p in good)
    assert a.arxiv_id == "2301.12345"
    assert a.links.abs == "https://publisher.example/article/1"
    assert a.links.pdf == "https://publisher.example/article/1.pdf"
    assert b.arxiv_id == "2301.54321"
    assert b.links.abs == "https://arxiv.org/abs/2301.54321"
    assert c.arxiv_id == "2102.00001"
    assert d.arxiv_id == "2203.00002"


def test_tag_spacing_variants() -> None:
    # One space before the dash (accepted by Zotero too); "ER  -" without its trailing space.
    good, bad = parse_text("TY - JOUR\nTI - One Space\nER  -\nTY  - JOUR\nTI  - Two\nER - \n")
    assert bad == []
    assert [p.paper.title for p in good] == ["One Space", "Two"]


def test_bom_and_header_lines_are_skipped() -> None:
    data = b"\xef\xbb\xbfProvider: JSTOR http://www.jstor.org\r\nDatabase: JSTOR\r\n\r\n"
    data += record("TI  - After a Header").replace("\n", "\r\n").encode()
    good, bad = split(run_parser("ris", data))
    assert bad == []
    assert good[0].locator == "record 1 (line 4)"


# -- bad records -------------------------------------------------------------------------


def test_malformed_fixture_keeps_every_good_neighbour() -> None:
    good, bad = parse_file("malformed.ris")
    assert [(p.locator, p.paper.title) for p in good] == [
        ("record 1 (line 4)", "Good Record Before the Bad Ones"),
        ("record 8 (line 41)", "Good Record After the Bad Ones"),
    ]
    assert good[1].paper.published == dt.date(2022, 3, 14)
    assert [(r.locator, r.reason) for r in bad] == [
        ("record 2 (line 10)", "missing title"),
        (
            "record 3 (line 16)",
            "broken encoding: line 17 is not valid UTF-8 (byte 9: b'\\xe9')",
        ),
        ("record 4 (line 21)", "unparsable date in field 'DA': '2023/13/45/'"),
        ("record 5 (line 26)", "unparsable date in field 'PY': 'sometime'"),
        ("record 6 (line 33)", "record does not start with a TY line"),
        ("record 7 (line 37)", "truncated record: no ER line before the next TY (line 41)"),
        ("record 9 (line 47)", "truncated record: end of file before its ER line"),
    ]
    broken = bad[1].raw
    assert "Caf\ufffd au lait" in broken
    assert bad[-1].raw.endswith("The abstract stops in the midd\n")


def test_orphan_tag_lines_are_rejected_not_merged_into_the_next_record() -> None:
    good, bad = parse_text("AB  - a stray abstract\nKW  - cs.CL\n" + record("TI  - Next"))
    assert [p.paper.abstract for p in good] == [""]
    assert [(r.locator, r.reason) for r in bad] == [
        (
            "record 1 (line 1)",
            "tag lines outside a record (no TY line): no ER line before the next TY (line 3)",
        )
    ]


def test_stray_end_tags_and_garbage_outside_records_are_ignored() -> None:
    good, bad = parse_text("ER  - \n\x00junk\n" + record("TI  - Fine") + "more junk\nER  - \n")
    assert bad == []
    assert [p.paper.title for p in good] == ["Fine"]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\n\n",
        b"@article{x, title={BibTeX, not RIS}}\n",
        b"just prose\nwith lines\n",
    ],
)
def test_not_ris_raises_format_error(data: bytes) -> None:
    with pytest.raises(FormatError, match="<test>: no RIS records"):
        run_parser("ris", data)


def test_gives_up_early_on_a_large_non_ris_file() -> None:
    read = 0

    def lines() -> Iterator[bytes]:
        nonlocal read
        for _ in range(100_000):
            read += 1
            yield b"not a tag line\n"

    class Stream(io.RawIOBase):
        def __init__(self) -> None:
            self.it = lines()

        def readable(self) -> bool:
            return True

        def __iter__(self) -> Iterator[bytes]:
            return self.it

    ctx = ParseContext(source="ris", listing="l", path="big.txt")
    with pytest.raises(FormatError, match=r"big\.txt"):
        list(parse(Stream(), ctx))
    assert read < 2000


def test_streams_record_by_record() -> None:
    """The first record comes out before the rest of the file is read."""
    consumed = 0

    def lines() -> Iterator[bytes]:
        nonlocal consumed
        for i in range(1000):
            for line in record(f"TI  - Paper {i}").splitlines():
                consumed += 1
                yield line.encode() + b"\n"

    class Stream(io.RawIOBase):
        def __iter__(self) -> Iterator[bytes]:
            return lines()

    items = parse(Stream(), ParseContext(source="ris", listing="l"))
    first = next(items)
    assert isinstance(first, Parsed)
    assert first.paper.title == "Paper 0"
    assert consumed <= 4


# -- fuzzing -----------------------------------------------------------------------------

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SAMPLES = [p.read_bytes() for p in sorted(RIS.glob("*.ris"))]
RIS_LINES = st.sampled_from(
    [
        b"TY  - JOUR",
        b"ER  - ",
        b"TI  - Title",
        b"AU  - Last, First",
        b"PY  - 2023/03/14/",
        b"DA  - 20x3",
        b"UR  - https://arxiv.org/abs/2301.12345",
        b"KW  - cs.CL",
        b"continuation",
        b"",
        b"\xff\xfe",
        b"AB  - \xe9",
    ]
)


def check(data: bytes) -> None:
    try:
        items = run_parser("ris", data)
    except FormatError:
        return
    for item in items:
        assert isinstance(item, Parsed | Rejected)
        item.locator.encode("utf-8")  # storable: no lone surrogates
        if isinstance(item, Rejected):
            assert item.reason
            assert "\n" not in item.reason
            item.reason.encode("utf-8")
            item.raw.encode("utf-8")
        else:
            assert item.paper.title
            item.paper.title.encode("utf-8")


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.lists(RIS_LINES, max_size=40))
def test_fuzz_ris_like_lines(lines: list[bytes]) -> None:
    check(b"\n".join(lines))


@FUZZ
@given(
    st.sampled_from(SAMPLES),
    st.integers(min_value=0, max_value=4000),
    st.integers(min_value=0, max_value=60),
    st.binary(max_size=8),
)
def test_fuzz_mutated_samples(sample: bytes, at: int, cut: int, insert: bytes) -> None:
    at = at % (len(sample) + 1)
    check(sample[:at] + insert + sample[at + cut :])
    check(sample[:at])
