"""JSON lines / JSON array reading lists with the documented field names."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperfeed.errors import FormatError
from paperfeed.model import Links, ListingEntry, new_paper
from paperfeed.sources.base import ParseContext, Parsed, Rejected
from paperfeed.sources.jsonl_table import CHUNK, bounded_lines, parse

from .helpers import FIXTURES, run_parser, split

JSONL = (FIXTURES / "jsonl" / "reading-list.jsonl").read_bytes()
ARRAY = (FIXTURES / "jsonl" / "reading-list.json").read_bytes()


def papers_by_title(items: list[Parsed]) -> dict[str, Parsed]:
    return {i.paper.title: i for i in items}


def test_reading_list_mapping() -> None:
    good, bad = split(run_parser("jsonl", JSONL, listing="my-list"))
    assert bad == []
    assert len(good) == 8
    items = papers_by_title(good)

    mistral = items["Mistral 7B"]
    assert mistral.paper.id == "2310.06825"
    assert mistral.paper.authors[:2] == ("Albert Q. Jiang", "Alexandre Sablayrolles")
    assert mistral.paper.categories == ("cs.CL", "cs.AI", "cs.LG")
    assert mistral.paper.published == dt.date(2023, 10, 10)
    assert mistral.paper.abstract.startswith("We introduce Mistral 7B v0.1, a 7-billion-parameter")
    assert "\n" not in mistral.paper.abstract
    assert mistral.paper.links.code == "https://github.com/mistralai/mistral-src"
    assert mistral.paper.upvotes == 42
    assert mistral.entry == ListingEntry("my-list", dt.date(2023, 10, 11), 1)
    assert mistral.locator == "line 1"

    llama = items["Llama 2: Open Foundation and Fine-Tuned Chat Models"]  # capitalised keys
    assert llama.paper.id == "2307.09288"  # from an abs URL with a version, in `id`
    assert llama.paper.abstract.startswith("In this work, we develop")  # `summary`
    assert llama.paper.authors == ("Hugo Touvron", "Louis Martin", "Kevin Stone", "Peter Albert")
    assert llama.paper.published == dt.date(2023, 7, 18)
    assert llama.paper.updated == dt.date(2023, 7, 19)
    assert llama.paper.upvotes == 17
    assert llama.entry == ListingEntry("my-list", dt.date(2023, 7, 19), 2)

    deep = items["Deep learning"]  # a DOI in `id`, authors as {name} objects
    assert deep.paper.id == "doi:10.1038/nature14539"
    assert deep.paper.authors == ("Yann LeCun", "Yoshua Bengio", "Geoffrey Hinton")
    assert deep.paper.published == dt.date(2015, 5, 27)
    assert deep.paper.links.abs == "https://www.nature.com/articles/nature14539"
    assert deep.entry is None

    spectral = items["A Tutorial on Spectral Clustering"]  # arXiv PDF URL gives the id
    assert spectral.paper.id == "0711.0189"
    assert spectral.paper.links.abs == "https://arxiv.org/abs/0711.0189"
    assert spectral.paper.published == dt.date(2007, 1, 1)
    assert spectral.paper.categories == ("cs.DS", "cs.LG")

    attention = items["Attention Is All You Need"]
    assert attention.paper.id == "1706.03762"
    assert attention.paper.authors == (
        "Ashish Vaswani",
        "Noam Shazeer",
        "Niki Parmar",
        "Jakob Uszkoreit",
    )
    assert attention.entry == ListingEntry("reading-group/2024-w10", dt.date(2024, 3, 5), None)

    lora = items["LoRA: Low-Rank Adaptation of Large Language Models"]  # the arXiv DOI
    assert lora.paper.id == "2106.09685"
    assert lora.paper.doi == "10.48550/arxiv.2106.09685"
    assert lora.paper.links.pdf == "https://arxiv.org/pdf/2106.09685v2"

    notes = items["Notes on our lab's evaluation protocol"]
    assert notes.paper.id.startswith("title:")
    assert notes.paper.published is None
    assert notes.paper.upvotes is None

    parrots = items["On the Dangers of Stochastic Parrots: Can Language Models Be Too Big?"]
    assert parrots.paper.id == "doi:10.1145/3442188.3445922"
    assert parrots.paper.links == Links(
        abs="https://dl.acm.org/doi/10.1145/3442188.3445922",
        pdf="https://dl.acm.org/doi/pdf/10.1145/3442188.3445922",
    )
    assert parrots.paper.sources == ("jsonl",)  # the record's own `sources` is not ours


def test_json_array_gives_the_same_papers() -> None:
    lines = split(run_parser("jsonl", JSONL))[0]
    elements, bad = split(run_parser("jsonl", ARRAY))
    assert bad == []
    assert [e.paper for e in elements] == [line.paper for line in lines]
    assert [e.entry for e in elements] == [line.entry for line in lines]
    starts = [n for n, text in enumerate(ARRAY.decode().splitlines(), 1) if text == "  {"]
    assert [e.locator for e in elements] == [
        f"element {i} (line {n})" for i, n in enumerate(starts, 1)
    ]


def test_paperfeed_json_export_round_trips() -> None:
    papers = [
        new_paper(
            title="Mistral 7B",
            abstract="We introduce Mistral 7B.",
            authors=["Albert Q. Jiang", "Arthur Mensch"],
            categories=["cs.CL", "cs.LG"],
            arxiv_id="2310.06825",
            published=dt.date(2023, 10, 10),
            updated=dt.date(2023, 10, 12),
            links=Links(code="https://github.com/mistralai/mistral-src"),
            upvotes=42,
            source="jsonl",
        ),
        new_paper(
            title="Deep learning",
            doi="10.1038/nature14539",
            links=Links(abs="https://www.nature.com/articles/nature14539"),
            source="jsonl",
        ),
        new_paper(title="Untitled notes, v2", abstract="x", source="jsonl"),
    ]
    lines = b"".join(json.dumps(p.to_json()).encode() + b"\n" for p in papers)
    assert [i.paper for i in split(run_parser("jsonl", lines))[0]] == papers
    array = json.dumps([p.to_json() for p in papers], indent=1).encode()
    assert [i.paper for i in split(run_parser("jsonl", array))[0]] == papers


def record(**fields: object) -> bytes:
    base: dict[str, object] = {"title": "A title"}
    base.update(fields)
    return json.dumps(base).encode() + b"\n"


BAD_RECORDS = [
    (b'{"title": "cut', "truncated JSON"),
    (b'["a", "list"]', "not a JSON object (found an array)"),
    (b"null", "not a JSON object (found null)"),
    (record(title=""), "missing title"),
    (record(title=None), "missing title"),
    (record(title=["a"]), "field 'title' must be text, not a list"),
    (record(published="yesterday"), "unparsable date in field 'published'"),
    (record(feed_date="2024-02-30"), "unparsable date in field 'feed_date'"),
    (record(upvotes="many"), "invalid number in field 'upvotes'"),
    (record(rank=-1), "invalid number in field 'rank'"),
    (record(rank=True), "invalid number in field 'rank'"),
    (record(upvotes=2**63), "invalid number in field 'upvotes'"),
    (record(upvotes=1e300), "invalid number in field 'upvotes'"),
    (record(arxiv_id="1234"), "invalid arXiv id in field 'arxiv_id'"),
    (record(doi="not a doi"), "invalid DOI in field 'doi'"),
    (record(links="https://example.org"), "field 'links' must be an object"),
    (record(title="Caf\xe9").replace(b"\\u00e9", b"\xe9"), "broken encoding"),
    (record(title="A \\udc00 title").replace(b"\\\\udc00", b"\\udc00"), "surrogate"),
    (record(listing="A \\udc00").replace(b"\\\\udc00", b"\\udc00"), "surrogate"),
    (b"[" * 100_000, "invalid JSON: nested too deeply"),
    (b'{"title": "x", "upvotes": 1' + b"1" * 5000 + b"}", "invalid JSON"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_RECORDS, ids=[r for _, r in BAD_RECORDS])
def test_bad_lines_are_rejected_and_neighbours_kept(bad: bytes, reason: str) -> None:
    good_line = JSONL.splitlines(keepends=True)[0]
    items = run_parser("jsonl", good_line + bad.rstrip(b"\n") + b"\n" + good_line)
    assert [type(i).__name__ for i in items] == ["Parsed", "Rejected", "Parsed"]
    rejected = items[1]
    assert isinstance(rejected, Rejected)
    assert rejected.locator == "line 2"
    assert reason in rejected.reason
    assert rejected.raw


# (Not the 100,000 unclosed brackets: in an array they swallow what follows, as they should.)
@pytest.mark.parametrize(
    ("bad", "reason"), BAD_RECORDS[3:-2], ids=[r for _, r in BAD_RECORDS[3:-2]]
)
def test_bad_array_elements_are_rejected_and_neighbours_kept(bad: bytes, reason: str) -> None:
    good = json.dumps({"title": "Good", "rank": 1}).encode()
    data = b"[\n" + good + b",\n" + bad.rstrip(b"\n") + b",\n" + good + b"\n]\n"
    items = run_parser("jsonl", data)
    assert [type(i).__name__ for i in items] == ["Parsed", "Rejected", "Parsed"], items
    rejected = items[1]
    assert isinstance(rejected, Rejected)
    assert rejected.locator == "element 2 (line 3)"
    assert reason in rejected.reason or rejected.reason.startswith("invalid JSON")


@pytest.mark.parametrize(
    "bad",
    [b'{"title": tru}', b'{"title": "x",}', b'{"title": "x" "y"}', b"}", b'{"a": [1, 2}'],
)
def test_syntax_errors_inside_an_array(bad: bytes) -> None:
    good = b'{"title": "Good"}'
    items = run_parser("jsonl", b"[" + good + b", " + bad + b", " + good + b", " + good + b"]")
    good_items, bad_items = split(items)
    assert bad_items
    assert all(b.reason.startswith("invalid JSON") for b in bad_items)
    # A broken element costs itself, and at most the element its brackets run into.
    assert len(good_items) >= 2
    assert good_items[0].locator == "element 1 (line 1)"


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(ARRAY)))
def test_truncated_array_keeps_its_complete_elements(cut: int) -> None:
    full = [i.paper for i in split(run_parser("jsonl", ARRAY))[0]]
    try:
        items = run_parser("jsonl", ARRAY[:cut])
    except FormatError:
        assert not ARRAY[:cut].strip()
        return
    good, bad = split(items)
    assert [g.paper for g in good] == full[: len(good)]
    complete = ARRAY[:cut].count(b"\n  }")
    assert len(good) >= complete
    assert len(bad) <= 1
    if bad:
        assert bad[0].reason == "truncated JSON"


def test_large_array_streams_across_read_chunks() -> None:
    records = [
        {"title": f"Paper {n}", "abstract": "word " * (50 + n % 300), "rank": n}
        for n in range(1, 401)
    ]
    data = json.dumps(records, indent=2).encode()
    assert len(data) > 4 * CHUNK
    items = run_parser("jsonl", data)
    good, bad = split(items)
    assert bad == []
    assert [g.entry.rank for g in good if g.entry] == list(range(1, 401))
    starts = [n for n, text in enumerate(data.decode().splitlines(), 1) if text == "  {"]
    assert [g.locator for g in good] == [f"element {i} (line {n})" for i, n in enumerate(starts, 1)]


def test_array_is_read_lazily() -> None:
    element = json.dumps({"title": "T", "abstract": "x" * 1000}).encode()
    stream = io.BytesIO(b"[" + b",".join([element] * 2000) + b"]")
    ctx = ParseContext(source="jsonl", listing="l", path="big.json")
    first = next(parse(stream, ctx))
    assert isinstance(first, Parsed)
    assert stream.tell() < len(stream.getvalue()) // 10


def test_broken_encoding_across_a_chunk_boundary() -> None:
    pad = json.dumps({"title": "pad", "abstract": "a" * (CHUNK - 40)}).encode()
    broken = b'{"title": "caf\xc3'  # the two bytes of 'é', cut after the first
    data = b"[" + pad + b"," + broken + b'\xa9"},' + broken + b'"}, {"title": "ok"}]'
    items = run_parser("jsonl", data)
    assert [type(i).__name__ for i in items] == ["Parsed", "Parsed", "Rejected", "Parsed"]
    assert isinstance(items[1], Parsed)
    assert items[1].paper.title == "café"
    assert isinstance(items[2], Rejected)
    assert items[2].reason.startswith("broken encoding")
    assert "\ufffd" in items[2].raw  # storable: no lone surrogate in the excerpt
    items[2].raw.encode("utf-8")


def test_blank_lines_bom_and_crlf() -> None:
    data = b"\xef\xbb\xbf\r\n" + record(title="One").replace(b"\n", b"\r\n") + b"\n \n"
    data += record(title="Two")
    good, bad = split(run_parser("jsonl", data))
    assert bad == []
    assert [(g.paper.title, g.locator) for g in good] == [("One", "line 2"), ("Two", "line 5")]
    (item,) = run_parser("jsonl", b"\xef\xbb\xbf" + b'[{"title": "Three"}]')
    assert isinstance(item, Parsed)


def test_single_author_object_and_author_numbers() -> None:
    items = run_parser("jsonl", record(authors={"name": "Ada Lovelace"}) + record(authors=42))
    assert [i.paper.authors for i in split(items)[0]] == [("Ada Lovelace",), ("42",)]


def test_text_after_the_array() -> None:
    items = run_parser("jsonl", b'[{"title": "A"}]\n[{"title": "B"}, {"title": "C"}]\n')
    assert [i.paper.title for i in split(items)[0]] == ["A", "B", "C"]
    items = run_parser("jsonl", b'[{"title": "A"}]\n\n{"title": "B"}\n')
    assert [type(i).__name__ for i in items] == ["Parsed", "Rejected"]
    assert items[1].locator == "line 3"
    assert isinstance(items[1], Rejected)
    assert items[1].reason == "unexpected text after the JSON array"


def test_format_errors() -> None:
    with pytest.raises(FormatError, match="empty"):
        run_parser("jsonl", b"")
    with pytest.raises(FormatError, match="empty"):
        run_parser("jsonl", b"\n\r\n  \n")
    with pytest.raises(FormatError, match="not JSON lines"):
        run_parser("jsonl", b"Title: Attention Is All You Need\nAuthors: Vaswani et al.\n")
    assert run_parser("jsonl", b"[]") == []


def test_overlong_lines_are_cut_and_skipped() -> None:
    data = io.BytesIO(b"short\n" + b"x" * 100 + b"\nafter\n" + b"y" * 40)
    assert list(bounded_lines(data, limit=16)) == [
        (1, b"short\n", True),
        (2, b"x" * 16, False),
        (3, b"after\n", True),
        (4, b"y" * 16, False),
    ]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    for prefix in (b"", b"["):
        try:
            items = run_parser("jsonl", prefix + data)
        except FormatError:
            continue
        assert all(isinstance(i, (Parsed, Rejected)) for i in items)
        for item in items:
            if isinstance(item, Rejected):
                item.raw.encode("utf-8")  # every excerpt is storable


@settings(max_examples=200, deadline=None)
@given(
    source=st.sampled_from([JSONL, ARRAY]),
    position=st.integers(min_value=0, max_value=len(ARRAY)),
    noise=st.binary(max_size=12),
    drop=st.integers(min_value=0, max_value=8),
)
def test_fuzz_mutated_samples(source: bytes, position: int, noise: bytes, drop: int) -> None:
    at = min(position, len(source))
    mutated = source[:at] + noise + source[at + drop :]
    try:
        items = run_parser("jsonl", mutated)
    except FormatError:
        return
    good, _ = split(items)
    assert all(isinstance(i, (Parsed, Rejected)) for i in items)
    # A file that now starts with "[" is read as one JSON array, no longer line by line.
    reads_as_lines = not mutated.lstrip(b" \t\r\n\xef\xbb\xbf").startswith(b"[")
    if (
        source is JSONL
        and reads_as_lines
        and b"\n" not in noise
        and b"\n" not in source[at : at + drop]
    ):
        # One damaged line: every other line still parses.
        assert len(good) >= 7


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "id",
                "arxiv_id",
                "doi",
                "title",
                "Title",
                "abstract",
                "summary",
                "authors",
                "categories",
                "published",
                "updated",
                "url",
                "pdf_url",
                "code_url",
                "project_url",
                "upvotes",
                "feed_date",
                "rank",
                "listing",
                "links",
                "other",
            ]
        ),
        json_values,
    )
)
def test_fuzz_field_values(obj: dict[str, object]) -> None:
    line = json.dumps(obj).encode()
    (item,) = run_parser("jsonl", line)
    assert isinstance(item, (Parsed, Rejected))
    (element,) = run_parser("jsonl", b"[" + line + b"]")
    assert type(element) is type(item)
    if isinstance(item, Parsed) and isinstance(element, Parsed):
        assert element.paper == item.paper
