"""The BEIR corpus.jsonl parser, on the real SciFact corpus and on hand-made lines."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperfeed.errors import FormatError
from paperfeed.sources.base import Parsed, Rejected, clean_text
from paperfeed.sources.beir import beir_doc_id

from .helpers import SHARED_DATA, run_parser, split

SCIFACT = SHARED_DATA / "beir" / "scifact" / "corpus.jsonl"


@pytest.fixture(scope="module")
def scifact_bytes() -> bytes:
    if not SCIFACT.exists():
        pytest.skip(f"shared data not found: {SCIFACT}")
    return SCIFACT.read_bytes()


def test_scifact_parses_completely(scifact_bytes: bytes) -> None:
    good, bad = split(run_parser("beir", scifact_bytes))
    assert bad == []
    assert len(good) == 5183
    ids = [json.loads(line)["_id"] for line in scifact_bytes.splitlines()]
    assert [beir_doc_id(item) for item in good] == ids
    first = good[0]
    assert first.locator == "line 1 (_id 4983)"
    assert first.paper.title.startswith("Microstructural development of human newborn cerebral")
    assert first.paper.abstract.startswith("Alterations of the architecture of cerebral white")
    assert first.paper.id.startswith("title:")  # SciFact ids are not arXiv ids
    assert first.paper.arxiv_id is None
    assert first.paper.doi is None
    assert first.entry is None


def doc(**fields: object) -> bytes:
    record: dict[str, object] = {
        "_id": "d1",
        "title": "A title",
        "text": "Some text.",
        "metadata": {},
    }
    record.update(fields)
    return json.dumps({k: v for k, v in record.items() if v is not None}).encode() + b"\n"


def test_arxiv_ids_and_dois_give_identity() -> None:
    data = (
        doc(_id="2310.06825", title="Mistral 7B")
        + doc(_id="hep-th/9711200v3", title="The Large N Limit")
        + doc(_id="med-1", metadata={"DOI": "https://doi.org/10.1038/nature14539"})
        + doc(_id=17, metadata={"url": "https://example.org"})
    )
    good, bad = split(run_parser("beir", data))
    assert bad == []
    assert [g.paper.id for g in good[:3]] == [
        "2310.06825",
        "hep-th/9711200",
        "doi:10.1038/nature14539",
    ]
    assert [beir_doc_id(g) for g in good] == ["2310.06825", "hep-th/9711200v3", "med-1", "17"]


def test_bad_lines_are_rejected_with_their_id() -> None:
    data = (
        doc(_id="ok-1")
        + doc(_id="no-title", title="")
        + doc(_id=None)
        + doc(_id="bad-text", text=["a", "list"])
        + doc(_id="trunc")[:25]
        + b"\n"
        + doc(_id="enc", title="Caf\xe9").replace(b"\\u00e9", b"\xe9")
        + b'"just a string"\n'
        + doc(_id="line\nbreak")
        + doc(_id="ok-2")
    )
    items = run_parser("beir", data)
    assert [(i.locator, type(i).__name__) for i in items] == [
        ("line 1 (_id ok-1)", "Parsed"),
        ("line 2 (_id no-title)", "Rejected"),
        ("line 3", "Rejected"),
        ("line 4 (_id bad-text)", "Rejected"),
        ("line 5", "Rejected"),
        ("line 6", "Rejected"),
        ("line 7", "Rejected"),
        ("line 8", "Rejected"),
        ("line 9 (_id ok-2)", "Parsed"),
    ]
    reasons = [i.reason for i in items if isinstance(i, Rejected)]
    assert reasons == [
        "missing title",
        "missing _id",
        "field 'text' must be text",
        "truncated JSON",
        reasons[4],
        "not a JSON object (found a string)",
        "invalid _id: 'line\\nbreak'",
    ]
    assert reasons[4].startswith("broken encoding")
    rejected = [i for i in items if isinstance(i, Rejected)]
    assert beir_doc_id(rejected[0]) == "no-title"
    assert beir_doc_id(rejected[1]) is None


def test_ids_with_odd_characters_round_trip_through_the_locator() -> None:
    data = doc(_id="a (_id b) c)")
    (item,) = run_parser("beir", data)
    assert isinstance(item, Parsed)
    assert beir_doc_id(item) == "a (_id b) c)"


def test_not_jsonl_is_a_format_error() -> None:
    with pytest.raises(FormatError):
        run_parser("beir", b"query-id\tcorpus-id\tscore\n1\t31715818\t1\n")
    with pytest.raises(FormatError):
        run_parser("beir", b"")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    try:
        items = run_parser("beir", data)
    except FormatError:
        return
    assert all(isinstance(i, (Parsed, Rejected)) for i in items)


@settings(max_examples=200, deadline=None)
@given(
    title=st.text(max_size=30),
    text=st.text(max_size=60),
    doc_id=st.one_of(st.text(max_size=12), st.integers()),
    metadata=st.dictionaries(st.sampled_from(["doi", "DOI", "url"]), st.text(max_size=20)),
)
def test_fuzz_generated_documents(title: str, text: str, doc_id: object, metadata: object) -> None:
    data = json.dumps({"_id": doc_id, "title": title, "text": text, "metadata": metadata})
    (item,) = run_parser("beir", data.encode())
    if isinstance(item, Parsed):
        assert beir_doc_id(item) == str(doc_id)
        assert item.paper.title == clean_text(title)
    else:
        assert item.reason in {"missing title", "missing _id"} or item.reason.startswith(
            ("invalid _id", "broken encoding")
        )
