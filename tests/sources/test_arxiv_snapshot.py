"""The arXiv metadata snapshot parser (JSON lines, Kaggle arxiv-metadata-oai-snapshot)."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
from typing import IO, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperfeed.errors import FormatError
from paperfeed.ids import ArxivId, normalize_doi, parse_arxiv_id
from paperfeed.model import new_paper
from paperfeed.sources.arxiv_snapshot import (
    build,
    canonical_base,
    collapse,
    collapse_title,
    created_date,
    doi_of,
    iso_date,
    parse,
)
from paperfeed.sources.base import ParseContext, Parsed, RecordError, Rejected, clean_text
from paperfeed.sources.base import parse_date as slow_date

from .helpers import FIXTURES, run_parser, split

SAMPLE = (FIXTURES / "arxiv-snapshot" / "sample.jsonl").read_bytes()
SAMPLE_LINES = SAMPLE.splitlines(keepends=True)


def by_id(items: list[Parsed]) -> dict[str, Parsed]:
    return {item.paper.id: item for item in items}


def test_sample_parses_completely() -> None:
    good, bad = split(run_parser("arxiv-snapshot", SAMPLE))
    assert bad == []
    assert len(good) == len(SAMPLE_LINES) == 15
    assert [g.locator for g in good] == [f"line {n}" for n in range(1, 16)]
    assert all(g.entry is None for g in good)  # a bibliography, not a listing


def test_field_mapping() -> None:
    good, _ = split(run_parser("arxiv-snapshot", SAMPLE))
    paper = by_id(good)["0704.0001"].paper
    assert paper.title == (
        "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    )
    assert paper.abstract.startswith("A fully differential calculation in perturbative")
    assert "\n" not in paper.abstract
    assert "  " not in paper.abstract
    assert paper.abstract.endswith("Predictions are discussed for the LHC.")
    # authors_parsed (already decoded from LaTeX) wins over the authors string.
    assert paper.authors == ("C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan")
    assert paper.categories == ("hep-ph",)
    assert paper.arxiv_id == "0704.0001"
    assert paper.doi == "10.1103/physrevd.76.013009"
    assert paper.published == dt.date(2007, 4, 2)  # v1 'created', not v2
    assert paper.updated == dt.date(2008, 11, 13)
    assert paper.links.abs == "https://arxiv.org/abs/0704.0001"
    assert paper.links.pdf == "https://arxiv.org/pdf/0704.0001"
    assert paper.sources == ("arxiv-snapshot",)


def test_old_style_ids_latex_titles_suffixes_and_several_dois() -> None:
    papers = {k: v.paper for k, v in by_id(split(run_parser("arxiv-snapshot", SAMPLE))[0]).items()}
    assert papers["hep-th/9711200"].arxiv_id == "hep-th/9711200"
    assert papers["hep-th/9711200"].published == dt.date(1997, 11, 27)
    assert papers["math/0211159"].categories == ("math.DG",)
    lhcb = papers["1703.05747"]
    assert lhcb.title == (
        r"Measurement of the $B^0_s\to\mu^+\mu^-$ branching fraction and effective lifetime"
        r" and search for $B^0\to\mu^+\mu^-$ decays"
    )
    assert lhcb.authors[0] == "LHCb collaboration"
    gates = papers["hep-th/9602022"]
    assert gates.authors == ("S. James Gates Jr.", "Lubna Rana")
    assert gates.doi == "10.1016/0370-2693(94)01663-d"  # the first of two DOIs
    assert papers["1207.7214"].authors == ("ATLAS Collaboration",)
    assert papers["1706.03762"].categories == ("cs.CL", "cs.LG")
    assert len(papers["astro-ph/9805201"].authors) == 20


def reference_paper(obj: dict[str, object]) -> object:
    """The paper as the general-purpose helpers (dateutil, regexes, new_paper) build it."""
    parsed = obj.get("authors_parsed") or []
    assert isinstance(parsed, list)
    authors = [clean_text(f"{a[1]} {a[0]} {a[2]}") for a in parsed]
    versions = obj.get("versions") or [{}]
    assert isinstance(versions, list)
    doi = obj.get("doi")
    return new_paper(
        title=clean_text(obj["title"]),
        abstract=clean_text(obj.get("abstract")),
        authors=authors,
        categories=str(obj.get("categories") or "").split(),
        arxiv_id=str(obj["id"]),
        doi=normalize_doi(doi.split()[0]) if isinstance(doi, str) else None,
        published=slow_date(versions[0].get("created"), "created"),
        updated=slow_date(obj.get("update_date"), "update_date"),
        source="arxiv-snapshot",
    )


@pytest.mark.parametrize("line", SAMPLE_LINES, ids=lambda line: json.loads(line)["id"])
def test_fast_path_agrees_with_new_paper(line: bytes) -> None:
    obj = json.loads(line)
    assert build(obj, "arxiv-snapshot") == reference_paper(obj)


author_part = st.text(alphabet=st.sampled_from("Ab .-é\n"), max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    title=st.text(min_size=1, max_size=40),
    abstract=st.text(max_size=60),
    authors=st.lists(st.tuples(author_part, author_part, author_part), min_size=1, max_size=4),
    number=st.integers(min_value=1, max_value=9999),
    categories=st.lists(st.sampled_from(["cs.CL", "cs.LG", "hep-th", "math.AG"]), max_size=3),
    day=st.dates(min_value=dt.date(1991, 1, 1), max_value=dt.date(2030, 12, 31)),
)
def test_fast_path_agrees_with_new_paper_on_generated_records(
    title: str,
    abstract: str,
    authors: list[tuple[str, str, str]],
    number: int,
    categories: list[str],
    day: dt.date,
) -> None:
    if day < dt.date(2007, 4, 1):
        arxiv_id = f"hep-th/{day:%y%m}{number % 1000:03d}"
    else:
        arxiv_id = f"{day:%y%m}.{number:04d}" if day.year < 2015 else f"{day:%y%m}.{number:05d}"
    obj: dict[str, object] = {
        "id": arxiv_id,
        "title": title,
        "abstract": abstract,
        "authors": "",
        "authors_parsed": [list(a) for a in authors],
        "categories": " ".join(categories),
        "versions": [{"version": "v1", "created": day.strftime("%a, %d %b %Y 10:00:00 GMT")}],
        "update_date": day.isoformat(),
        "doi": None,
    }
    try:
        expected = reference_paper(obj)
    except ValueError:  # the reference refuses an empty title
        with pytest.raises((RecordError, ValueError)):
            build(obj, "arxiv-snapshot")
        return
    assert build(obj, "arxiv-snapshot") == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
snapshot_keys = st.sampled_from(
    [
        "id",
        "title",
        "abstract",
        "authors",
        "authors_parsed",
        "categories",
        "doi",
        "versions",
        "update_date",
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(snapshot_keys, json_values),
    st.lists(st.lists(st.one_of(st.text(max_size=6), json_values), max_size=5), max_size=3),
)
def test_fuzz_field_values(obj: dict[str, object], authors_parsed: list[object]) -> None:
    obj.setdefault("authors_parsed", authors_parsed)
    for record in (obj, {**obj, "id": "2301.00001", "title": "T"}):
        try:
            paper = build(record, "arxiv-snapshot")
        except RecordError:
            continue
        assert paper.title
        assert all(isinstance(a, str) and a for a in paper.authors)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_collapse_is_clean_text(text: str) -> None:
    assert collapse(text) == clean_text(text)
    assert collapse_title(text) == clean_text(text)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.from_regex(r"\d{4}\.\d{4,5}", fullmatch=True),
        st.from_regex(r"[a-z][a-z.-]{0,10}[a-z]/\d{7}", fullmatch=True),
        st.text(max_size=16),
    )
)
def test_canonical_base_is_a_subset_of_the_full_parser(text: str) -> None:
    base = canonical_base(text)
    if base is not None:
        assert parse_arxiv_id(text) == ArxivId(text)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.from_regex(
            r"(?:https://doi\.org/|doi:)?10\.\d{3,10}/[\w.()<>;:-]{0,20}\.?", fullmatch=True
        ),
        st.text(max_size=20),
    ).map(lambda text: "".join(text.split()))
)
def test_doi_fast_path_is_normalize_doi(token: str) -> None:
    assert doi_of(token) == normalize_doi(token)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 12, 31)))
def test_created_date_fast_path(moment: dt.datetime) -> None:
    text = f"{moment:%a}, {moment.day} {moment:%b %Y %H:%M:%S} GMT"
    assert created_date(text) == moment.date()
    assert iso_date(moment.date().isoformat(), "update_date") == moment.date()


def test_dates_fall_back_to_the_general_parser() -> None:
    assert created_date("2007-04-02T19:18:42Z") == dt.date(2007, 4, 2)
    assert created_date("Mon, 2 Apr 2007") == dt.date(2007, 4, 2)
    assert iso_date("13 Nov 2008", "update_date") == dt.date(2008, 11, 13)
    with pytest.raises(RecordError, match="versions"):
        created_date("Tue, 24 Jul 20071 20:10:27 GMT")  # not mistaken for a cached 2007 day
    with pytest.raises(RecordError, match="update_date"):
        iso_date("2008-13-45", "update_date")


def line(**fields: object) -> bytes:
    record: dict[str, object] = {
        "id": "2301.00001",
        "title": "A title",
        "abstract": "An abstract.",
        "authors": "A. Author",
        "categories": "cs.LG",
        "versions": [{"version": "v1", "created": "Mon, 2 Jan 2023 10:00:00 GMT"}],
        "update_date": "2023-01-03",
        "authors_parsed": [["Author", "A.", ""]],
    }
    record.update(fields)
    return json.dumps({k: v for k, v in record.items() if v is not None}).encode() + b"\n"


def test_authors_string_when_unparsed() -> None:
    data = line(authors_parsed=[], authors="A. One, B. Two (MIT, Cambridge) and C. Three")
    (item,) = run_parser("arxiv-snapshot", data)
    assert isinstance(item, Parsed)
    assert item.paper.authors == ("A. One", "B. Two", "C. Three")
    data = line(authors_parsed=[["One", "A.", "", "MIT"], ["Two", "B.", "Jr"]])
    (item,) = run_parser("arxiv-snapshot", data)
    assert isinstance(item, Parsed)
    assert item.paper.authors == ("A. One", "B. Two Jr")  # the affiliation is not a name


def test_bad_lines_are_rejected_and_neighbours_kept() -> None:
    good_line = SAMPLE_LINES[1]
    bad = [
        (SAMPLE_LINES[0][:300] + b"\n", "truncated JSON"),
        (b'["0704.0001", "a title"]\n', "not a JSON object (found an array)"),
        (line(title="  \n "), "missing title"),
        (line(title=None), "missing title"),
        (line(versions=[{"version": "v1", "created": "yesterday"}]), "unparsable date"),
        (line(update_date="2008-13-45"), "unparsable date in field 'update_date'"),
        (line(title="Caf\xe9").replace(b"\\u00e9", b"\xe9"), "broken encoding"),
        (line(id="not an id"), "invalid arXiv id in field 'id'"),
        (line(id=704.0001), "field 'id' must be a string"),
        (line(id=None), "missing id"),
        (line(title="A \\ud800 title").replace(b"\\\\ud800", b"\\ud800"), "surrogate"),
        (b'{"id": "2301.00001", "title": "x", "abstract": "y" "z"}\n', "invalid JSON"),
    ]
    data = b"".join(good_line + bad_line for bad_line, _ in bad) + good_line
    items = run_parser("arxiv-snapshot", data)
    assert len(items) == 2 * len(bad) + 1
    for index, (_, reason) in enumerate(bad):
        assert isinstance(items[2 * index], Parsed)
        rejected = items[2 * index + 1]
        assert isinstance(rejected, Rejected), reason
        assert rejected.locator == f"line {2 * index + 2}"
        assert reason in rejected.reason
        assert rejected.raw
    assert isinstance(items[-1], Parsed)


def test_blank_lines_are_skipped_and_counted() -> None:
    data = b"\n\n" + SAMPLE_LINES[0] + b"   \r\n\n" + SAMPLE_LINES[1]
    good, bad = split(run_parser("arxiv-snapshot", data))
    assert bad == []
    assert [g.locator for g in good] == ["line 3", "line 6"]


def test_not_json_at_all_is_a_format_error() -> None:
    with pytest.raises(FormatError, match="<test>"):
        run_parser("arxiv-snapshot", b"@article{key,\n  title = {Not JSON}\n}\n")
    with pytest.raises(FormatError, match="empty"):
        run_parser("arxiv-snapshot", b"\n  \n")


def test_a_long_text_file_is_a_format_error_without_reading_it_all() -> None:
    text = b"".join(b"Paper %d: a line of prose, not JSON\n" % n for n in range(1200))
    with pytest.raises(FormatError, match="not JSON lines"):
        run_parser("arxiv-snapshot", text + SAMPLE)


def test_garbage_first_line_does_not_hide_the_rest() -> None:
    items = run_parser("arxiv-snapshot", b"arxiv snapshot 2024-01-01\n" + SAMPLE)
    assert isinstance(items[0], Rejected)
    assert items[0].locator == "line 1"
    assert len(split(items)[0]) == 15


def test_truncated_first_json_line_is_rejected_not_fatal() -> None:
    (item,) = run_parser("arxiv-snapshot", SAMPLE_LINES[0][:50])
    assert isinstance(item, Rejected)
    assert item.reason == "truncated JSON"


class ReadlineOnly(io.RawIOBase):
    """A stream that fails if a parser tries to read it whole."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)
        self.largest = 0

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> bytes:
        if size is None or size <= 0:
            raise AssertionError("unbounded readline")
        self.largest = max(self.largest, size)
        return self._inner.readline(size)

    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the snapshot must be read line by line")


def test_streams_line_by_line_from_gzip_and_bounded_reads() -> None:
    ctx = ParseContext(source="arxiv-snapshot", listing="x", path="snapshot.json.gz")
    packed = io.BytesIO(gzip.compress(SAMPLE * 3))
    with gzip.GzipFile(fileobj=packed) as stream:
        items = list(parse(cast(IO[bytes], stream), ctx))
    assert len(items) == 45
    assert all(isinstance(i, Parsed) for i in items)
    stream2 = ReadlineOnly(SAMPLE)
    assert len(list(parse(cast(IO[bytes], stream2), ctx))) == 15


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    try:
        items = run_parser("arxiv-snapshot", data)
    except FormatError:
        return
    assert all(isinstance(i, (Parsed, Rejected)) for i in items)


@settings(max_examples=200, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=len(SAMPLE_LINES) - 1),
    cut=st.integers(min_value=0, max_value=3000),
    noise=st.binary(max_size=40),
    position=st.integers(min_value=0, max_value=3000),
)
def test_fuzz_mutated_line_never_costs_its_neighbours(
    index: int, cut: int, noise: bytes, position: int
) -> None:
    victim = SAMPLE_LINES[index].rstrip(b"\n")
    at = min(position, len(victim))
    mutated = (victim[:at] + noise + victim[at:])[:cut].replace(b"\n", b" ") + b"\n"
    lines = [*SAMPLE_LINES[:index], mutated, *SAMPLE_LINES[index + 1 :]]
    items = run_parser("arxiv-snapshot", b"".join(lines))
    expected = split(run_parser("arxiv-snapshot", SAMPLE))[0]
    by_locator = {i.locator: i for i in items}
    for number, item in enumerate(expected, start=1):
        if number != index + 1:
            assert by_locator[f"line {number}"] == item
    assert len(items) <= len(SAMPLE_LINES)
