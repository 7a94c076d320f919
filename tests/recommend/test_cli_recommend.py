"""The recommender's commands end to end on a sample store embedded with the fake encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from paperfeed.cli import main
from paperfeed.settings import Settings
from tests.recommend.conftest import embed_sample


def run(data_dir: Path, *args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(main, ["--data-dir", str(data_dir), *args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def home(settings: Settings) -> Path:
    embed_sample(settings).close()
    return settings.data_dir


def sample_ids(home: Path, word: str, n: int) -> list[str]:
    listed = json.loads(run(home, "papers", "list", "--json").output)
    papers = listed if isinstance(listed, list) else listed["papers"]
    return sorted({p["id"] for p in papers if word in p["title"].lower()})[:n]


def test_like_then_for_you_says_why(home: Path) -> None:
    liked = sample_ids(home, "text-to-image", 5)
    out = json.loads(run(home, "like", *liked, "--json").output)
    assert out["user"] == "local"
    assert out["tags"] == [{"tag": "", "positives": 5, "negatives": 0}]
    result = json.loads(run(home, "for-you", "--all", "--limit", "5", "--json").output)
    assert result["status"] == "ok"
    assert result["model"]["kind"] == "logistic"
    assert len(result["picks"]) == 5
    for pick in result["picks"]:
        assert pick["paper"]["id"] not in liked
        assert pick["because"][0]["paper_id"] in liked
        assert pick["reason"].startswith("close to “")
    text = run(home, "for-you", "--all", "--limit", "3").output
    assert "For you" in text
    assert "close to" in text
    # "Not interested" in the first pick: it is gone from the next list.
    first = result["picks"][0]["paper"]["id"]
    run(home, "dislike", first)
    again = json.loads(run(home, "for-you", "--all", "--limit", "5", "--json").output)
    assert first not in [p["paper"]["id"] for p in again["picks"]]
    status = json.loads(run(home, "recommend", "status", "--json").output)
    assert status["tags"][0]["positives"] == 5
    assert status["tags"][0]["negatives"] == 1
    assert status["tags"][0]["model"] == "logistic"
    trained = json.loads(run(home, "recommend", "train", "--rebuild", "--json").output)
    assert [t["tag"] for t in trained["trained"]] == [""]
    run(home, "unlike", first)
    assert json.loads(run(home, "recommend", "train", "--json").output)["trained"][0]["tag"] == ""


def test_tags_users_and_errors(home: Path) -> None:
    ids = sample_ids(home, "language", 2)
    run(home, "like", *ids, "--tag", "nlp")
    result = json.loads(run(home, "for-you", "--tag", "nlp", "--all", "--json").output)
    assert result["tag"] == "nlp"
    assert result["status"] == "ok"
    bad = run(home, "like", "2401.99999", ok=False)
    assert bad.exit_code != 0
    assert "no paper with id '2401.99999'" in bad.output
    nobody = run(home, "like", ids[0], "--user", "nobody", ok=False)
    assert "no user named 'nobody'" in nobody.output
    both = run(home, "for-you", "--days", "3", "--week", "latest", ok=False)
    assert "not both" in both.output
    empty = run(home, "for-you", "--user", "local", "--tag", "unknown-tag")
    assert "No picks" in empty.output


def test_topics_commands(home: Path) -> None:
    listed = json.loads(run(home, "topics", "list", "--json").output)
    assert {"cs.CL", "ml.diffusion-models"} <= {t["key"] for t in listed}
    added = json.loads(
        run(
            home, "topics", "add", "text-to-image personalization", "--name", "T2I", "--json"
        ).output
    )
    assert added["group"] == "user"
    assert added["papers"] > 0  # labelled at once, no 'topics assign' needed
    interest = json.loads(
        run(home, "topics", "add", "diffusion models for images", "--interest", "--json").output
    )
    assert interest["group"] == "interest"
    report = json.loads(run(home, "topics", "assign", "--threshold", "0.35", "--json").output)
    assert report["papers"] == 162
    assert report["labels"] > 0
    shown = json.loads(run(home, "topics", "show", "T2I", "--json").output)
    assert shown["topic"]["key"] == added["key"]
    assert shown["papers"]
    chips = json.loads(run(home, "topics", "paper", shown["papers"][0]["id"], "--json").output)
    assert added["key"] in [c["key"] for c in chips]
    # The interest alone starts "for you" (cold start).
    cold = json.loads(run(home, "for-you", "--all", "--limit", "3", "--json").output)
    assert cold["status"] == "ok"
    assert cold["picks"][0]["because"][0]["interest"] == "diffusion models for images"
    run(home, "topics", "remove", added["key"])
    missing = run(home, "topics", "show", "T2I", ok=False)
    assert "no topic 'T2I'" in missing.output


def test_map_png(home: Path, tmp_path: Path) -> None:
    run(home, "like", *sample_ids(home, "text-to-image", 3))
    out = tmp_path / "map.png"
    first = json.loads(
        run(home, "map", "--out", str(out), "--method", "pca", "--size", "6", "--json").output
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert first["computed"] is True
    assert first["papers"] == 162
    assert first["liked"] == 3
    assert first["layout"]["method"] == "pca"
    second = json.loads(run(home, "map", "--out", str(out), "--method", "pca", "--json").output)
    assert second["computed"] is False  # cached: same model, same vector generation


def test_commands_without_embeddings(tmp_path: Path) -> None:
    run(tmp_path / "empty", "init")
    result = run(tmp_path / "empty", "map", "--out", str(tmp_path / "m.png"), ok=False)
    assert "no embeddings" in result.output
