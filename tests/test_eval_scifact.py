"""Search quality as a regression test: BEIR SciFact with the default model.

The expected scores per mode live in tests/expected/scifact.json, next to how they were
measured; a change that moves any of them by more than the tolerance fails here, whether it
makes them worse (a regression) or better (update the file, and the README, on purpose).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paperfeed.evaluation.beir import evaluate
from paperfeed.search import SearchMode
from paperfeed.settings import Settings
from tests.conftest import SCIFACT, need_shared

EXPECTED = json.loads((Path(__file__).parent / "expected" / "scifact.json").read_text())


@pytest.mark.slow
def test_scifact_scores_match_the_expected_values(scifact_work: Path) -> None:
    # The work directory already holds SciFact embedded (shared with the recommender's
    # evaluation); evaluate() ingests and embeds whatever is missing, here nothing.
    report = evaluate(need_shared(SCIFACT), Settings.resolve(scifact_work), modes=list(SearchMode))
    assert report.documents == 5183
    tolerance = EXPECTED["tolerance"]
    got = {s.mode: s for s in report.scores}
    for mode, expected in EXPECTED["modes"].items():
        score = got[mode]
        for metric, value in expected.items():
            actual = {
                "ndcg@10": score.ndcg_at_10,
                "recall@100": score.recall_at_100,
                "mrr@10": score.mrr_at_10,
            }[metric]
            assert actual == pytest.approx(value, abs=tolerance), f"{mode} {metric}"
