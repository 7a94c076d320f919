"""The vector index: exact, IVF and HNSW search, changes, atomic saves, refusals."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from paperfeed.errors import NotFoundError
from paperfeed.index import vector_exact, vector_graph, vector_ivf, vectors
from paperfeed.index.vector_exact import ExactIndex
from paperfeed.index.vector_graph import ProjectedIndex
from paperfeed.index.vector_hnsw import HnswIndex
from paperfeed.index.vector_ivf import IvfIndex
from paperfeed.index.vectors import (
    META_FILE,
    VectorHit,
    VectorIndexError,
    model_slug,
    open_vector_index,
)

MODEL = "test/model"
DIM = 32
APPROXIMATE = ["ivf", "hnsw"]
LIBRARY = {"exact": "numpy", "ivf": "faiss", "hnsw": "usearch"}


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered(rng: np.random.Generator, n: int, dim: int, clusters: int = 64) -> np.ndarray:
    """Clusters spread along a few directions each, plus a little noise everywhere: text
    embeddings have such a low intrinsic dimension, which is what graph search relies on."""
    shape = np.random.default_rng(7)  # the same clusters for corpus and queries
    centers = shape.standard_normal((clusters, dim)).astype(np.float32)
    spread = shape.standard_normal((clusters, 12, dim)).astype(np.float32) * (2 / np.sqrt(dim))
    pick = rng.integers(0, clusters, n)
    z = rng.standard_normal((n, 12), dtype=np.float32)
    x = centers[pick] + np.einsum("ns,nsd->nd", z, spread[pick])
    x += 0.1 * rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute(keys: np.ndarray, x: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    scores = x.astype(np.float64) @ q.astype(np.float64)
    return [int(keys[i]) for i in np.lexsort((keys, -scores))[:k]]


def top_keys(found: list[VectorHit]) -> list[int]:
    return [h.key for h in found]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


# --- exact search ----------------------------------------------------------------------------


def test_exact_search_matches_numpy(tmp_path: Path, rng: np.random.Generator) -> None:
    index = ExactIndex.create(tmp_path / "v", model_id=MODEL, dim=DIM)
    keys = rng.permutation(10_000)[:800].astype(np.int64)
    x = unit(rng, 800)
    index.add(keys, x)
    for q in unit(rng, 20):
        found = index.search(q, 10)
        assert top_keys(found) == brute(keys, x, q, 10)
        expected = sorted((float(x[list(keys).index(h.key)] @ q) for h in found), reverse=True)
        assert [h.score for h in found] == pytest.approx(expected, abs=1e-5)
    batch = index.search_batch(unit(rng, 5), 7)
    assert [len(b) for b in batch] == [7] * 5
    assert len(index.search(x[0], 5000)) == 800  # k beyond the size: everything, ranked


def test_ties_are_broken_by_key(tmp_path: Path, rng: np.random.Generator) -> None:
    same = unit(rng, 1)[0]
    others = unit(rng, 300)
    for index in (
        ExactIndex.create(tmp_path / "e", model_id=MODEL, dim=DIM),
        IvfIndex.create(tmp_path / "i", model_id=MODEL, dim=DIM, build_threshold=0),
        HnswIndex.create(tmp_path / "h", model_id=MODEL, dim=DIM, build_threshold=0),
    ):
        index.add(np.arange(1000, 1300), others)
        index.add(np.array([907, 3, 55, 12]), np.tile(same, (4, 1)))
        for _ in range(2):  # before the save (no graph yet) and after (graph)
            found = index.search(same, 3)
            assert top_keys(found) == [3, 12, 55]
            assert found[0].score == found[1].score == found[2].score
            assert found[0].score == pytest.approx(1.0, abs=1e-3)
            index.save()


def test_add_replace_remove(tmp_path: Path, rng: np.random.Generator) -> None:
    index = ExactIndex.create(tmp_path / "v", model_id=MODEL, dim=DIM)
    x = unit(rng, 4)
    index.add([1, 2, 3], x[:3])
    assert len(index) == 3
    assert 2 in index
    assert 4 not in index
    index.add([2], x[3:4])  # replaces key 2
    assert len(index) == 3
    np.testing.assert_allclose(index.get([2])[0], x[3], atol=1e-6)
    assert top_keys(index.search(x[3], 1)) == [2]
    assert top_keys(index.search(x[1], 3)).count(2) == 1
    assert index.remove([1, 99]) == 1
    assert len(index) == 2
    assert 1 not in index
    assert 1 not in top_keys(index.search(x[0], 3))
    assert list(index.keys()) == [2, 3]
    with pytest.raises(NotFoundError, match=r"\[1\]"):
        index.get([1])
    index.add([7, 7], x[:2])  # a key repeated in one call: the last vector wins
    np.testing.assert_allclose(index.get([7])[0], x[1], atol=1e-6)
    index.add([8], x[:1] * 5.0)  # stored normalized: cosine stays a dot product
    np.testing.assert_allclose(np.linalg.norm(index.get([8])[0]), 1.0, atol=1e-6)


def test_bad_input_is_a_clear_error(tmp_path: Path, rng: np.random.Generator) -> None:
    index = ExactIndex.create(tmp_path / "v", model_id=MODEL, dim=DIM)
    with pytest.raises(VectorIndexError, match=r"shape \(n, 32\)"):
        index.add([1], unit(rng, 1, dim=8))
    with pytest.raises(VectorIndexError, match="2 keys but 1 vectors"):
        index.add([1, 2], unit(rng, 1))
    with pytest.raises(VectorIndexError, match="NaN"):
        index.add([1], np.full((1, DIM), np.nan))
    with pytest.raises(VectorIndexError, match="zero"):
        index.add([1], np.zeros((1, DIM)))
    with pytest.raises(VectorIndexError, match="integers"):
        index.add(np.array([1.5]), unit(rng, 1))
    with pytest.raises(VectorIndexError, match="must be numbers"):
        index.search(["not", "a", "vector"], 3)
    with pytest.raises(VectorIndexError, match="k must be"):
        index.search(unit(rng, 1)[0], 0)
    assert index.search(unit(rng, 1)[0], 3) == []


def test_allowed_keys_filter(tmp_path: Path, rng: np.random.Generator) -> None:
    keys = np.arange(2000, dtype=np.int64)
    x = unit(rng, 2000)
    exact = ExactIndex.create(tmp_path / "e", model_id=MODEL, dim=DIM)
    exact.add(keys, x)
    small = np.array([5, 17, 999, 1500, 4242])  # 4242 is not in the index
    large = keys[keys % 3 != 0]
    for q in unit(rng, 5):
        found = exact.search(q, 3, allowed=small)
        assert top_keys(found) == brute(small[:4], x[small[:4]], q, 3)
        assert top_keys(exact.search(q, 10, allowed=large)) == brute(large, x[large], q, 10)
    assert exact.search(x[0], 3, allowed=np.array([], dtype=np.int64)) == []


# --- files -----------------------------------------------------------------------------------


def test_save_and_reopen_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    x = unit(rng, 600)
    queries = unit(rng, 5)
    for kind in ("exact", *APPROXIMATE):
        path = tmp_path / kind
        index = open_vector_index(path, model_id=MODEL, dim=DIM, kind=kind)
        index.add(np.arange(600), x)
        index.remove([10, 20])
        index.save()
        # Searched after the save: saving may build the graph, and the graph is approximate.
        before = [index.search(q, 10) for q in queries]
        again = open_vector_index(path, model_id=MODEL, dim=DIM)
        assert type(again) is type(index)
        assert len(again) == 598
        assert [again.search(q, 10) for q in queries] == before
        tolerance = 1e-6 if kind == "exact" else 1e-3  # approximate kinds store float16
        np.testing.assert_allclose(again.get([0, 599]), x[[0, 599]], atol=tolerance)
        meta = json.loads((path / META_FILE).read_text())
        assert meta["kind"] == kind
        assert meta["model_id"] == MODEL
        assert meta["dim"] == DIM
        assert meta["count"] == 598
        assert meta["metric"] == "cosine"
        assert meta["library"]["name"] == LIBRARY[kind]
        assert meta["created"]
        assert meta["updated"]


def test_another_model_is_refused(tmp_path: Path, rng: np.random.Generator) -> None:
    index = open_vector_index(tmp_path, model_id=MODEL, dim=DIM)
    index.add([1], unit(rng, 1))
    index.save()
    with pytest.raises(VectorIndexError, match="other/model"):
        open_vector_index(tmp_path, model_id="other/model", dim=DIM)
    with pytest.raises(VectorIndexError, match="dimension 64"):
        open_vector_index(tmp_path, model_id=MODEL, dim=64)
    with pytest.raises(VectorIndexError, match="of kind 'ivf', not 'exact'"):
        open_vector_index(tmp_path, model_id=MODEL, dim=DIM, kind="exact")
    assert model_slug("sentence-transformers/all-MiniLM-L6-v2") == (
        "sentence-transformers-all-MiniLM-L6-v2"
    )


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated", "other-json", "missing-file", "short-keys"],
)
def test_damaged_index_is_reported(tmp_path: Path, rng: np.random.Generator, damage: str) -> None:
    index = open_vector_index(tmp_path, model_id=MODEL, dim=DIM, kind="exact")
    index.add(np.arange(50), unit(rng, 50))
    index.save()
    meta_path = tmp_path / META_FILE
    meta = json.loads(meta_path.read_text())
    if damage == "garbage":
        meta_path.write_bytes(b"\x00\xffnot json")
    elif damage == "truncated":
        meta_path.write_text(meta_path.read_text()[:40])
    elif damage == "other-json":
        meta_path.write_text(json.dumps({"format": "something else"}))
    elif damage == "missing-file":
        (tmp_path / meta["segments"][0]["file"]).unlink()
    else:
        np.save(tmp_path / meta["files"]["keys"], np.arange(3))
    with pytest.raises(VectorIndexError, match="paperfeed index"):
        open_vector_index(tmp_path, model_id=MODEL, dim=DIM)


def test_no_index_yet(tmp_path: Path) -> None:
    index = open_vector_index(tmp_path / "new", model_id=MODEL, dim=DIM)
    assert len(index) == 0
    assert not (tmp_path / "new").exists()
    with pytest.raises(VectorIndexError, match="no vector index"):
        ExactIndex.open(tmp_path / "new", model_id=MODEL, dim=DIM)


@pytest.mark.parametrize("kind", APPROXIMATE)
@pytest.mark.parametrize("crash_at", ["vectors", "keys", "graph", META_FILE])
def test_crash_during_save_keeps_previous_index(
    tmp_path: Path,
    rng: np.random.Generator,
    monkeypatch: pytest.MonkeyPatch,
    crash_at: str,
    kind: vectors.Kind,
) -> None:
    x = unit(rng, 400)
    index = open_vector_index(tmp_path, model_id=MODEL, dim=DIM, kind=kind)
    index.add(np.arange(300), x[:300])
    index.save()
    expected = index.search(x[0], 5)
    index.add(np.arange(300, 400), x[300:])
    index.remove(np.arange(0, 150))  # enough to force a compaction and a graph update

    real_replace = os.replace

    def crashing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst).name.startswith(crash_at):
            raise OSError("simulated crash")
        real_replace(src, dst)

    monkeypatch.setattr(vector_exact.os, "replace", crashing_replace)
    with pytest.raises(OSError, match="simulated crash"):
        index.save()
    monkeypatch.setattr(vector_exact.os, "replace", real_replace)

    survivor = open_vector_index(tmp_path, model_id=MODEL, dim=DIM)
    assert len(survivor) == 300
    assert survivor.search(x[0], 5) == expected
    survivor.add(np.arange(300, 400), x[300:])
    survivor.save()  # the next save works and clears the leftovers
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp.")]
    assert len(open_vector_index(tmp_path, model_id=MODEL, dim=DIM)) == 400


def test_two_writers_do_not_overwrite_each_other(tmp_path: Path, rng: np.random.Generator) -> None:
    first = open_vector_index(tmp_path, model_id=MODEL, dim=DIM, kind="exact")
    first.add([1], unit(rng, 1))
    first.save()
    a = open_vector_index(tmp_path, model_id=MODEL, dim=DIM)
    b = open_vector_index(tmp_path, model_id=MODEL, dim=DIM)
    a.add([2], unit(rng, 1))
    a.save()
    b.add([3], unit(rng, 1))
    with pytest.raises(VectorIndexError, match="changed by another writer"):
        b.save()
    assert list(open_vector_index(tmp_path, model_id=MODEL, dim=DIM).keys()) == [1, 2]


def test_segments_stay_few_and_deletes_are_compacted(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    index = open_vector_index(tmp_path, model_id=MODEL, dim=DIM, kind="exact")
    x = unit(rng, 640)
    for i in range(64):  # 64 saves of 10 rows: a binary counter keeps one segment
        index.add(np.arange(i * 10, i * 10 + 10), x[i * 10 : i * 10 + 10])
        index.save()
        assert len(index.meta.segments) <= 7
    assert len(index.meta.segments) == 1
    index.remove(np.arange(0, 640, 2))
    index.save()
    assert index.meta.rows == index.meta.count == 320
    assert "dead" not in index.meta.files
    assert top_keys(index.search(x[1], 1)) == [1]
    files = {p.name for p in tmp_path.iterdir()}
    assert files == {META_FILE, ".lock", *index.meta.files.values()} | {
        s.file for s in index.meta.segments
    }


# --- the approximate index -------------------------------------------------------------------


@pytest.mark.slow  # ~5 s of graph building on an idle 2-core machine, 20 s when shared
@pytest.mark.parametrize("kind", APPROXIMATE)
def test_approximate_recall_against_exact(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch, kind: vectors.Kind
) -> None:
    # The graph keeps the top 24 of 64 principal directions (128 of 384 in production):
    # the same path at a fraction of the build time.
    monkeypatch.setattr(vector_graph, "GRAPH_DIM", 24)
    dim, n = 64, 20_000
    x = clustered(rng, n, dim)
    queries = clustered(rng, 200, dim)
    keys = np.arange(n, dtype=np.int64) * 3 + 1
    index = open_vector_index(tmp_path, model_id=MODEL, dim=dim, kind=kind)
    index.add(keys, x)
    index.save()
    assert isinstance(index, ProjectedIndex)
    assert index.kind == kind
    assert index.has_graph
    assert index.meta.files["projection"]
    reopened = open_vector_index(tmp_path, model_id=MODEL, dim=dim)
    truth = [set(brute(keys, x, q, 10)) for q in queries]
    found = [set(top_keys(reopened.search(q, 10))) for q in queries]
    recall = np.mean([len(f & t) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.95
    batch = reopened.search_batch(queries[:20], 10)
    assert [set(top_keys(b)) for b in batch] == found[:20]

    # A filter that keeps a third of the keys goes through the graph with over-fetching.
    allowed = keys[keys % 2 == 0]
    for q in queries[:20]:
        hits = reopened.search(q, 10, allowed=allowed)
        assert len(hits) == 10
        assert {h.key for h in hits} <= set(allowed.tolist())


@pytest.mark.parametrize("kind", APPROXIMATE)
def test_approximate_incremental_changes(
    tmp_path: Path, rng: np.random.Generator, kind: vectors.Kind
) -> None:
    x = unit(rng, 1200)
    index = open_vector_index(tmp_path, model_id=MODEL, dim=DIM, kind=kind)
    assert isinstance(index, ProjectedIndex)
    index.add(np.arange(1000), x[:1000])
    index.save()
    assert index.has_graph
    assert index.meta.state["graph_size"] == 1000

    index.add(np.arange(1000, 1200), x[1000:])  # delta rows: searched exactly
    index.remove([5])
    index.add([7], x[1100:1101])  # key 7 now has another vector
    checks = [
        (x[1150], 1150),  # a new key is found before any save
        (x[1100], 7),  # and a replaced one by its new vector
    ]
    for q, key in checks:
        assert top_keys(index.search(q, 2))[0] in (key, 1100)
        assert key in top_keys(index.search(q, 2))
    assert 5 not in top_keys(index.search(x[5], 10))

    index.save()  # small delta: the graph is kept, the stale keys are written beside it
    assert index.meta.state["graph_size"] == 1000
    assert "stale" in index.meta.files
    again = open_vector_index(tmp_path, model_id=MODEL, dim=DIM)
    assert 5 not in top_keys(again.search(x[5], 10))
    assert 7 in top_keys(again.search(x[1100], 2))

    assert type(again) is type(index)
    index.remove(np.arange(0, 400))  # past a quarter: compaction, and the graph follows
    index.save()
    assert index.meta.rows == index.meta.count == len(index) == 800
    assert index.meta.state["graph_rows"] == 800
    assert "stale" not in index.meta.files
    assert not set(top_keys(index.search(x[10], 20))) & set(range(400))
    assert 1150 in top_keys(index.search(x[1150], 1))


@pytest.mark.parametrize("kind", APPROXIMATE)
def test_approximate_edge_sizes(
    tmp_path: Path, rng: np.random.Generator, kind: vectors.Kind
) -> None:
    # Fewer vectors than principal directions kept: the graph keeps every dimension.
    few = unit(rng, 20, dim=200)
    index = open_vector_index(tmp_path, model_id=MODEL, dim=200, kind=kind)
    index.add(np.arange(20), few)
    index.save()
    assert "projection" not in index.meta.files
    assert top_keys(open_vector_index(tmp_path, model_id=MODEL, dim=200).search(few[4], 1)) == [4]
    # Everything deleted: the graph goes, and the index still opens and answers.
    index.remove(np.arange(20))
    index.save()
    assert "graph" not in index.meta.files
    assert open_vector_index(tmp_path, model_id=MODEL, dim=200).search(few[4], 1) == []


def test_auto_index_builds_its_graph_past_the_threshold(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vectors, "AUTO_EXACT_LIMIT", 500)
    x = unit(rng, 800)
    index = open_vector_index(tmp_path, model_id=MODEL, dim=DIM)
    assert isinstance(index, IvfIndex)
    index.add(np.arange(400), x[:400])
    index.save()
    assert not index.has_graph
    assert "graph" not in index.meta.files
    exact_answer = index.search(x[3], 5)
    assert exact_answer[0].key == 3
    index.add(np.arange(400, 800), x[400:])
    index.save()
    assert index.has_graph
    assert index.meta.state["graph_size"] == 800
    assert index.meta.parameters["build_threshold"] == 500
    assert open_vector_index(tmp_path, model_id=MODEL, dim=DIM).search(x[3], 1)[0].key == 3


@pytest.mark.parametrize("kind", APPROXIMATE)
def test_searches_from_many_threads_agree(
    tmp_path: Path, rng: np.random.Generator, kind: vectors.Kind
) -> None:
    x = unit(rng, 3000)
    index = open_vector_index(tmp_path, model_id=MODEL, dim=DIM, kind=kind)
    index.add(np.arange(3000), x)
    index.save()
    queries = unit(rng, 64)
    serial = [index.search(q, 10) for q in queries]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(lambda q: index.search(q, 10), queries))
    assert parallel == serial


@pytest.mark.slow  # two k-means runs over 20,000 vectors
def test_ivf_reads_a_share_of_its_lists_and_redraws_them_as_the_corpus_grows(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vector_graph, "GRAPH_DIM", 24)
    # Smaller than in production, so that a corpus this small reads only some of its
    # lists and syncs before it outgrows them.
    monkeypatch.setattr(vector_ivf, "SCAN_ROWS", 2_000)
    monkeypatch.setattr(vector_graph, "SYNC_ROWS", 1_000)
    dim = 64
    x = clustered(rng, 20_000, dim)
    queries = clustered(rng, 100, dim)
    index = open_vector_index(tmp_path, model_id=MODEL, dim=dim, kind="ivf")
    assert isinstance(index, IvfIndex)
    index.add(np.arange(5_000), x[:5_000])
    index.save()
    lists = vector_ivf.ivf_lists(5_000)
    assert index.meta.state["graph_lists"] == lists == 128
    assert index.probes == index.meta.state["graph_probes"] == vector_ivf.ivf_probes(lists, 5_000)
    assert index.probes < lists

    # Reading an eighth of the lists still finds most of the true neighbours: the cells
    # follow the clusters.
    index.probes = lists // 8
    truth = [set(brute(np.arange(5_000), x[:5_000], q, 10)) for q in queries]
    found = [set(top_keys(index.search(q, 10))) for q in queries]
    assert np.mean([len(f & t) / 10 for f, t in zip(found, truth, strict=True)]) >= 0.8
    one_list = index.probes = 1
    assert index.probes == one_list
    fewer = [set(top_keys(index.search(q, 10))) for q in queries]
    assert all(len(f) == 10 for f in fewer)
    assert np.mean([len(f & t) / 10 for f, t in zip(fewer, truth, strict=True)]) < 0.95

    # A process's own probes survive a save; a sync (before the corpus outgrows the
    # cells) keeps them and reads as many codes as before: more rows per list, fewer lists.
    index.probes = 20
    index.add(np.arange(5_000, 7_000), x[5_000:7_000])
    index.save()
    assert index.meta.state["graph_lists"] == lists
    assert index.meta.state["graph_size"] == 7_000
    assert index.meta.state["graph_probes"] == vector_ivf.ivf_probes(lists, 7_000)
    assert vector_ivf.ivf_probes(lists, 7_000) < vector_ivf.ivf_probes(lists, 5_000)
    assert index.probes == 20
    assert open_vector_index(tmp_path, model_id=MODEL, dim=dim).probes == (
        vector_ivf.ivf_probes(lists, 7_000)
    )

    # A list too short for the answer asked: every row, exactly, rather than fewer hits.
    whole = index.search(queries[0], 4_000)
    assert len(whole) == 4_000
    assert top_keys(whole[:10]) == brute(np.arange(7_000), x[:7_000], queries[0], 10)
    index.probes = 20

    # Fourfold: twice the lists are wanted, and the cells are drawn again.
    index.add(np.arange(7_000, 20_000), x[7_000:])
    index.save()
    assert index.meta.state["graph_lists"] == vector_ivf.ivf_lists(20_000) >= 2 * lists
    assert index.meta.state["graph_size"] == 20_000
    again = open_vector_index(tmp_path, model_id=MODEL, dim=dim)
    assert 12_345 in top_keys(again.search(x[12_345], 3))


def test_damaged_ivf_file_is_reported(tmp_path: Path, rng: np.random.Generator) -> None:
    index = open_vector_index(tmp_path, model_id=MODEL, dim=DIM, kind="ivf")
    index.add(np.arange(600), unit(rng, 600))
    index.save()
    graph = tmp_path / index.meta.files["graph"]
    graph.write_bytes(graph.read_bytes()[:100])
    with pytest.raises(VectorIndexError, match="paperfeed index"):
        open_vector_index(tmp_path, model_id=MODEL, dim=DIM)
