"""The search query language: parsing, errors, and compiled queries run on a real keyword index
(the SQLite store's tantivy index; the PostgreSQL compilation is tested in test_store.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperfeed.errors import PaperfeedError
from paperfeed.index.keyword_query import (
    LITERAL_WORDS,
    MAX_SEMANTIC_CHARS,
    MAX_WORDS,
    Field,
    KeywordQuery,
    QuerySyntaxError,
    Term,
    parse_query,
    tokenize,
)
from paperfeed.store import SearchFilters
from paperfeed.store.sqlite.keyword_index import KeywordDocument, KeywordIndex

# --- the structured query -----------------------------------------------------------------


def test_plain_words_are_ranking_words_not_conditions() -> None:
    q = parse_query("diffusion models")
    assert q.words == ("diffusion", "models")
    assert q.required == ()
    assert q.excluded == ()
    assert q.semantic_text == "diffusion models"
    assert q.highlight_terms == ("diffusion", "models")


def test_quoted_phrase_is_required_in_text_fields() -> None:
    q = parse_query('"exact phrase" words')
    assert q.phrases == (Term(Field.ANY, ("exact", "phrase"), "exact phrase", quoted=True),)
    assert q.words == ("words",)


def test_quoted_single_word_must_occur() -> None:
    q = parse_query('"bert" pretraining')
    assert q.required == ((Term(Field.ANY, ("bert",), "bert", quoted=True),),)
    assert q.words == ("pretraining",)


@pytest.mark.parametrize(
    ("text", "field", "tokens"),
    [
        ("ti:word", Field.TITLE, ("word",)),
        ('ti:"a phrase"', Field.TITLE, ("a", "phrase")),
        ("TI:Word", Field.TITLE, ("Word",)),
        ("abs:denoising", Field.ABSTRACT, ("denoising",)),
        ("au:vaswani", Field.AUTHORS, ("vaswani",)),
        ('au:"noam shazeer"', Field.AUTHORS, ("noam", "shazeer")),
        ("Au:O'Neil", Field.AUTHORS, ("O", "Neil")),
        ("cat:cs.CL", Field.CATEGORIES, ("cs", "CL")),
        ("CAT:hep-th", Field.CATEGORIES, ("hep", "th")),
    ],
)
def test_field_prefixes(text: str, field: Field, tokens: tuple[str, ...]) -> None:
    q = parse_query(text)
    assert len(q.required) == 1
    (term,) = q.required[0]
    assert (term.field, term.tokens) == (field, tokens)
    assert q.words == ()


def test_field_terms_and_categories_are_listed_separately() -> None:
    q = parse_query('ti:diffusion au:"jonathan ho" cat:cs.LG "latent space" video')
    assert [t.field for t in q.field_terms] == [Field.TITLE, Field.AUTHORS]
    assert [g[0].text for g in q.categories] == ["cs.LG"]
    assert [t.text for t in q.phrases] == ["latent space"]
    assert q.words == ("video",)


@pytest.mark.parametrize(
    ("text", "excluded"),
    [
        ("x -word", Term(Field.ANY, ("word",), "word")),
        ('x -"a phrase"', Term(Field.ANY, ("a", "phrase"), "a phrase", quoted=True)),
        ("x -au:name", Term(Field.AUTHORS, ("name",), "name")),
        ("x -cat:cs.CV", Term(Field.CATEGORIES, ("cs", "CV"), "cs.CV")),
        ("x NOT word", Term(Field.ANY, ("word",), "word")),
    ],
)
def test_exclusions(text: str, excluded: Term) -> None:
    q = parse_query(text)
    assert q.excluded == (excluded,)
    assert q.words == ("x",)
    assert q.semantic_text == "x"
    assert excluded.tokens[-1].casefold() not in q.highlight_terms


def test_minus_not_followed_by_a_letter_is_text() -> None:
    q = parse_query("temperature -40 - x")
    assert q.excluded == ()
    assert q.words == ("temperature", "40", "x")


def test_or_joins_conditions_into_one_group() -> None:
    q = parse_query('"stable diffusion" OR "latent diffusion" OR cat:cs.CV')
    assert len(q.required) == 1
    assert [t.text for t in q.required[0]] == ["stable diffusion", "latent diffusion", "cs.CV"]


def test_or_between_plain_words_keeps_them_ranking_words() -> None:
    q = parse_query("diffusion OR flow")
    assert (q.words, q.required) == (("diffusion", "flow"), ())


def test_and_makes_words_required_and_binds_looser_than_or() -> None:
    q = parse_query("transformer AND vision OR video")
    assert [[t.text for t in g] for g in q.required] == [["transformer"], ["vision", "video"]]
    assert q.words == ()


@pytest.mark.parametrize("text", ["OR diffusion", "diffusion OR", "AND diffusion", "NOT"])
def test_dangling_operators_are_plain_words(text: str) -> None:
    q = parse_query(text)
    assert q.required == ()
    assert q.excluded == ()
    assert not q.is_empty


def test_lowercase_operators_are_words() -> None:
    assert parse_query("not diffusion").words == ("diffusion",)
    assert parse_query("not or and").words == ("not", "or", "and")


def test_stopwords_leave_the_or_part_unless_nothing_else_is_left() -> None:
    assert parse_query("the effect of noise").words == ("effect", "noise")
    assert parse_query("to be or not to be").words == ("to", "be", "or", "not")
    assert parse_query('"attention is all you need" the').words == ()
    assert parse_query("the effect").semantic_text == "the effect"


def test_words_are_deduplicated_ignoring_case_and_diacritics() -> None:
    assert parse_query("Müller muller MULLER model").words == ("Müller", "model")


def test_unknown_prefixes_and_engine_syntax_are_plain_text() -> None:
    q = parse_query("xx:foo BERT: NEAR(a b) title:x ^y z* {title}:w (c OR d) AND")
    assert q.excluded == ()
    assert q.words == ("xx", "foo", "BERT", "NEAR", "b", "title", "x", "y", "z", "w", "c", "d")
    assert q.semantic_text.startswith("xx:foo BERT: NEAR(a b)")


def test_unbalanced_quote_runs_to_the_end() -> None:
    q = parse_query('diffusion "latent space model')
    assert [t.text for t in q.phrases] == ["latent space model"]
    assert parse_query('ti:"attention is').field_terms[0].tokens == ("attention", "is")


def test_punctuation_only_means_nothing() -> None:
    for text in ["", "   ", "!!!", '""', "- -- ---", '-"..."']:
        q = parse_query(text)
        assert q.is_empty


def test_filters_alone_are_a_query_with_no_semantic_text() -> None:
    q = parse_query("au:vaswani cat:cs.CL")
    assert q.semantic_text == ""
    assert q.highlight_terms == ("vaswani",)
    assert [[t.field for t in g] for g in q.required] == [[Field.AUTHORS], [Field.CATEGORIES]]


def test_semantic_text_keeps_words_phrases_and_title_terms_in_order() -> None:
    q = parse_query('ti:diffusion "image synthesis" au:ho -video of cat:cs.CV faces')
    assert q.semantic_text == "diffusion image synthesis of faces"


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("-diffusion", 0, "besides exclusions"),
        ("-diffusion -au:ho -cat:cs.CV", 0, "besides exclusions"),
        ("ti:", 0, "'ti:' at character 1"),
        ("diffusion ti: model", 10, "'ti:' at character 11"),
        ('x ti:""', 2, """'ti:""'"""),
        ("au:!!!", 0, "au:word"),
        ("cat:*", 0, "cat:cs.CL"),
        ("x -cat:", 2, "'-cat:'"),
        ("-a OR b", 3, "OR at character 4"),
        ("a OR -b", 2, "joins an exclusion"),
    ],
)
def test_syntax_errors_name_the_problem_and_position(
    text: str, position: int, fragment: str
) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_query(text)
    assert info.value.position == position
    assert fragment in str(info.value)
    assert isinstance(info.value, PaperfeedError)
    assert info.value.status == 400


# --- long queries -------------------------------------------------------------------------

ABSTRACT = (
    "We present high quality image synthesis results using diffusion probabilistic models, "
    'a class of latent variable models inspired by "considerations" from nonequilibrium '
    "thermodynamics. Our best results are obtained by training on a weighted variational "
    "bound designed according to a novel connection between diffusion probabilistic models "
    "and denoising score matching with Langevin dynamics, and our models naturally admit a "
    "progressive lossy decompression scheme -which can be interpreted as a generalization of "
    "autoregressive decoding. On the unconditional CIFAR10 dataset, we obtain an Inception "
    "score of 9.46 and a state-of-the-art FID score of 3.17. ti: cat: "
)


def test_pasted_abstract_is_plain_text_without_syntax() -> None:
    q = parse_query(ABSTRACT * 3)  # ~300 words, stray quotes, minus signs and prefixes
    assert q.literal
    assert q.required == ()
    assert q.excluded == ()
    assert 0 < len(q.words) <= MAX_WORDS
    assert "considerations" in q.words
    assert "which" in q.words  # "-which" is not an exclusion here
    assert not {"the", "a", "of", "and"} & {w.casefold() for w in q.words}
    assert q.semantic_text.startswith("We present high quality image synthesis")


def test_long_queries_are_capped() -> None:
    words = [f"w{i}" for i in range(1000)]
    q = parse_query(" ".join(words))
    assert q.words == tuple(words[:MAX_WORDS])
    assert q.truncated
    huge = parse_query("x" * 5_000_000 + " y")
    assert len(huge.semantic_text) <= MAX_SEMANTIC_CHARS
    assert len(huge.words) <= 1


def test_literal_threshold_and_explicit_plain_text() -> None:
    short = " ".join(["-excluded"] + ["word"] * (LITERAL_WORDS - 1))
    assert parse_query(short).excluded != ()
    assert parse_query(short + " more").excluded == ()
    q = parse_query('ti:attention -"video" cat:cs.CL', syntax=False)
    assert q.literal
    assert q.words == ("ti", "attention", "video", "cat", "cs", "CL")


def test_tokenize_matches_unicode61_word_splitting() -> None:
    assert tokenize("state-of-the-art cs.CL O'Neil snake_case Ünïcödé 3.17") == (
        "state",
        "of",
        "the",
        "art",
        "cs",
        "CL",
        "O",
        "Neil",
        "snake",
        "case",
        "Ünïcödé",
        "3",
        "17",
    )


# --- against a real keyword index --------------------------------------------------------

PAPERS = {
    "attention": (
        "Attention Is All You Need",
        "We propose the Transformer, a network based solely on attention mechanisms, "
        "for machine translation.",
        ["Ashish Vaswani", "Noam Shazeer"],
        ["cs.CL", "cs.LG"],
    ),
    "ddpm": (
        "Denoising Diffusion Probabilistic Models",
        "We present high quality image synthesis results using diffusion probabilistic models.",
        ["Jonathan Ho", "Ajay Jain", "Pieter Abbeel"],
        ["cs.LG", "stat.ML"],
    ),
    "ldm": (
        "High-Resolution Image Synthesis with Latent Diffusion Models",
        "Latent diffusion models reach state-of-the-art text-to-image synthesis.",
        ["Robin Rombach", "Björn Ommer"],
        ["cs.CV"],
    ),
    "video": (
        "Video Diffusion Models",
        "A diffusion model for video generation, an extension of the image architecture.",
        ["Jonathan Ho", "Tim Salimans"],
        ["cs.CV", "cs.LG"],
    ),
    "clx": (
        "Scaling Laws for Attention",
        "How attention scales with compute (AND, OR, NEAR are not operators here).",
        ["Noam Brown"],
        ["cs.CLX"],
    ),
    "mathph": (
        "Attention in Mathematical Physics",
        "Score matching, which relates to diffusion, seen from physics.",
        ["Jürgen Müller"],
        ["math-ph", "math.MP"],
    ),
    "bert": (
        "BERT: Pre-training of Deep Bidirectional Transformers",
        "Language representation model pre-trained on unlabeled text.",
        ["Jacob Devlin"],
        ["cs.CL"],
    ),
}


NAMES = list(PAPERS)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> KeywordIndex:
    """The SQLite store's keyword index, holding PAPERS (published on consecutive days)."""
    path: Path = tmp_path_factory.mktemp("keyword") / "paperfeed.db-keyword"
    index = KeywordIndex(path)
    docs = [
        KeywordDocument(pk, title, abstract, authors, categories, dt.date(2024, 1, 1 + pk))
        for pk, (title, abstract, authors, categories) in enumerate(PAPERS.values())
    ]
    with index.updating() as update:
        update.replace([], docs)
    return index


def _search(
    index: KeywordIndex, query: KeywordQuery, filters: SearchFilters | None = None
) -> list[str]:
    return [NAMES[pk] for pk, _ in index.search(query, limit=100, filters=filters)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("diffusion", {"ddpm", "ldm", "video", "mathph"}),
        ("ti:diffusion", {"ddpm", "ldm", "video"}),
        ('ti:"diffusion models"', {"ldm", "video"}),
        ('"image synthesis"', {"ddpm", "ldm"}),
        ('"state of the art"', {"ldm"}),
        ("abs:physics", {"mathph"}),
        ("au:ho", {"ddpm", "video"}),
        ('au:"noam shazeer"', {"attention"}),
        ('au:"noam"', {"attention", "clx"}),
        ("au:muller", {"mathph"}),  # diacritics removed on both sides
        ("au:Müller", {"mathph"}),
        ("cat:cs.CL", {"attention", "bert"}),  # never cs.CLX
        ("cat:CS.clx", {"clx"}),
        ("cat:cs.*", {"attention", "ddpm", "ldm", "video", "clx", "bert"}),
        ("cat:cs.C*", {"attention", "ldm", "video", "clx", "bert"}),
        ("cat:stat.ML", {"ddpm"}),
        ("cat:math-ph", {"mathph"}),
        ("diffusion -video", {"ddpm", "ldm", "mathph"}),
        ('diffusion -"latent diffusion"', {"ddpm", "video", "mathph"}),
        ("diffusion -au:ho", {"ldm", "mathph"}),
        ("diffusion -cat:cs.CV", {"ddpm", "mathph"}),
        ("diffusion NOT cat:cs.LG", {"ldm", "mathph"}),
        ("attention cat:cs.CL", {"attention"}),
        ("cat:cs.CL OR cat:cs.CV", {"attention", "bert", "ldm", "video"}),
        ("au:rombach OR au:devlin", {"ldm", "bert"}),
        ('"latent diffusion" OR ti:bert', {"ldm", "bert"}),
        ("transformer AND translation", {"attention"}),
        ("diffusion AND video OR bert", {"video"}),
        ("attention AND NEAR", {"clx"}),  # NEAR is a word, not an operator
        ("BERT: pre-training", {"bert"}),
        ("xx:transformer", {"attention", "bert"}),  # stemmed: Transformers ~ transformer
        ("the of", {"attention", "ldm", "video", "bert"}),  # only stopwords: kept
        ("ml", set()),  # plain words never match category codes (stat.ML)
    ],
)
def test_compiled_queries_match_the_right_rows(
    index: KeywordIndex, text: str, expected: set[str]
) -> None:
    assert set(_search(index, parse_query(text))) == expected


def test_papers_with_more_query_words_rank_first(index: KeywordIndex) -> None:
    assert _search(index, parse_query("video diffusion"))[0] == "video"
    assert _search(index, parse_query("latent diffusion synthesis"))[0] == "ldm"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (SearchFilters(categories=("cs.CV",)), {"ldm", "video"}),
        (SearchFilters(categories=("CS.lg", "stat.*")), {"ddpm", "video"}),
        (SearchFilters(categories=("math.*",)), {"mathph"}),  # math.MP
        (SearchFilters(categories=("math",)), set()),
        (SearchFilters(categories=("math-ph",)), {"mathph"}),
        (SearchFilters(categories=("cs.CL",)), set()),  # cs.CLX has no "diffusion"
        (SearchFilters(categories=("physics.*",)), set()),
        (SearchFilters(date_from=dt.date(2024, 1, 3)), {"ldm", "video", "mathph"}),
        (SearchFilters(date_to=dt.date(2024, 1, 3)), {"ddpm", "ldm"}),
        (
            SearchFilters(date_from=dt.date(2024, 1, 3), date_to=dt.date(2024, 1, 4)),
            {"ldm", "video"},
        ),
    ],
)
def test_filters_restrict_without_changing_scores(
    index: KeywordIndex, filters: SearchFilters, expected: set[str]
) -> None:
    query = parse_query("diffusion")
    everything = dict(index.search(query, limit=100))
    filtered = index.search(query, limit=100, filters=filters)
    assert {NAMES[pk] for pk, _ in filtered} == expected
    assert all(everything[pk] == score for pk, score in filtered)


def test_allowed_keys_restrict_the_result(index: KeywordIndex) -> None:
    allowed = [NAMES.index("ddpm"), NAMES.index("attention")]
    found = index.search(parse_query("diffusion"), limit=100, allowed=allowed)
    assert [NAMES[pk] for pk, _ in found] == ["ddpm"]


def test_ties_are_broken_by_key(index: KeywordIndex) -> None:
    # Three papers with two categories each, one of them cs.LG: equal scores.
    found = index.search(parse_query("cat:cs.LG"), limit=100)
    assert {NAMES[pk] for pk, _ in found} == {"attention", "ddpm", "video"}
    assert len({score for _, score in found}) == 1
    assert [pk for pk, _ in found] == sorted(pk for pk, _ in found)


def test_a_pasted_abstract_runs_and_finds_its_paper(index: KeywordIndex) -> None:
    assert _search(index, parse_query(ABSTRACT * 3))[0] == "ddpm"


_FRAGMENTS = st.sampled_from(
    [
        "ti:", "au:", "abs:", "cat:", "TI:", "-", '"', "*", "OR", "AND", "NOT", "NEAR", "(",
        ")", "{", "}", ":", "^", "+", "cs.CL", "cs.*", "diffusion", "the", " ", "  ", "é",
        "\u0301", "İ", "ǅ", "_", "'", ".", "\x00", "\n", "\U0001f600", "\ue000", "ß", "Ⅲ",
    ]
)  # fmt: skip
_QUERIES = st.one_of(
    st.text(max_size=80),
    st.lists(st.one_of(_FRAGMENTS, st.text(max_size=4)), max_size=20).map("".join),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_QUERIES)
def test_any_text_parses_into_a_runnable_query_or_a_syntax_error(
    index: KeywordIndex, text: str
) -> None:
    q = _parse_or_error(text)
    if isinstance(q, QuerySyntaxError):
        assert 0 <= q.position <= len(text)
        return
    found = index.search(q, limit=10)
    assert not (q.is_empty and found)
    assert len(q.words) <= MAX_WORDS


def _parse_or_error(text: str) -> KeywordQuery | QuerySyntaxError:
    try:
        return parse_query(text)
    except QuerySyntaxError as e:
        return e
