"""paperfeed bench: the report's structure and sanity on a tiny corpus (never its timings)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from paperfeed.bench import MODES, BenchConfig, parse_size, run_bench, runner
from paperfeed.bench.corpus import (
    TextModel,
    VectorSampler,
    exact_top,
    generate_papers,
    read_beir_corpus,
)
from paperfeed.bench.postgres import database_name
from paperfeed.bench.report import recall_at
from paperfeed.bench.serve import search_depth
from paperfeed.cli import main
from paperfeed.errors import PaperfeedError
from paperfeed.index import vector_ivf
from tests.pg_server import PgServer

WORDS = (
    "protein cell gene expression tumor immune response mouse model patient risk cohort "
    "treatment dose receptor signal pathway insulin glucose brain neuron memory virus "
    "infection vaccine antibody mutation cancer therapy trial outcome mortality"
).split()


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    """A small BEIR folder with the shape of SciFact: titled abstracts of a few sentences."""
    rng = random.Random(3)
    folder = tmp_path / "tiny-beir"
    folder.mkdir()

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18))).capitalize() + "."

    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(60):
            doc = {
                "_id": str(i),
                "title": sentence().rstrip("."),
                "text": " ".join(sentence() for _ in range(rng.randint(3, 9))),
            }
            fh.write(json.dumps(doc) + "\n")
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(15):
            fh.write(json.dumps({"_id": f"q{i}", "text": sentence()}) + "\n")
    return folder


def config(beir: Path, work: Path, **changes: object) -> BenchConfig:
    options: dict[str, object] = {
        "beir_dir": beir,
        "work_dir": work,
        "sizes": (300,),
        "queries": 12,
        "duration": 30.0,
        "warmup": 2,
        "model": "fake",
        "embed_docs": 16,
        "baseline": False,
    }
    options.update(changes)
    return BenchConfig(**options)  # type: ignore[arg-type]


def test_sizes_parse() -> None:
    assert parse_size("10k") == 10_000
    assert parse_size("1m") == 1_000_000
    assert parse_size("1.5k") == 1_500
    assert parse_size("1_000_000") == 1_000_000
    assert parse_size(" 250 ") == 250
    for bad in ("", "ten", "0", "1.5", "-3k", "2g"):
        with pytest.raises(PaperfeedError, match="invalid size"):
            parse_size(bad)


def test_synthetic_papers_are_distinct_repeatable_and_shaped_like_the_source(beir: Path) -> None:
    docs = read_beir_corpus(beir)
    model = TextModel.from_texts(docs, "tiny")
    papers = list(generate_papers(model, 2500, seed=1))
    assert len({p.id for p in papers}) == 2500  # distinct arXiv ids: nothing merges
    again = list(generate_papers(model, 2500, seed=1))
    assert [(p.title, p.abstract) for p in papers] == [(p.title, p.abstract) for p in again]
    other = list(generate_papers(model, 50, seed=2))
    assert [p.abstract for p in other] != [p.abstract for p in papers[:50]]
    # Abstracts are real sentences, about as long as the real abstracts.
    real_mean = float(np.mean(model.abstract_chars))
    synthetic_mean = float(np.mean([len(p.abstract) for p in papers]))
    assert 0.8 * real_mean < synthetic_mean < 1.3 * real_mean
    assert all(p.abstract.split(". ")[0].rstrip(".") + "." in model.sentences for p in papers[:50])
    assert all(p.title and p.authors and p.categories and p.published for p in papers)


def test_sampled_vectors_are_unit_and_follow_the_real_mean_direction() -> None:
    rng = np.random.default_rng(0)
    mean = rng.standard_normal(32).astype(np.float32)
    real = mean + 0.3 * rng.standard_normal((200, 32)).astype(np.float32)
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    sampler = VectorSampler(real, seed=0)
    drawn = sampler.sample(1000, seed=5)
    assert drawn.shape == (1000, 32)
    assert np.allclose(np.linalg.norm(drawn, axis=1), 1.0, atol=1e-5)
    real_centre = real.mean(axis=0)
    drawn_centre = drawn.mean(axis=0)
    cosine = real_centre @ drawn_centre / np.linalg.norm(real_centre) / np.linalg.norm(drawn_centre)
    assert cosine > 0.95
    assert np.array_equal(drawn, sampler.sample(1000, seed=5))


def _neighbour_cosines(vectors: np.ndarray) -> np.ndarray:
    """Mean cosine of each vector's 1st and 10th nearest other vector."""
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    ranked = -np.sort(-sims, axis=1)
    return np.asarray([ranked[:, 0].mean(), ranked[:, 9].mean()])


def test_sampled_vectors_keep_the_local_structure_of_real_ones() -> None:
    # "Real" vectors with what real embeddings have and a few broad Gaussians lack:
    # tight groups along a few directions of their own in a high-dimensional space.
    rng = np.random.default_rng(4)
    dim, groups = 96, 60
    centres = rng.standard_normal((groups, dim))
    bases = rng.standard_normal((groups, 3, dim))
    group = rng.integers(0, groups, 3000)
    local = np.einsum("nk,nkd->nd", rng.standard_normal((3000, 3)), bases[group])
    real = (centres[group] + 0.35 * local + 0.05 * rng.standard_normal((3000, dim))).astype(
        np.float32
    )
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    fit, held = real[:1500], real[1500:]
    drawn = VectorSampler(fit, seed=0).sample(len(held), seed=1)
    expected = _neighbour_cosines(held)
    assert np.abs(_neighbour_cosines(drawn) - expected).max() < 0.05
    # One Gaussian with the same mean and covariance (the spectrum alone) is far off.
    mean, cov = fit.mean(axis=0), np.cov(fit, rowvar=False)
    broad = rng.multivariate_normal(mean, cov, len(held)).astype(np.float32)
    broad /= np.linalg.norm(broad, axis=1, keepdims=True)
    assert np.abs(_neighbour_cosines(broad) - expected).max() > 0.1


def test_exact_top_and_recall() -> None:
    rng = np.random.default_rng(1)
    corpus = rng.standard_normal((500, 8)).astype(np.float32)
    queries = rng.standard_normal((4, 8)).astype(np.float32)
    keys = np.arange(1000, 1500, dtype=np.int64)
    top = exact_top(corpus, keys, queries, 10)
    for q, row in zip(queries, top, strict=True):
        expected = keys[np.argsort(-(corpus @ q))[:10]]
        assert row.tolist() == expected.tolist()
    assert recall_at(top.tolist(), top.tolist(), 10) == 1.0
    half = [[*r[:5], 0, 1, 2, 3, 4] for r in top.tolist()]
    assert recall_at(half, top.tolist(), 10) == 0.5


def check_report_sanity(report_json: dict[str, object], sizes: list[int]) -> None:
    assert "synthetic" in str(report_json["corpus"])
    size_reports = report_json["sizes"]
    assert isinstance(size_reports, list)
    assert [s["papers"] for s in size_reports] == sizes
    for size in size_reports:
        assert set(size["modes"]) == set(MODES)
        for mode, m in size["modes"].items():
            assert 1 <= m["queries"] <= 12
            assert 0 < m["p50_ms"] <= m["p95_ms"] <= m["p99_ms"] <= m["max_ms"]
            assert m["qps"] > 0
            assert ("recall@10" in m) == mode.startswith("vector")
            assert ("recall@k" in m) == (mode == "vector-depth")
            for recall in ("recall@10", "recall@k"):
                if recall in m:
                    assert 0.0 <= m[recall] <= 1.0
        memory = size["memory"]
        assert memory["loaded_mb"] > 0
        assert memory["peak_mb"] >= memory["loaded_mb"] * 0.5
        assert memory["anon_mb"] + memory["file_mb"] <= memory["peak_mb"] + 1
        assert size["build"]["papers"] == size["papers"]
        assert size["targets"] == []  # targets apply from a million papers on


def test_bench_exact_index_recall_is_one_and_corpora_are_reused(beir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    first = run_bench(config(beir, work, index_kind="exact"))
    data = first.to_json()
    check_report_sanity(data, [300])
    size = first.sizes[0]
    assert size.build.vector_kind == "exact"
    assert not size.build.reused
    for mode in ("vector", "vector-depth"):
        result = size.mode(mode)
        assert result is not None
        assert result.recall_at_10 == 1.0  # exact search against exact search
    deep = size.mode("vector-depth")
    assert deep is not None
    assert deep.k == search_depth()
    assert deep.recall_at_k == 1.0
    assert first.embedding is not None
    assert first.embedding.documents == 16
    assert first.embedding.docs_per_s > 0
    assert first.embedding.baseline_docs_per_s is None
    manifest = json.loads((work / "n-300" / "manifest.json").read_text())
    store_built = manifest["store"]["built"]

    # A second run reuses the store and the index, and reports the recorded build times.
    seen: list[str] = []
    second = run_bench(
        config(beir, work, index_kind="exact", modes=("vector",), embed_docs=0),
        lambda stage, done, total: seen.append(stage),
    )
    again = second.sizes[0]
    assert again.build.reused
    assert again.build.store_seconds == size.build.store_seconds
    assert json.loads((work / "n-300" / "manifest.json").read_text())["store"]["built"] == (
        store_built
    )
    assert not any("storing papers" in s for s in seen)
    assert any("serving" in s for s in seen)
    assert second.embedding is None
    assert [m.mode for m in again.modes] == ["vector"]


def test_new_vectors_are_drawn_without_rebuilding_the_store(
    beir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    first = run_bench(config(beir, work, index_kind="exact", modes=("vector",), embed_docs=0))
    manifest = json.loads((work / "n-300" / "manifest.json").read_text())
    assert manifest["vectors"]["sampler"] == runner.SAMPLER_VERSION
    before = np.load(work / "n-300" / "corpus-vectors.npy")

    # Another sampler (a new version, or fitted on other abstracts): the vectors and their
    # index are made again, the papers and their keyword index are kept.
    newer = runner.SAMPLER_VERSION + 1
    monkeypatch.setattr(runner, "SAMPLER_VERSION", newer)
    seen: list[str] = []
    second = run_bench(
        config(beir, work, index_kind="exact", modes=("vector",), embed_docs=0, fit_docs=40),
        lambda stage, done, total: seen.append(stage),
    )
    assert not any("storing papers" in s for s in seen)
    assert any("synthesizing vectors" in s for s in seen)
    assert any("vector index" in s for s in seen)
    assert not second.sizes[0].build.reused
    after = json.loads((work / "n-300" / "manifest.json").read_text())
    assert after["store"] == manifest["store"]
    assert after["vectors"]["sampler"] == newer
    assert after["vectors"]["fit_docs"] == 40
    assert not np.array_equal(before, np.load(work / "n-300" / "corpus-vectors.npy"))
    mode = second.sizes[0].mode("vector")
    assert mode is not None
    assert mode.recall_at_10 == 1.0
    assert first.sizes[0].build.store_seconds == second.sizes[0].build.store_seconds


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_bench_cli_json_with_an_approximate_index(beir: Path, tmp_path: Path, kind: str) -> None:
    result = CliRunner().invoke(
        main,
        [
            "bench", str(beir), "--sizes", "250,400", "--model", "fake", "--index", kind,
            "--queries", "12", "--warmup", "1", "--embed-docs", "8", "--no-baseline",
            "--work-dir", str(tmp_path / "work"), "--out", str(tmp_path / "report.json"),
            "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    check_report_sanity(data, [250, 400])
    assert json.loads((tmp_path / "report.json").read_text()) == data
    assert data["index_kind"] == kind
    assert all(s["build"]["vector_index_kind"] == kind for s in data["sizes"])


def test_an_index_built_with_other_parameters_is_built_again(
    beir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    quick = {"index_kind": "ivf", "modes": ("vector",), "embed_docs": 0}
    first = run_bench(config(beir, work, **quick)).sizes[0]
    assert not first.build.reused
    assert run_bench(config(beir, work, **quick)).sizes[0].build.reused
    # This version would build it with other parameters: the saved one is not measured.
    monkeypatch.setattr(vector_ivf, "CANDIDATES_FACTOR", 7)
    rebuilt = run_bench(config(beir, work, **quick)).sizes[0]
    assert not rebuilt.build.reused
    meta = json.loads((work / "n-300" / "vectors-ivf" / "index.json").read_text())
    assert meta["parameters"]["candidates_factor"] == 7


def test_bench_rejects_bad_options(beir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    bad_size = runner.invoke(main, ["bench", str(beir), "--sizes", "lots", "--model", "fake"])
    assert bad_size.exit_code != 0
    assert "invalid size 'lots'" in bad_size.output
    bad_model = runner.invoke(
        main, ["bench", str(beir), "--sizes", "10", "--model", "nope", "--work-dir", str(tmp_path)]
    )
    assert bad_model.exit_code != 0
    assert "unknown model 'nope'" in bad_model.output
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = runner.invoke(
        main, ["bench", str(empty), "--model", "fake", "--work-dir", str(tmp_path)]
    )
    assert missing.exit_code != 0
    assert "jsonl: missing (a BEIR folder has" in missing.output


@pytest.fixture
def bench_server(pg_server: PgServer) -> Iterator[PgServer]:
    """The session's server; the bench databases the test made on it are dropped after."""
    import psycopg

    yield pg_server
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'paperfeed_bench_%'"
            )
        ]
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_bench_on_postgresql(beir: Path, tmp_path: Path, bench_server: PgServer) -> None:
    import psycopg

    work = tmp_path / "work"
    report = run_bench(
        config(beir, work, sizes=(2000,), index_kind="hnsw", database_url=bench_server.admin_url)
    )
    data = json.loads(json.dumps(report.to_json()))  # plain JSON types only
    check_report_sanity(data, [2000])
    assert data["backend"] == "postgresql"
    server = data["server"]
    assert isinstance(server, dict)
    assert server["postgresql"]
    assert server["pgvector"]
    assert server["shared_buffers"]
    size = report.sizes[0]
    assert size.build.vector_kind == "pgvector hnsw"  # the graph, at any size for --index hnsw
    assert not size.build.reused
    assert size.build.store_mb > 0
    assert size.build.vectors_mb > 0
    deep = size.mode("vector-depth")
    assert deep is not None
    assert deep.recall_at_k is not None
    assert 0 <= deep.recall_at_k <= 1
    if bench_server.pid is not None:  # our own server, on this machine: its memory is seen
        assert size.memory.server_peak_mb is not None
        assert size.memory.server_peak_mb > 0
    # The corpus is in a database of its own: the papers, their keyword index, the vectors.
    url = bench_server.url_for(database_name(2000))
    with psycopg.connect(url) as conn:
        counts = conn.execute(
            "SELECT (SELECT COUNT(*) FROM papers), (SELECT COUNT(*) FROM keyword_docs), "
            "(SELECT COUNT(*) FROM paper_vectors)"
        ).fetchone()
    assert counts == (2000, 2000, 2000)

    # Again, from the command line: the database is reused, the output names the backend.
    result = CliRunner().invoke(
        main,
        [
            "bench", str(beir), "--sizes", "2000", "--model", "fake", "--index", "hnsw",
            "--mode", "vector", "--queries", "12", "--warmup", "1", "--embed-docs", "0",
            "--work-dir", str(work), "--database-url", bench_server.admin_url,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "backend: postgresql, PostgreSQL" in result.output
    assert "2,000 (reused)" in result.output
    assert "pgvector hnsw" in result.output
    assert "server peak" in result.output or bench_server.pid is None


def test_bench_database_options_are_checked(beir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    both = runner.invoke(
        main,
        [
            "bench", str(beir), "--sizes", "10", "--model", "fake", "--work-dir", str(tmp_path),
            "--database-url", "postgresql://x@127.0.0.1/db", "--embedded-postgres",
        ],
    )  # fmt: skip
    assert both.exit_code != 0
    assert "either a database URL or --embedded-postgres" in both.output
    bad = runner.invoke(
        main,
        [
            "bench", str(beir), "--sizes", "10", "--model", "fake", "--work-dir", str(tmp_path),
            "--database-url", "mysql://x@127.0.0.1/db",
        ],
    )  # fmt: skip
    assert bad.exit_code != 0
    assert "invalid database URL 'mysql://x@127.0.0.1/db'" in bad.output
