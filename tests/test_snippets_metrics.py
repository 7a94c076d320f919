from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paperfeed.evaluation.metrics import mrr_at, ndcg_at, recall_at
from paperfeed.snippets import make_snippet

ABSTRACT = (
    "Recent text-to-image models can synthesize images of a subject. We present a method "
    "for personalization of diffusion models: given a few images of a subject, the model "
    "learns to generate it in new scenes. "
    + "Filler sentence about nothing much. " * 20
    + "Our personalized diffusion results beat baselines & prior <work>."
)


def test_snippet_marks_query_words_and_prefix_forms() -> None:
    snippet = make_snippet(ABSTRACT, ["personalization", "diffusion"])
    assert "<mark>personalization</mark>" in snippet
    assert "<mark>diffusion</mark>" in snippet
    assert len(snippet.replace("<mark>", "").replace("</mark>", "")) <= 260


def test_snippet_picks_the_densest_window_and_escapes_html() -> None:
    snippet = make_snippet(ABSTRACT, ["personalized", "baselines"], width=120)
    assert snippet.startswith("…")
    assert "<mark>baselines</mark>" in snippet
    assert "&amp;" in snippet
    assert "&lt;work&gt;" in snippet
    assert "<work>" not in snippet


def test_snippet_without_match_is_the_start() -> None:
    snippet = make_snippet(ABSTRACT, ["zebra"], width=80)
    assert snippet.startswith("Recent text-to-image")
    assert snippet.endswith("…")
    assert "<mark>" not in snippet


@given(st.text(max_size=600), st.lists(st.text(max_size=12), max_size=5))
def test_snippet_never_fails_and_never_leaks_markup(text: str, terms: list[str]) -> None:
    snippet = make_snippet(text, terms)
    unmarked = snippet.replace("<mark>", "").replace("</mark>", "")
    assert "<" not in unmarked


def test_ndcg_matches_hand_computation() -> None:
    qrels = {"a": 1, "b": 2}
    ranking = ["x", "b", "a"]
    dcg = 2 / math.log2(3) + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at(ranking, qrels, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at(["b", "a"], qrels, 10) == pytest.approx(1.0)
    assert ndcg_at([], qrels, 10) == 0.0
    assert ndcg_at(["a"], {}, 10) == 0.0


def test_recall_and_mrr() -> None:
    qrels = {"a": 1, "b": 1, "c": 0}
    assert recall_at(["a", "c", "z"], qrels, 100) == 0.5
    assert recall_at(["z"] * 100 + ["a"], qrels, 100) == 0.0
    assert mrr_at(["z", "c", "b"], qrels, 10) == pytest.approx(1 / 3)
    assert mrr_at(["z"], qrels, 10) == 0.0
