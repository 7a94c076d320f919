from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from paperfeed.cli import main
from tests.conftest import HF_PAGES, need_shared


def run(*args: str, data_dir: Path, ok: bool = True) -> Result:
    result = CliRunner().invoke(main, ["--data-dir", str(data_dir), *args])
    if ok:
        assert result.exit_code == 0, (result.output, result.stderr, result.exception)
    return result


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "pf"


def test_init_then_stats(data: Path) -> None:
    run("init", data_dir=data)
    stats = json.loads(run("stats", "--json", data_dir=data).stdout)
    assert stats["papers"] == 0
    assert stats["appearances"] == 0
    assert stats["quarantined"] == 0


def test_ingest_pages_list_show_and_export(data: Path, tmp_path: Path) -> None:
    pages = sorted(str(p) for p in need_shared(HF_PAGES).glob("*.txt"))
    result = run("ingest", *pages, "--json", "--no-embed", data_dir=data)
    report = json.loads(result.stdout)
    assert report["total"]["added"] == 162
    assert report["total"]["appearances"] == 210
    stats = json.loads(run("stats", "--json", data_dir=data).stdout)
    assert (stats["papers"], stats["appearances"], stats["quarantined"]) == (162, 210, 0)

    listed = json.loads(run("papers", "list", "--date", "latest", "--json", data_dir=data).stdout)
    assert listed["total"] > 0
    first = listed["papers"][0]
    text = run("papers", "list", "--date", "latest", data_dir=data).stdout
    assert first["title"] in text

    shown = json.loads(run("papers", "show", first["id"], "--json", data_dir=data).stdout)
    assert shown["title"] == first["title"]
    assert shown["appearances"]
    assert first["title"] in run("papers", "show", first["id"], data_dir=data).stdout

    for fmt in ("json", "jsonl", "csv", "bibtex", "ris"):
        out = tmp_path / f"all.{fmt}"
        run("export", "--format", fmt, "--out", str(out), data_dir=data)
        assert out.stat().st_size > 1000
    everything = json.loads((tmp_path / "all.json").read_text())
    assert len(everything) == 162
    one = json.loads(run("export", "--id", first["id"], data_dir=data).stdout)
    assert [p["id"] for p in one] == [first["id"]]

    # The export reads back into a fresh store as the same papers.
    other = tmp_path / "other"
    run("ingest", str(tmp_path / "all.jsonl"), "--no-embed", data_dir=other)
    assert json.loads(run("stats", "--json", data_dir=other).stdout)["papers"] == 162

    hits = json.loads(run("search", "diffusion", "--json", data_dir=data).stdout)
    assert hits["results"]
    assert "<mark>" in hits["results"][0]["snippet"].lower()


def test_ingest_summary_and_quarantine(data: Path, tmp_path: Path) -> None:
    bad = tmp_path / "list.csv"
    bad.write_text("title,published\nGood paper,2024-01-02\n,2024-01-03\nBad date,notadate\n")
    result = run("ingest", str(bad), data_dir=data)
    assert "1 added" in result.stdout
    assert "2 quarantined" in result.stdout
    listing = json.loads(run("quarantine", "--json", data_dir=data).stdout)
    assert listing["total"] == 2
    assert {r["locator"].split()[0] for r in listing["records"]} == {"line"}
    text = run("quarantine", data_dir=data).stdout
    assert "list.csv" in text
    exported = run("quarantine", "export", data_dir=data).stdout.splitlines()
    assert len(exported) == 2
    assert json.loads(exported[0])["path"].endswith("list.csv")
    run("quarantine", "clear", data_dir=data)
    assert json.loads(run("quarantine", "--json", data_dir=data).stdout)["total"] == 0


def test_exit_codes(data: Path, tmp_path: Path) -> None:
    nothing = tmp_path / "nothing.jsonl"
    nothing.write_text('{"title": ""}\n')
    result = run("ingest", str(nothing), data_dir=data, ok=False)
    assert result.exit_code == 1  # nothing could be read
    good = tmp_path / "good.jsonl"
    good.write_text('{"title": "A real paper"}\n')
    result = run(
        "ingest", str(good), str(tmp_path / "missing.bib"), "--no-embed", data_dir=data, ok=False
    )
    assert result.exit_code == 0  # something was read; the missing file is reported
    assert "missing.bib: no such file" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["papers", "show", "2401.99999"], "no paper with id '2401.99999'"),
        (["papers", "list", "--date", "13/03/2026"], "invalid date '13/03/2026'"),
        (["papers", "list", "--date", "latest"], "no feed days yet"),
    ],
)
def test_errors_are_one_clear_line(data: Path, args: list[str], message: str) -> None:
    run("init", data_dir=data)
    result = run(*args, data_dir=data, ok=False)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {message}" or message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_reading_commands_need_a_store(data: Path) -> None:
    result = run("stats", data_dir=data, ok=False)
    assert result.exit_code == 1
    assert "paperfeed init" in result.stderr


def test_data_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERFEED_HOME", str(tmp_path / "envhome"))
    result = CliRunner().invoke(main, ["init", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["store"].startswith(str(tmp_path / "envhome"))


def test_demo_runs_on_the_bundled_sample(data: Path) -> None:
    result = run("demo", "--no-embed", "--no-serve", data_dir=data)
    assert "Latest feed day" in result.stdout
    assert "Search (keyword): text-to-image personalization" in result.stdout
    # Running it twice adds nothing new.
    again = run("demo", "--no-embed", "--no-serve", data_dir=data)
    assert "0 new papers, 0 new appearances" in again.stdout


@pytest.mark.slow
def test_demo_with_the_real_model_then_search_similar_index(data: Path) -> None:
    """README command 1's job, with the real all-MiniLM-L6-v2, then the search commands."""
    result = run("demo", "--no-serve", data_dir=data)
    assert "162 papers embedded" in result.stdout
    assert "Search (hybrid): text-to-image personalization" in result.stdout
    hits = json.loads(
        run("search", "text-to-image personalization", "--json", data_dir=data).stdout
    )
    assert hits["mode"] == "hybrid"
    titles = [r["paper"]["title"] for r in hits["results"][:5]]
    assert any("Personalization" in t for t in titles)
    assert all(r["semantic_score"] is not None for r in hits["results"])
    nothing = json.loads(run("search", "qwxz vbnm plokij", "--json", data_dir=data).stdout)
    assert nothing["nothing_relevant"] is True
    first = hits["results"][0]["paper"]["id"]
    similar = json.loads(run("similar", first, "--json", data_dir=data).stdout)
    assert len(similar["results"]) == 10
    assert first not in [r["paper"]["id"] for r in similar["results"]]
    status = json.loads(run("index", "status", "--json", data_dir=data).stdout)
    assert (status["papers"], status["embedded"], status["pending"]) == (162, 162, 0)
    again = json.loads(run("index", "--json", data_dir=data).stdout)
    assert again["embedded_now"] == 0  # nothing changed, nothing re-embedded


def test_data_dir_option_beats_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_dir, root_dir, sub_dir = tmp_path / "env", tmp_path / "root", tmp_path / "sub"
    monkeypatch.setenv("PAPERFEED_HOME", str(env_dir))
    runner = CliRunner()
    assert runner.invoke(main, ["--data-dir", str(root_dir), "init"]).exit_code == 0
    assert runner.invoke(main, ["init", "--data-dir", str(sub_dir)]).exit_code == 0
    assert runner.invoke(main, ["init"]).exit_code == 0
    for d in (env_dir, root_dir, sub_dir):
        assert (d / "paperfeed.db").exists(), d
