"""Tests for the saved listing-page parser (format ``listing``)."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import re
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperfeed.errors import FormatError
from paperfeed.ids import title_key
from paperfeed.model import ListingEntry
from paperfeed.sources.base import ParseContext, Parsed, Rejected
from paperfeed.sources.listing_page import parse

from .helpers import FIXTURES, SHARED_DATA, run_parser, split

PAGES = SHARED_DATA / "hf-pages"
FIX = FIXTURES / "listing"
TODAY = dt.date(2026, 11, 22)  # what run_parser passes as ctx.today

needs_pages = pytest.mark.skipif(
    not PAGES.is_dir() or not any(PAGES.glob("*.txt")),
    reason="shared hf-pages samples are not available",
)


def parse_bytes(data: bytes, today: dt.date = TODAY) -> tuple[list[Parsed], list[Rejected]]:
    return split(run_parser("listing", data, today=today))


def fixture(name: str) -> bytes:
    return (FIX / name).read_bytes()


def page_pairs(text: str) -> list[tuple[str, str]]:
    """(title, abstract) pairs of a shared page, read naively: after 5 header lines."""
    lines = [line for line in text.splitlines() if line.strip()][5:]
    return list(zip(lines[0::2], lines[1::2], strict=True))


# --- the shared real pages --------------------------------------------------------------


@needs_pages
def test_shared_pages_give_210_entries_of_162_papers() -> None:
    entries: list[Parsed] = []
    for path in sorted(PAGES.glob("*.txt")):
        good, bad = split(run_parser("listing", path.read_bytes(), listing=path.name))
        assert bad == []
        # Ranks are the positions on the page, each page from 1 without gaps.
        assert [g.entry.rank for g in good if g.entry] == list(range(1, len(good) + 1))
        assert {g.entry.listing for g in good if g.entry} == {path.name}
        entries += good
    assert len(entries) == 210
    assert len({e.paper.id for e in entries}) == 162
    assert all(e.paper.id.startswith("title:") and e.paper.abstract for e in entries)
    assert all(e.paper.sources == ("listing",) for e in entries)


@needs_pages
def test_shared_pages_titles_abstracts_and_dates() -> None:
    for path in sorted(PAGES.glob("*.txt")):
        text = path.read_text("utf-8")
        good, _ = parse_bytes(text.encode())
        pairs = page_pairs(text)
        assert [(g.paper.title, g.paper.abstract) for g in good] == [
            (" ".join(t.split()), " ".join(a.split())) for t, a in pairs
        ]
        date_line = next(
            line for line in text.splitlines() if re.fullmatch(r"[A-Z][a-z]{2} \d+", line)
        )
        month, day = date_line.split()
        expected = dt.datetime.strptime(f"{month} {day} {TODAY.year}", "%b %d %Y").date()
        assert {g.entry.feed_date for g in good if g.entry} == {expected}
        assert good[0].paper.id == f"title:{title_key(pairs[0][0])}"


@needs_pages
@pytest.mark.parametrize(
    "transform",
    [
        pytest.param(lambda t: t.replace("\n", "\r\n"), id="crlf"),
        pytest.param(
            lambda t: "\n".join(x for x in t.split("\n") if x.strip()), id="no-blank-lines"
        ),
        pytest.param(lambda t: re.sub(r"\n\n(?=[^\n]{300,})", "\n", t), id="title-above-abstract"),
        pytest.param(lambda t: t.replace("\n\n", "", 5), id="whole-header-glued"),
        pytest.param(
            lambda t: "\n\n".join(
                textwrap.fill(p, 72, break_on_hyphens=False, break_long_words=False)
                for p in t.split("\n\n")
            ),
            id="wrapped-72",
        ),
        pytest.param(lambda t: t + "\n\nPrevious\n\nNext\n\nSystem theme\n", id="footer"),
    ],
)
def test_shared_page_layout_variants_parse_the_same(transform: object) -> None:
    assert callable(transform)
    path = sorted(PAGES.glob("*.txt"))[0]
    text = path.read_text("utf-8")
    expected, _ = parse_bytes(text.encode())
    got, bad = parse_bytes(transform(text).encode())
    assert bad == []
    assert [(g.paper.id, g.paper.abstract, g.entry) for g in got] == [
        (g.paper.id, g.paper.abstract, g.entry) for g in expected
    ]


@needs_pages
def test_pages_joined_into_one_file_keep_their_own_dates_and_ranks() -> None:
    paths = sorted(PAGES.glob("*.txt"))
    separate = [parse_bytes(p.read_bytes())[0] for p in paths]
    texts = [p.read_text("utf-8") for p in paths]
    for joined in ("\n\n".join(texts), "\n".join(t.replace("\n\n", "\n") for t in texts)):
        good, bad = parse_bytes(joined.encode())
        assert bad == []
        assert [(g.paper.id, g.entry) for g in good] == [
            (g.paper.id, g.entry) for page in separate for g in page
        ]


# --- synthetic layouts ------------------------------------------------------------------


def test_no_blank_lines_and_other_header_wording() -> None:
    good, bad = parse_bytes(fixture("no_blank_lines.txt"))
    assert bad == []
    assert [g.paper.title for g in good] == [
        "Attention Is All You Need",
        "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding",
        "Segment Anything",
        "mPLUG-Owl: Modularization Empowers Large Language Models with Multimodality",
        "Are Emergent Abilities of Large Language Models a Mirage?",
        "Textbooks Are All You Need",
    ]
    # An abstract ending in a URL (no full stop) does not swallow the next title.
    assert good[3].paper.abstract.endswith("https://github.com/X-PLUG/mPLUG-Owl")
    assert [g.entry for g in good] == [
        ListingEntry("test-listing", dt.date(2026, 3, 13), rank) for rank in range(1, 7)
    ]


def test_date_glued_to_a_title_starting_with_a_digit() -> None:
    good, bad = parse_bytes(fixture("glued_date.txt"))
    assert bad == []
    assert good[0].paper.title == "3D Gaussian Splatting for Real-Time Radiance Field Rendering"
    assert [g.entry.feed_date for g in good if g.entry] == [dt.date(2026, 3, 1)] * 3
    assert [g.paper.title.split(":")[0] for g in good[1:]] == ["Mamba", "QLoRA"]


def test_subscribe_glued_to_first_title_and_weekday_date() -> None:
    good, bad = parse_bytes(fixture("glued_subscribe.txt"))
    assert bad == []
    assert good[0].paper.title == "LoRA: Low-Rank Adaptation of Large Language Models"
    assert {g.entry.feed_date for g in good if g.entry} == {dt.date(2026, 3, 13)}
    assert len(good) == 2


def test_crlf_fixture_with_a_dated_header() -> None:
    data = fixture("crlf.txt")
    assert b"\r\n" in data
    good, bad = parse_bytes(data)
    assert bad == []
    assert [g.paper.title for g in good] == [
        "Deep Residual Learning for Image Recognition",
        "Denoising Diffusion Probabilistic Models",
    ]
    assert all("\r" not in g.paper.abstract for g in good)
    assert {g.entry.feed_date for g in good if g.entry} == {dt.date(2024, 3, 13)}


def test_missing_abstract_footer_and_stray_lines() -> None:
    good, bad = parse_bytes(fixture("footer_missing_abstract.txt"))
    assert [
        (g.paper.title, bool(g.paper.abstract), g.entry.rank if g.entry else None) for g in good
    ] == [
        ("Language Models are Few-Shot Learners", True, 1),
        ("Scaling Laws for Neural Language Models", False, 2),  # kept: looks like a title
        ("Training Compute-Optimal Large Language Models", True, 3),
        ("Llama 2: Open Foundation and Fine-Tuned Chat Models", True, 4),
        ("Direct Preference Optimization: Your Language Model is Secretly a Reward Model", True, 5),
    ]
    assert {g.entry.feed_date for g in good if g.entry} == {dt.date(2024, 3, 13)}
    # Lines between entries that cannot be papers are rejected; the footer is not.
    assert [(b.locator, b.reason) for b in bad] == [
        (
            "line 17",
            "not a paper entry: a line without an abstract that does not look like a title",
        ),
        ("line 23", "not a paper entry: a paragraph without a title line"),
    ]
    assert bad[0].raw == "[pdf] [code]"


def test_hard_wrapped_paragraphs_are_joined() -> None:
    good, bad = parse_bytes(fixture("wrapped.txt"))
    assert bad == []
    assert [g.paper.title for g in good] == [
        "Proximal Policy Optimization Algorithms",
        "Learning Transferable Visual Models From Natural Language Supervision",
        # wrapped over two lines in the fixture
        "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
    ]
    assert good[0].paper.abstract.startswith("We propose a new family of policy gradient methods")
    assert good[0].paper.abstract.endswith("have better sample complexity (empirically).")
    assert "State-of-the-art computer vision" in good[1].paper.abstract
    assert {g.entry.feed_date for g in good if g.entry} == {dt.date(2024, 3, 13)}


def test_no_date_line_gives_no_feed_date_and_skips_header_text() -> None:
    good, bad = parse_bytes(fixture("no_date.txt"))
    assert bad == []
    assert [g.paper.title for g in good] == [
        "High-Resolution Image Synthesis with Latent Diffusion Models",
        "Training language models to follow instructions with human feedback",
    ]
    assert [g.entry.feed_date for g in good if g.entry] == [None, None]


def test_broken_utf8_rejects_only_its_entry() -> None:
    good, bad = parse_bytes(fixture("broken_utf8.txt"))
    assert [(g.paper.title.split(":")[0], g.entry.rank if g.entry else 0) for g in good] == [
        ("Generative Adversarial Networks", 1),
        ("Dropout", 4),  # rejected entries keep their places
    ]
    assert [b.locator for b in bad] == ["entry 2 (line 9)", "entry 3 (line 13)"]
    assert bad[0].reason == "broken encoding: line 9 is not valid UTF-8 (byte 38: b'\\xef')"
    assert bad[1].reason.startswith("broken encoding: line 15 is not valid UTF-8")
    assert bad[0].raw.startswith("Auto-Encoding Variational Bayes")


# --- dates ------------------------------------------------------------------------------

ABSTRACT = (
    "We study a simple question about models. Our method works well on several benchmarks and "
    "we release code. Experiments show consistent gains over strong baselines in all settings."
)


def one_entry_page(header: str) -> bytes:
    return f"{header}\n\nA Simple Title About Models\n\n{ABSTRACT}\n".encode()


@pytest.mark.parametrize(
    ("date_line", "today", "expected"),
    [
        ("Mar 13", TODAY, dt.date(2026, 3, 13)),
        ("March 13", TODAY, dt.date(2026, 3, 13)),
        ("Mar 13, 2024", TODAY, dt.date(2024, 3, 13)),
        ("2024-03-13", TODAY, dt.date(2024, 3, 13)),
        ("Friday, Mar 13", TODAY, dt.date(2026, 3, 13)),
        ("13 March 2024", TODAY, dt.date(2024, 3, 13)),
        ("Sept. 3rd", TODAY, dt.date(2026, 9, 3)),
        # Without a year: the latest such day on or before today.
        ("Dec 31", TODAY, dt.date(2025, 12, 31)),
        ("Nov 22", TODAY, dt.date(2026, 11, 22)),
        ("Nov 23", TODAY, dt.date(2025, 11, 23)),
        ("Feb 29", TODAY, dt.date(2024, 2, 29)),
        ("Mar 13", dt.date(2026, 3, 12), dt.date(2025, 3, 13)),
        # A date with a year is used as is, even after today.
        ("Mar 13, 2030", TODAY, dt.date(2030, 3, 13)),
    ],
)
def test_date_spellings(date_line: str, today: dt.date, expected: dt.date) -> None:
    good, bad = parse_bytes(
        one_entry_page(f"Get trending papers in your email inbox!\n\n{date_line}"), today
    )
    assert bad == []
    assert [g.entry.feed_date for g in good if g.entry] == [expected]


def test_impossible_date_is_not_a_date_line() -> None:
    good, _ = parse_bytes(one_entry_page("Subscribe\n\nFeb 30"))
    assert [g.entry.feed_date for g in good if g.entry] == [None]


def test_a_second_date_line_starts_a_new_day() -> None:
    data = (
        "Mar 13\n\nFirst Paper On Day One\n\n"
        + ABSTRACT
        + "\n\nSecond Paper On Day One\n\n"
        + ABSTRACT
        + "\n\nMar 12\n\nFirst Paper On Day Two\n\n"
        + ABSTRACT
        + "\n"
    ).encode()
    good, bad = parse_bytes(data)
    assert bad == []
    assert [
        (g.entry.feed_date.day, g.entry.rank) for g in good if g.entry and g.entry.feed_date
    ] == [
        (13, 1),
        (13, 2),
        (12, 1),
    ]


# --- whole inputs that are not listing pages --------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\n\n  \n", id="blank"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), id="binary"),
        pytest.param(bytes(range(128, 256)) * 40, id="not-utf8-at-all"),
        pytest.param(
            b"new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nMar 13\n",
            id="header-only",
        ),
        pytest.param(b'[{"paper": {"id": "2403.08764", "title": "A title"}}]', id="json"),
    ],
)
def test_not_a_listing_page_raises_format_error(data: bytes) -> None:
    with pytest.raises(FormatError, match="<test>"):
        parse_bytes(data)


def test_gzip_stream_and_truncated_gzip() -> None:
    data = fixture("no_blank_lines.txt")
    ctx = ParseContext(source="listing", listing="l", path="<gz>", today=TODAY)
    whole = list(parse(gzip.GzipFile(fileobj=io.BytesIO(gzip.compress(data))), ctx))
    assert len(whole) == 6
    assert all(isinstance(i, Parsed) for i in whole)

    cut = gzip.compress(data)[: len(gzip.compress(data)) * 3 // 4]
    items = list(parse(gzip.GzipFile(fileobj=io.BytesIO(cut)), ctx))
    good, bad = split(items)
    assert 1 <= len(good) < 6
    assert bad[-1].reason.startswith("input ends unexpectedly")


def test_overlong_line_is_rejected_and_neighbours_kept() -> None:
    data = (
        "Mar 13\n\nA Paper Before The Long Line\n\n"
        + ABSTRACT
        + "\n\nAn Entry With A Huge Abstract\n\n"
        + "word " * 300_000
        + "\n\nA Paper After The Long Line\n\n"
        + ABSTRACT
        + "\n"
    ).encode()
    good, bad = parse_bytes(data)
    assert [g.paper.title for g in good] == [
        "A Paper Before The Long Line",
        "A Paper After The Long Line",
    ]
    assert len(bad) == 1
    assert "longer than" in bad[0].reason
    assert len(bad[0].raw) <= 2000


# --- properties ---------------------------------------------------------------------------


def _pairs() -> list[tuple[str, str]]:
    lines = fixture("no_blank_lines.txt").decode().splitlines()[4:]
    pairs = list(zip(lines[0::2], lines[1::2], strict=True))
    if PAGES.is_dir():
        for path in sorted(PAGES.glob("*.txt"))[:2]:
            pairs += page_pairs(path.read_text("utf-8"))
    return list(dict.fromkeys(pairs))


PAIRS = _pairs()
HEADERS = [
    [
        "new",
        "Get trending papers in your email inbox!",
        "Subscribe",
        "byAK and the research community",
        "Mar 13",
    ],
    [
        "Daily Papers",
        "Get trending papers in your inbox once a day",
        "by AK and the research community",
        "March 13",
    ],
    ["Mar 13, 2024"],
    ["Friday, Mar 13"],
    ["2024-03-13"],
]
FOOTERS = [
    [],
    ["Previous", "Next"],
    ["System theme", "TOS", "Privacy", "Models Datasets Spaces Pricing Docs"],
]
LAYOUTS = ["blank", "no-blank", "title-above", "wrap72", "wrap80", "wrap-title-above"]


@st.composite
def pages(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    """A listing page in a random layout, and the (title, abstract) pairs it holds."""
    chosen = draw(st.lists(st.sampled_from(PAIRS), min_size=1, max_size=6, unique=True))
    layout = draw(st.sampled_from(LAYOUTS))
    missing = [i > 0 and draw(st.booleans()) and draw(st.booleans()) for i in range(len(chosen))]
    width = 80 if layout == "wrap80" else 72
    blocks = []
    for (title, abstract), gone in zip(chosen, missing, strict=True):
        if layout.startswith("wrap"):
            title = textwrap.fill(title, width)
            abstract = textwrap.fill(
                abstract, width, break_on_hyphens=False, break_long_words=False
            )
        if layout in ("title-above", "wrap-title-above"):
            blocks.append(title if gone else f"{title}\n{abstract}")
        else:
            blocks += [title] if gone else [title, abstract]
    parts = draw(st.sampled_from(HEADERS)) + blocks + draw(st.sampled_from(FOOTERS))
    text = ("\n" if layout == "no-blank" else "\n\n").join(parts) + "\n"
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    expected = [
        (" ".join(t.split()), "" if gone else " ".join(a.split()))
        for (t, a), gone in zip(chosen, missing, strict=True)
    ]
    return text, expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pages())
def test_any_layout_recovers_every_entry(page: tuple[str, list[tuple[str, str]]]) -> None:
    text, expected = page
    good, bad = parse_bytes(text.encode())
    assert bad == []
    assert [(g.paper.title, g.paper.abstract) for g in good] == expected
    assert [g.entry.rank for g in good if g.entry] == list(range(1, len(expected) + 1))


def _run_any(data: bytes) -> None:
    try:
        items = run_parser("listing", data)
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
            assert item.entry.rank


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    _run_any(data)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_arbitrary_text_never_crashes(text: str) -> None:
    _run_any(text.encode("utf-8", errors="surrogatepass"))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(p.name for p in FIX.iterdir())),
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


@needs_pages
@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0), st.lists(st.integers(min_value=0), max_size=10))
def test_truncated_real_page_never_crashes(cut: int, deletions: list[int]) -> None:
    data = (sorted(PAGES.glob("*.txt"))[1]).read_bytes()
    lines = data.split(b"\n")
    for d in deletions:
        if lines:
            del lines[d % len(lines)]
    _run_any(b"\n".join(lines)[: cut % (len(data) + 1)])
