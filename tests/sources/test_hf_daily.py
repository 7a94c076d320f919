"""Tests for the Hugging Face daily-papers JSON parser (format ``hf-daily``)."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperfeed.errors import FormatError
from paperfeed.model import Links, ListingEntry
from paperfeed.sources.base import ParseContext, Parsed, Rejected
from paperfeed.sources.hf_daily import parse

from .helpers import FIXTURES, run_parser, split

FIX = FIXTURES / "hf-daily"
DAY = dt.date(2024, 3, 15)


def items_of(data: bytes) -> tuple[list[Parsed], list[Rejected]]:
    return split(run_parser("hf-daily", data))


def recorded() -> list[dict[str, Any]]:
    value: list[dict[str, Any]] = json.loads((FIX / "daily_papers.json").read_text("utf-8"))
    return value


def dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


# --- the recorded response --------------------------------------------------------------


def test_recorded_response_maps_every_field() -> None:
    good, bad = items_of((FIX / "daily_papers.json").read_bytes())
    assert bad == []
    assert [g.paper.arxiv_id for g in good] == [
        "2403.09611",
        "2403.09629",
        "2403.08295",
        "2403.03206",
        "2402.17764",
    ]
    assert [g.entry for g in good] == [
        ListingEntry(listing="test-listing", feed_date=DAY, rank=rank) for rank in range(1, 6)
    ]
    sd3 = good[3].paper
    assert sd3.id == "2403.03206"
    assert sd3.title == "Scaling Rectified Flow Transformers for High-Resolution Image Synthesis"
    assert sd3.abstract.startswith("Diffusion models create data from noise")
    assert sd3.authors[:2] == ("Patrick Esser", "Sumith Kulal")
    assert "Jonas Müller" in sd3.authors
    assert sd3.published == dt.date(2024, 3, 5)  # paper.publishedAt: the arXiv date
    assert sd3.upvotes == 32
    assert sd3.links == Links(
        abs="https://arxiv.org/abs/2403.03206",
        pdf="https://arxiv.org/pdf/2403.03206",
        code="https://github.com/Stability-AI/sd3-ref",
        project="https://stability.ai/news/stable-diffusion-3-research-paper",
    )
    assert sd3.sources == ("hf-daily",)
    assert good[0].paper.links.code is None
    assert good[2].paper.links.project == "https://ai.google.dev/gemma"
    assert [g.locator for g in good[:2]] == ["element 1 (line 2)", "element 2 (line 73)"]


def test_compact_response_gives_the_same_papers() -> None:
    pretty, _ = items_of((FIX / "daily_papers.json").read_bytes())
    compact, bad = items_of(dumps(recorded()))
    assert bad == []
    assert [(g.paper, g.entry) for g in compact] == [(g.paper, g.entry) for g in pretty]


class Trickle(io.RawIOBase):
    """A stream that returns at most a few bytes per read, to cut values at every place."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data = data
        self.pos = 0
        self.step = step
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self.data[self.pos : self.pos + self.step]
        self.pos += len(chunk)
        self.read_bytes += len(chunk)
        return chunk


@pytest.mark.parametrize("step", [1, 7, 4096])
def test_reads_in_small_chunks_give_the_same_result(step: int) -> None:
    data = (FIX / "bad_elements.json").read_bytes()
    ctx = ParseContext(source="hf-daily", listing="test-listing", path="<t>")
    expected = run_parser("hf-daily", data)
    assert list(parse(Trickle(data, step), ctx)) == expected


def test_streams_a_large_array_without_reading_it_all() -> None:
    element = dumps(recorded()[0])
    data = b"[" + b",".join([element] * 500) + b"]"
    stream = Trickle(data, 1 << 16)
    items = parse(stream, ParseContext(source="hf-daily", listing="l", path="<t>"))
    first = next(items)
    assert isinstance(first, Parsed)
    assert stream.read_bytes < len(data) // 10
    assert sum(1 for _ in items) == 499


# --- other shapes -----------------------------------------------------------------------


def test_single_object_wrapper_json_lines_and_several_arrays() -> None:
    data = recorded()
    ids = [d["paper"]["id"] for d in data]

    single, _ = items_of(dumps(data[1]))
    assert [(g.paper.id, g.entry.rank if g.entry else 0) for g in single] == [(ids[1], 1)]

    wrapped, _ = items_of(dumps({"papers": data[:3], "date": "2024-03-15"}))
    assert [g.paper.id for g in wrapped] == ids[:3]
    assert [g.entry.rank for g in wrapped if g.entry] == [1, 2, 3]

    lines = b"\n".join(dumps(d) for d in data)
    jsonl, _ = items_of(lines)
    assert [g.paper.id for g in jsonl] == ids
    assert [g.locator for g in jsonl][-1] == "element 5 (line 5)"

    # Two days saved one after the other: ranks restart with each array.
    two, _ = items_of(dumps(data[:2]) + b"\n" + dumps(data[2:]))
    assert [(g.paper.id, g.entry.rank) for g in two if g.entry] == [
        (ids[0], 1),
        (ids[1], 2),
        (ids[2], 1),
        (ids[3], 2),
        (ids[4], 3),
    ]


def test_bare_paper_objects_have_no_feed_day() -> None:
    paper = recorded()[2]["paper"]
    paper.pop("submittedOnDailyAt")
    good, bad = items_of(dumps([paper]))
    assert bad == []
    assert good[0].paper.id == "2403.08295"
    assert good[0].paper.published == dt.date(2024, 3, 13)
    assert good[0].entry == ListingEntry("test-listing", None, 1)


def test_feed_date_sources_in_order() -> None:
    item = recorded()[0]
    item["paper"]["submittedOnDailyAt"] = "2024-03-16T08:00:00.000Z"
    item["publishedAt"] = "2024-03-15T00:33:10.541Z"
    no_paper_day = copy.deepcopy(item)
    no_paper_day["paper"].pop("submittedOnDailyAt")
    no_day = copy.deepcopy(no_paper_day)
    no_day.pop("publishedAt")
    good, _ = items_of(dumps([item, no_paper_day, no_day]))
    assert [g.entry.feed_date for g in good if g.entry] == [
        dt.date(2024, 3, 16),
        dt.date(2024, 3, 15),
        None,
    ]


def test_top_level_fallbacks_and_lenient_fields() -> None:
    item = recorded()[1]
    paper = item["paper"]
    paper.pop("title")
    paper.pop("summary")
    paper.pop("upvotes")
    item["upvotes"] = 5.0
    paper["githubRepo"] = "github.com/ezelikman/quiet-star"
    paper["projectPage"] = "not a url"
    paper["authors"] = [
        {"_id": "x", "name": "  Eric   Zelikman "},
        {"_id": "y", "hidden": True},
        "Noah D. Goodman",
    ]
    good, bad = items_of(dumps([item]))
    assert bad == []
    p = good[0].paper
    assert p.title == item["title"]
    assert p.abstract == " ".join(item["summary"].split())
    assert p.upvotes == 5
    assert p.links.code == "https://github.com/ezelikman/quiet-star"
    assert p.links.project is None
    assert p.authors == ("Eric Zelikman", "Noah D. Goodman")


def test_id_that_is_not_an_arxiv_id_falls_back_to_a_title_id() -> None:
    item = recorded()[0]
    item["paper"]["id"] = "not-an-arxiv-id"
    good, _ = items_of(dumps([item]))
    assert good[0].paper.arxiv_id is None
    assert good[0].paper.id.startswith("title:")


def test_empty_array_is_a_day_without_papers() -> None:
    assert run_parser("hf-daily", b"[]\n") == []


# --- bad elements -----------------------------------------------------------------------


def test_bad_elements_are_rejected_with_index_and_reason() -> None:
    good, bad = items_of((FIX / "bad_elements.json").read_bytes())
    assert [(g.locator, g.paper.id) for g in good] == [
        ("element 1 (line 2)", "2403.09611"),
        ("element 9 (line 10)", "2402.17764"),
    ]
    assert good[1].entry == ListingEntry("test-listing", DAY, 9)
    assert [(b.locator, b.reason) for b in bad] == [
        ("element 2 (line 3)", "missing title"),
        ("element 3 (line 4)", "unparsable date in field 'paper.publishedAt': 'last Tuesday'"),
        ("element 4 (line 5)", "unparsable date in field 'publishedAt': '2024-13-45T99:00:00Z'"),
        ("element 5 (line 6)", "element is a JSON string, not an object"),
        ("element 6 (line 7)", "field 'paper' is not an object"),
        ("element 7 (line 8)", "invalid JSON: Expecting property name enclosed in double quotes"),
        ("element 8 (line 9)", "broken encoding: element is not valid UTF-8 (byte 636: b'\\xef')"),
    ]
    assert bad[0].raw.startswith('{"paper": {"id": "2403.08295"')
    assert "Quiet-STaR for na\ufffdve readers" in bad[6].raw  # storable excerpt


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda d: d["paper"].update(upvotes="many"),
            "invalid number in field 'paper.upvotes': 'many'",
        ),
        (
            lambda d: d["paper"].update(upvotes=True),
            "invalid number in field 'paper.upvotes': True",
        ),
        (
            lambda d: d["paper"].update(id=2403.1),
            "invalid id in field 'paper.id': '2403.1' (expected a string)",
        ),
        (
            lambda d: d["paper"].update(publishedAt=17),
            "unparsable date in field 'paper.publishedAt': 17",
        ),
        (
            lambda d: d["paper"].update(title="Bad \ud800 title"),
            "broken encoding: field 'paper.title' contains an unpaired surrogate",
        ),
    ],
)
def test_field_problems(change: Any, reason: str) -> None:
    item = recorded()[0]
    change(item)
    data = b"[" + dumps(recorded()[1]) + b"," + json.dumps(item).encode() + b"]"
    good, bad = items_of(data)
    assert [g.paper.id for g in good] == ["2403.09629"]
    assert [(b.locator, b.reason) for b in bad] == [("element 2 (line 1)", reason)]


def test_truncated_fixture_keeps_complete_elements() -> None:
    good, bad = items_of((FIX / "truncated.json").read_bytes())
    assert [g.paper.id for g in good] == ["2403.09611", "2403.09629", "2403.08295"]
    assert [(b.locator, b.reason) for b in bad] == [("element 4 (line 212)", "truncated JSON")]
    assert '"id": "2403.03206"' in bad[0].raw


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1))
def test_cut_anywhere_keeps_every_complete_element(cut_seed: int) -> None:
    data = dumps(recorded())
    cut = 1 + cut_seed % (len(data) - 1)
    ends = []  # where each element's closing brace is
    decoder = json.JSONDecoder()
    pos = 1
    text = data.decode()
    for _ in recorded():
        pos = text.index("{", pos)
        _, pos = decoder.raw_decode(text, pos)
        ends.append(len(text[:pos].encode()))
    complete = sum(1 for end in ends if end <= cut)
    if complete == 0:
        with pytest.raises(FormatError, match="truncated JSON"):
            items_of(data[:cut])
        return
    good, bad = items_of(data[:cut])
    assert len(good) == complete
    assert len(bad) == 1
    assert bad[0].reason.startswith("truncated JSON")


# --- whole inputs that are not daily-papers JSON ----------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b" \n\t", "empty"),
        (b"Attention Is All You Need\n\nThe dominant sequence models ...", "not JSON"),
        (b"\x00\x01\x02\xff", "not JSON"),
        (b'{"error": "Invalid date: 2024-13-01"}', "API error: Invalid date"),
        (b"[", "truncated JSON"),
        (b'[{"paper": {"id": "2403.0', "truncated JSON"),
        (b"[not json]", "not a daily-papers JSON response"),
    ],
)
def test_not_daily_papers_raises_format_error(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        run_parser("hf-daily", data)


def test_garbage_after_the_array_is_rejected_and_papers_kept() -> None:
    good, bad = items_of(dumps(recorded()[:2]) + b"\n<html>oops</html>\n")
    assert len(good) == 2
    assert [b.reason.split(":")[0] for b in bad] == ["invalid JSON"]


def test_broken_last_element_is_invalid_not_truncated() -> None:
    data = dumps(recorded()[:2])[:-1] + b', {"paper": {"id": "2403.1"},}]'
    good, bad = items_of(data)
    assert len(good) == 2
    assert [(b.locator, b.reason) for b in bad] == [
        ("element 3 (line 1)", "invalid JSON: Expecting property name enclosed in double quotes")
    ]


def test_unclosed_array_after_complete_elements() -> None:
    good, bad = items_of(dumps(recorded()[:2])[:-1])
    assert len(good) == 2
    assert [b.reason for b in bad] == ["truncated JSON: the array is not closed"]


# --- never crash ------------------------------------------------------------------------


def _run_any(data: bytes) -> None:
    try:
        items = run_parser("hf-daily", data)
    except FormatError:
        return
    for item in items:
        assert isinstance(item, Parsed | Rejected)
        # Everything that comes out can be stored as UTF-8 (no lone surrogates).
        if isinstance(item, Rejected):
            (item.locator + item.reason + item.raw).encode("utf-8")
        else:
            json.dumps(item.paper.to_json(), ensure_ascii=False).encode("utf-8")
        if isinstance(item, Parsed):
            assert item.paper.title
            assert item.entry is not None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    _run_any(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_inside_an_array_never_crash(data: bytes) -> None:
    _run_any(b'[{"paper": {"id": "2403.09611", "title": "T"}}, ' + data)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "paper",
                    "id",
                    "title",
                    "summary",
                    "authors",
                    "publishedAt",
                    "upvotes",
                    "papers",
                    "submittedOnDailyAt",
                    "githubRepo",
                    "projectPage",
                    "name",
                    "error",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(JSONISH, max_size=5))
def test_arbitrary_json_values_never_crash(values: list[Any]) -> None:
    _run_any(json.dumps(values).encode())


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["daily_papers.json", "bad_elements.json", "truncated.json"]),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=20),
    st.integers(min_value=0),
)
def test_mutated_and_truncated_samples_never_crash(
    name: str, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray((FIX / name).read_bytes())
    for position, value in flips:
        data[position % len(data)] = value
    _run_any(bytes(data[: cut % (len(data) + 1)]))
