"""The recommender's offline evaluation: simulated users, and the real run on SciFact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from paperfeed.cli import main
from paperfeed.evaluation.recommend import (
    INTERESTS_PER_USER,
    SimulatedUser,
    evaluate_users,
    one_interest_users,
    several_interest_users,
)
from tests.conftest import SCIFACT, need_shared


def test_simulated_populations() -> None:
    groups = [[1, 2, 3], [4, 5], [6], [7], [8], [9, 10]]
    one = one_interest_users(groups)
    assert len(one) == 3 + 2 + 2
    assert SimulatedUser((2, 3), (1,)) in one
    several = several_interest_users(groups, 20, seed=3)
    assert len(several) == 20
    for user in several:
        assert len(user.held_out) == INTERESTS_PER_USER
        assert not set(user.held_out) & set(user.likes)
        assert {6, 7, 8} <= set(user.likes)  # the three single-document interests
    assert several == several_interest_users(groups, 20, seed=3)
    assert several_interest_users(groups[:2], 5, seed=0) == []


def test_methods_on_separable_users() -> None:
    # Two small clusters the user likes (3 liked + 1 held out each), four big ones not.
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((6, 24))
    labels = np.r_[np.zeros(4, int), np.ones(4, int), np.repeat(np.arange(2, 6), 58)]
    x = centres[labels] + 0.3 * rng.standard_normal((len(labels), 24))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    users = [SimulatedUser((0, 1, 2, 4, 5, 6), (3, 7))]
    n = len(labels)
    report = evaluate_users("test", users, x, recency=np.arange(float(n)), popularity=np.zeros(n))
    scores = {s.method: s for s in report.scores}
    assert scores["recommender"].precision_at_10 == pytest.approx(0.2)
    assert scores["recommender"].ndcg_at_10 > 0.9
    assert scores["recency"].precision_at_10 == 0.0  # rows 8.. come first, held-out 3 and 7 later
    assert report.mean_likes == 6


@pytest.mark.slow
def test_the_recommender_beats_the_baselines_on_scifact(scifact_work: Path) -> None:
    need_shared(SCIFACT)
    result = CliRunner().invoke(
        main,
        ["eval", str(SCIFACT), "--recommender", "--work-dir", str(scifact_work), "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    several = report["populations"]["several interests"]["methods"]
    for baseline in ("centroid", "recency", "popularity"):
        assert several["recommender"]["ndcg@10"] > several[baseline]["ndcg@10"] + 0.05
        assert several["recommender"]["precision@10"] > several[baseline]["precision@10"]
    one = report["populations"]["one interest"]["methods"]
    assert one["recommender"]["ndcg@10"] > one["centroid"]["ndcg@10"]
