"""Encoders: the fake one's properties, batching and order, errors, the real model, ONNX."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from paperfeed.errors import PaperfeedError
from paperfeed.index.encoder import (
    DEFAULT_MODEL_ID,
    ENCODER_NAMES,
    Encoder,
    EncoderError,
    FakeEncoder,
    OnnxEncoder,
    SentenceTransformerEncoder,
    TokenVectors,
    Vectors,
    configure_threads,
    default_model_dir,
    document_text,
    get_encoder,
    model_dir_id,
    thread_settings,
)
from paperfeed.model import new_paper
from tests.conftest import SCIFACT, need_shared

TEXTS = [
    "graph neural networks for molecules",
    "a",
    "diffusion models generate images from text prompts with remarkable fidelity",
    "",
    "protein structure prediction",
    "transformers",
    "reinforcement learning from human feedback aligns language models",
]


def cosine(a: Vectors, b: Vectors) -> float:
    return float(np.dot(a, b))


# --- document text ----------------------------------------------------------------------


def test_document_text_joins_title_and_abstract() -> None:
    paper = new_paper(title="Attention Is All You Need", abstract="We propose the Transformer.")
    assert document_text(paper) == "Attention Is All You Need. We propose the Transformer."


def test_document_text_no_double_stop_and_no_abstract() -> None:
    asked = new_paper(title="Do LLMs reason?", abstract="We test it.")
    assert document_text(asked) == "Do LLMs reason? We test it."
    assert document_text(new_paper(title="Only a title")) == "Only a title"


# --- the fake encoder -------------------------------------------------------------------


def test_fake_vectors_are_unit_float32_rows() -> None:
    enc = FakeEncoder(dim=32)
    vectors = enc.encode_documents(TEXTS)
    assert vectors.shape == (len(TEXTS), 32)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert enc.similarity == "cosine"
    assert enc.model_id == "fake-hashed-ngrams-32"


def test_fake_is_deterministic_across_instances_and_processes() -> None:
    here = FakeEncoder().encode_queries(["protein folding in yeast"])
    again = FakeEncoder().encode_queries(["protein folding in yeast"])
    np.testing.assert_array_equal(here, again)
    # Python's str hash is salted per process; the fake encoder must not depend on it.
    code = (
        "from paperfeed.index.encoder import FakeEncoder; "
        "print(FakeEncoder().encode_queries(['protein folding in yeast']).tolist())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    np.testing.assert_allclose(np.asarray(json.loads(out.stdout), dtype=np.float32), here)


def test_fake_texts_sharing_words_are_closer() -> None:
    enc = FakeEncoder(dim=64)
    a, b, c = enc.encode_documents(
        [
            "deep learning for protein structure prediction",
            "protein structure prediction with deep networks",
            "monetary policy and inflation expectations in small economies",
        ]
    )
    assert cosine(a, b) > cosine(a, c) + 0.3


def test_fake_rejects_a_tiny_dimension() -> None:
    with pytest.raises(ValueError, match="dim"):
        FakeEncoder(dim=1)


# --- batching, order, progress (shared by every encoder) --------------------------------


class RecordingEncoder(FakeEncoder):
    """The fake encoder, remembering the batches it was given."""

    def __init__(self) -> None:
        super().__init__(dim=16)
        self.batches: list[list[str]] = []

    def _encode_batch(self, texts: list[str], *, query: bool) -> Vectors:
        self.batches.append(list(texts))
        return super()._encode_batch(texts, query=query)


def test_documents_come_back_in_input_order_after_length_sorting() -> None:
    enc = RecordingEncoder()
    batched = enc.encode_documents(TEXTS, batch_size=2)
    one_by_one = np.vstack([enc.encode_queries([t]) for t in TEXTS])
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-6)
    # The batches were formed longest first, not in input order.
    lengths = [len(t) for batch in enc.batches[:4] for t in batch]
    assert lengths == sorted((len(t) for t in TEXTS), reverse=True)


def test_progress_reports_every_batch() -> None:
    calls: list[tuple[int, int]] = []
    FakeEncoder().encode_documents(
        TEXTS, batch_size=3, progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(0, 7), (3, 7), (6, 7), (7, 7)]


def test_empty_input() -> None:
    calls: list[tuple[int, int]] = []
    enc = FakeEncoder(dim=8)
    out = enc.encode_documents([], progress=lambda d, t: calls.append((d, t)))
    assert out.shape == (0, 8)
    assert calls == [(0, 0)]
    assert enc.encode_queries([]).shape == (0, 8)


def test_a_bare_string_is_refused() -> None:
    with pytest.raises(TypeError, match="sequence of texts"):
        FakeEncoder().encode_queries("protein folding")
    with pytest.raises(ValueError, match="batch_size"):
        FakeEncoder().encode_documents(["x"], batch_size=0)


# --- the factory and errors -------------------------------------------------------------


def test_get_encoder_fake() -> None:
    enc = get_encoder("fake")
    assert isinstance(enc, FakeEncoder)
    assert isinstance(enc, Encoder)


def test_unknown_encoder_names_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(PaperfeedError) as info:
        get_encoder("bert-large-nonexistent")
    message = str(info.value)
    assert all(name in message for name in ENCODER_NAMES)
    assert "sentence-transformers model directory" in message
    assert "\n" not in message


def test_fast_encoder_needs_a_cache_dir() -> None:
    with pytest.raises(EncoderError, match="cache directory"):
        get_encoder("minilm-fast")


def test_a_directory_that_is_no_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="not a sentence-transformers model directory"):
        get_encoder(str(tmp_path))


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(EncoderError, match=r"pip install 'paperfeed\[semantic\]'"):
        SentenceTransformerEncoder()


def test_model_dir_id_follows_the_files(tmp_path: Path) -> None:
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text('{"hidden_size": 8}')
    (model / "model.safetensors").write_bytes(b"weights-1")
    first = model_dir_id(model)
    assert first.startswith("my-model@sha256:")
    (model / "README.md").write_text("notes")
    assert model_dir_id(model) == first
    (model / "model.safetensors").write_bytes(b"weights-2")
    assert model_dir_id(model) != first


@pytest.fixture
def _restore_threads() -> Iterator[None]:
    saved = thread_settings()
    yield
    configure_threads(saved[0], queries=saved[1])


@pytest.mark.usefixtures("_restore_threads")
def test_configure_threads() -> None:
    configure_threads(2, queries=1)
    assert thread_settings() == (2, 1)
    configure_threads(1)
    assert thread_settings() == (1, 1)
    with pytest.raises(ValueError, match="at least 1"):
        configure_threads(0)


# --- the real default model -------------------------------------------------------------


def _no_network(*args: object, **kwargs: object) -> None:
    raise OSError("network access attempted while loading a local model")


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEncoder:
    pytest.importorskip("sentence_transformers")
    # Any connection attempt while loading or encoding fails the test: offline for real.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _no_network)
        enc = get_encoder("minilm")
        enc.encode_queries(["warm up"])
    assert isinstance(enc, SentenceTransformerEncoder)
    return enc


@pytest.mark.slow
def test_default_model_loads_offline(minilm: SentenceTransformerEncoder) -> None:
    assert minilm.model_id == DEFAULT_MODEL_ID
    assert minilm.dim == 384
    assert minilm.max_seq_length == 256
    assert minilm.path == default_model_dir()


@pytest.mark.slow
def test_default_model_ranks_a_paraphrase_above_an_unrelated_text(
    minilm: SentenceTransformerEncoder,
) -> None:
    query, para, other = minilm.encode_queries(
        [
            "How do vaccines train the immune system?",
            "Immunization teaches the body's immune response to recognize pathogens.",
            "The stock market fell sharply after the interest rate announcement.",
        ]
    )
    np.testing.assert_allclose(np.linalg.norm([query, para, other], axis=1), 1.0, rtol=1e-5)
    assert cosine(query, para) > 0.5 > cosine(query, other)


@pytest.mark.slow
def test_default_model_batches_give_the_vectors_of_single_texts(
    minilm: SentenceTransformerEncoder,
) -> None:
    texts = [t for t in TEXTS if t]
    batched = minilm.encode_documents(texts, batch_size=3)
    single = np.vstack([minilm.encode_queries([t]) for t in texts])
    assert batched.dtype == np.float32
    assert float((batched * single).sum(axis=1).min()) > 0.9999


# --- the ONNX int8 export ---------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> tuple[OnnxEncoder, list[str]]:
    pytest.importorskip("onnxruntime")
    cache = tmp_path_factory.mktemp("models")
    handler = _Records()
    logger = logging.getLogger("paperfeed.index.encoder")
    logger.addHandler(handler)
    try:
        enc = get_encoder("minilm-fast", cache_dir=cache)
    finally:
        logger.removeHandler(handler)
    assert isinstance(enc, OnnxEncoder)
    return enc, handler.messages


def _scifact_abstracts(limit: int) -> list[str]:
    corpus = need_shared(SCIFACT) / "corpus.jsonl"
    texts = []
    with corpus.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            texts.append(f"{row['title']}. {row['text']}")
            if len(texts) == limit:
                break
    return texts


@pytest.mark.slow
def test_onnx_export_is_announced_and_described(fast: tuple[OnnxEncoder, list[str]]) -> None:
    enc, messages = fast
    assert any("exporting" in m and "first use" in m for m in messages)
    assert enc.model_id == f"{DEFAULT_MODEL_ID}+onnx-int8"
    assert enc.dim == 384
    meta = json.loads((enc.path / "export.json").read_text())
    assert meta["source_model"] == DEFAULT_MODEL_ID
    assert meta["quantization"]["op_types"] == ["MatMul"]
    assert meta["quantization"]["per_channel"] is True
    assert set(meta["files"]) == {"model.onnx", "word_embeddings.npy", "tokenizer.json"}
    assert meta["validation"]["mean_cosine"] >= 0.98
    assert "onnxruntime" in meta["versions"]
    # Only the finished export is left in the cache directory: no temporary folders.
    assert [p.name for p in enc.path.parent.iterdir()] == [enc.path.name]


@pytest.mark.slow
def test_word_embeddings_are_read_outside_the_graph(fast: tuple[OnnxEncoder, list[str]]) -> None:
    import onnx

    enc, _ = fast
    graph = onnx.load(str(enc.path / "model.onnx")).graph
    assert graph.input[0].name == "inputs_embeds"
    table = np.load(enc.path / "word_embeddings.npy")
    assert table.shape == (30522, 384)
    # No initializer of the graph holds the vocabulary's vectors any more.
    assert all(30522 not in init.dims for init in graph.initializer)
    tokens = TokenVectors(enc.path / "word_embeddings.npy")
    ids = [101, 7592, 7592, 2088, 30521, 0, 102]
    np.testing.assert_array_equal(tokens.rows(ids), table[ids])
    assert tokens.rows([]).shape == (0, 384)
    with pytest.raises(EncoderError, match="token id"):
        tokens.rows([30522])


@pytest.mark.slow
def test_onnx_vectors_match_torch_on_scifact_abstracts(
    fast: tuple[OnnxEncoder, list[str]], minilm: SentenceTransformerEncoder
) -> None:
    texts = _scifact_abstracts(50)
    exported = fast[0].encode_documents(texts)
    reference = minilm.encode_documents(texts)
    cosines = (exported * reference).sum(axis=1)
    assert float(cosines.mean()) >= 0.98
    assert float(cosines.min()) >= 0.95


@pytest.mark.slow
def test_onnx_vectors_do_not_depend_on_the_batch(fast: tuple[OnnxEncoder, list[str]]) -> None:
    enc = fast[0]
    texts = [t for t in TEXTS if t]
    np.testing.assert_array_equal(
        enc.encode_documents(texts, batch_size=4),
        np.vstack([enc.encode_queries([t]) for t in texts]),
    )


@pytest.mark.slow
def test_onnx_export_is_reused_and_checked(
    fast: tuple[OnnxEncoder, list[str]], tmp_path: Path
) -> None:
    enc = fast[0]
    written = (enc.path / "model.onnx").stat().st_mtime_ns
    again = get_encoder("minilm-fast", cache_dir=enc.path.parent)
    assert isinstance(again, OnnxEncoder)
    assert (again.path / "model.onnx").stat().st_mtime_ns == written
    damaged = tmp_path / "damaged"
    shutil.copytree(enc.path, damaged)
    with (damaged / "model.onnx").open("r+b") as fh:
        fh.seek(1000)
        fh.write(b"\0\0\0\0")
    with pytest.raises(EncoderError, match="delete"):
        OnnxEncoder(damaged)


# --- the fp32 ONNX query encoder ---------------------------------------------------------


@pytest.fixture(scope="module")
def query_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnxruntime")
    return tmp_path_factory.mktemp("query-models")


@pytest.mark.slow
def test_queries_run_on_an_fp32_export_with_the_torch_vectors(
    query_cache: Path, minilm: SentenceTransformerEncoder
) -> None:
    handler = _Records()
    logger = logging.getLogger("paperfeed.index.encoder")
    logger.addHandler(handler)
    try:
        enc = get_encoder("minilm", cache_dir=query_cache)
        assert isinstance(enc, SentenceTransformerEncoder)
        assert enc.query_runtime == "torch-fp32"  # no export yet: made by the first query
        queries = [t for t in TEXTS if t] + _scifact_abstracts(5)
        vectors = enc.encode_queries(queries)
    finally:
        logger.removeHandler(handler)
    assert any("exporting" in m and "for queries" in m for m in handler.messages)
    assert enc.query_runtime == "onnxruntime-fp32"
    # The same model id as torch's vectors, so the vectors must be the same too.
    assert enc.model_id == DEFAULT_MODEL_ID
    reference = minilm.encode_queries(queries)
    assert float((vectors * reference).sum(axis=1).min()) > 0.9999
    meta = json.loads((query_cache / "minilm-l6-onnx-fp32" / "export.json").read_text())
    assert meta["model_id"] == DEFAULT_MODEL_ID
    assert meta["quantization"] == {"method": "none"}
    assert meta["validation"]["min_cosine"] >= 0.9999


@pytest.mark.slow
def test_an_existing_query_export_spares_loading_torch_until_documents(
    query_cache: Path, minilm: SentenceTransformerEncoder
) -> None:
    get_encoder("minilm", cache_dir=query_cache).encode_queries(["make sure it is exported"])
    enc = get_encoder("minilm", cache_dir=query_cache)
    assert isinstance(enc, SentenceTransformerEncoder)
    assert enc.query_runtime == "onnxruntime-fp32"
    assert (enc.dim, enc.max_seq_length) == (384, 256)
    enc.encode_queries(["protein folding"])
    assert enc._model is None  # queries alone never load the torch model
    texts = _scifact_abstracts(3)
    documents = enc.encode_documents(texts)
    assert enc._model is not None
    np.testing.assert_allclose(documents, minilm.encode_documents(texts), atol=1e-6)


@pytest.mark.slow
def test_a_damaged_query_export_is_made_again(query_cache: Path, tmp_path: Path) -> None:
    get_encoder("minilm", cache_dir=query_cache).encode_queries(["make sure it is exported"])
    cache = tmp_path / "models"
    shutil.copytree(query_cache, cache)
    export = cache / "minilm-l6-onnx-fp32"
    with (export / "model.onnx").open("r+b") as fh:
        fh.seek(1000)
        original = fh.read(4)
        fh.seek(1000)
        fh.write(bytes(b ^ 0xFF for b in original))
    enc = get_encoder("minilm", cache_dir=cache)
    assert isinstance(enc, SentenceTransformerEncoder)
    assert enc.query_runtime == "torch-fp32"
    enc.encode_queries(["protein folding"])
    assert enc.query_runtime == "onnxruntime-fp32"
    assert OnnxEncoder(export).model_id == DEFAULT_MODEL_ID  # intact again
