"""Export a sentence-transformers model to ONNX, in one of two precisions.

- ``int8``, the fast encoder (``minilm-fast``): ONNX Runtime's dynamic quantization turns
  the MatMul weights into per-channel int8. MatMul only, because quantizing the embedding
  Gather and the attention inputs costs accuracy for little speed. Its vectors differ
  slightly from the original's, so they get a model id of their own.
- ``fp32``, the query encoder of a torch model: the same weights and the same vectors
  (cosine 1.0 to the original, checked after export), so it keeps the original's model id
  and answers queries against vectors torch made. ONNX Runtime runs one short query in
  half the time torch does (8.7 vs 19.2 ms here, one thread).

The transformer is exported with plain ``torch.onnx.export`` (the TorchScript exporter:
the torch.export one needs onnxscript, and ``optimum`` conflicts with sentence-transformers
6). Pooling (mean) and normalization run in numpy at encode time.

The graph starts after the word-embedding lookup: its input is the token vectors, which
the encoder reads from ``word_embeddings.npy`` a few rows at a time (``pread``, nothing
mapped). The table is half of MiniLM's weights (30,522 × 384 floats, 47 MB); inside the
graph, ONNX Runtime would hold all of it in every process that embeds a query, to look up
the twenty-odd rows a query uses.

The export directory holds ``model.onnx``, ``word_embeddings.npy``, the model's
``tokenizer.json`` and ``export.json`` (source model, opset, quantization, library
versions, the sha256 of each file, and the cosine similarity to the torch model measured
right after export). It is built in a temporary directory beside the target and renamed
into place, so a reader sees a whole export or none.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from paperfeed.index.encoder import (
    INPUT_NAME,
    EncoderError,
    OnnxEncoder,
    load_sentence_transformer,
    require_module,
)

ONNX_FILE = "model.onnx"
EMBEDDINGS_FILE = "word_embeddings.npy"
TOKENIZER_FILE = "tokenizer.json"
METADATA_FILE = "export.json"
# 2: the word embeddings moved out of the graph into EMBEDDINGS_FILE.
EXPORT_FORMAT = 2
OPSET = 17
INT8 = "int8"
FP32 = "fp32"
PRECISIONS = (INT8, FP32)
QUANTIZATION: dict[str, Any] = {
    "method": "onnxruntime.quantization.quantize_dynamic",
    "preprocess": "quant_pre_process(skip_symbolic_shape=True)",
    "weight_type": "QInt8",
    "per_channel": True,
    "op_types": ["MatMul"],
}
NO_QUANTIZATION: dict[str, Any] = {"method": "none"}
MIN_MEAN_COSINE = 0.97
"""An int8 export whose vectors are further than this from the torch model's is refused."""
MIN_FP32_COSINE = 0.9999
"""An fp32 export shares the torch model's id, so every validation text must match it."""

_VERSIONED = (
    "torch",
    "onnx",
    "onnxruntime",
    "transformers",
    "sentence-transformers",
    "tokenizers",
    "paperfeed",
)

# Checked after every export: short queries, titles, and one text longer than the
# 256-token limit so that truncation is exercised too.
_VALIDATION_TEXTS = (
    "text-to-image personalization",
    "protein folding",
    "Does vitamin D supplementation reduce the risk of fractures in older adults?",
    "Attention Is All You Need. The dominant sequence transduction models are based on "
    "complex recurrent or convolutional neural networks that include an encoder and a "
    "decoder. We propose a new simple network architecture, the Transformer, based solely "
    "on attention mechanisms, dispensing with recurrence and convolutions entirely.",
    "Microstructural development of human newborn cerebral white matter assessed in vivo "
    "by diffusion tensor magnetic resonance imaging.",
    "Graph neural networks for molecular property prediction with limited labelled data.",
    " ".join(["Quantum error correction with surface codes and lattice surgery."] * 40),
)


@dataclass(frozen=True, slots=True)
class ExportMetadata:
    """The contents of ``export.json``."""

    model_id: str
    source_model: str
    dim: int
    max_seq_length: int
    opset: int
    quantization: dict[str, Any]
    files: dict[str, str]
    versions: dict[str, str]
    created_at: str
    validation: dict[str, float] = field(default_factory=dict)
    format: int = EXPORT_FORMAT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportMetadata:
        return cls(
            model_id=str(data["model_id"]),
            source_model=str(data["source_model"]),
            dim=int(data["dim"]),
            max_seq_length=int(data["max_seq_length"]),
            opset=int(data["opset"]),
            quantization=dict(data["quantization"]),
            files={str(k): str(v) for k, v in dict(data["files"]).items()},
            versions={str(k): str(v) for k, v in dict(data["versions"]).items()},
            created_at=str(data["created_at"]),
            validation={str(k): float(v) for k, v in dict(data.get("validation", {})).items()},
            format=int(data["format"]),
        )


def fast_model_id(source_model: str) -> str:
    """The model id of the int8 export of ``source_model``: its vectors differ slightly."""
    return f"{source_model}+onnx-int8"


def load_export(export_dir: Path) -> ExportMetadata:
    """Read and check an export: metadata readable, every file present with its sha256."""
    meta_path = export_dir / METADATA_FILE
    fix = f"delete {export_dir} to export it again"
    try:
        meta = ExportMetadata.from_json(json.loads(meta_path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise EncoderError(f"no ONNX export in {export_dir} ({METADATA_FILE} missing)") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EncoderError(f"unreadable {meta_path}: {exc}; {fix}") from exc
    if meta.format != EXPORT_FORMAT:
        raise EncoderError(f"{meta_path} has export format {meta.format}; {fix}")
    for name, digest in meta.files.items():
        path = export_dir / name
        if not path.is_file() or _sha256(path) != digest:
            raise EncoderError(f"{path} is missing or changed since export; {fix}")
    return meta


def _quantization(precision: str) -> dict[str, Any]:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    return QUANTIZATION if precision == INT8 else NO_QUANTIZATION


def export_model_id(source_model: str, precision: str) -> str:
    """The id of the vectors an export makes: the source's own when they are the same."""
    return fast_model_id(source_model) if precision == INT8 else source_model


def export_is_current(export_dir: Path, *, source_model: str, precision: str = INT8) -> bool:
    """Whether ``export_dir`` holds an intact export of ``source_model`` made this way."""
    try:
        meta = load_export(export_dir)
    except EncoderError:
        return False
    return export_matches(meta, source_model=source_model, precision=precision)


def export_matches(meta: ExportMetadata, *, source_model: str, precision: str) -> bool:
    """Whether an intact export's metadata says it is ``source_model`` made this way."""
    return (
        meta.source_model == source_model
        and meta.model_id == export_model_id(source_model, precision)
        and meta.opset == OPSET
        and meta.quantization == _quantization(precision)
        and {ONNX_FILE, EMBEDDINGS_FILE, TOKENIZER_FILE} <= meta.files.keys()
    )


def export_onnx_int8(source_dir: Path, export_dir: Path, *, source_model: str) -> ExportMetadata:
    """The int8 export (``minilm-fast``): see :func:`export_onnx`."""
    return export_onnx(source_dir, export_dir, source_model=source_model, precision=INT8)


def export_onnx(
    source_dir: Path,
    export_dir: Path,
    *,
    source_model: str,
    precision: str,
    model: Any = None,
) -> ExportMetadata:
    """Export the model in ``source_dir`` to ``export_dir`` (replaced whole if present).

    ``source_model`` is the id of the source model; the export's own id is
    :func:`export_model_id` of it. ``model`` is the already loaded SentenceTransformer of
    ``source_dir``, if the caller has one. Took 17–25 s here for int8 (2 cores, other jobs
    running), about 10 s for fp32.
    """
    quantization_settings = _quantization(precision)
    torch: Any = require_module("torch", "the ONNX export")
    if model is None:
        model = load_sentence_transformer(source_dir)
    _check_pooling(model, source_dir)
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{export_dir.name}.", dir=export_dir.parent))
    try:
        if precision == INT8:
            _export_int8(torch, model, tmp)
        else:
            _export_fp32(torch, model, tmp / ONNX_FILE)
        _save_word_embeddings(model, tmp / EMBEDDINGS_FILE)
        _save_tokenizer(model, source_dir, tmp / TOKENIZER_FILE)
        meta = ExportMetadata(
            model_id=export_model_id(source_model, precision),
            source_model=source_model,
            dim=int(model.get_embedding_dimension()),
            max_seq_length=int(model.max_seq_length),
            opset=OPSET,
            quantization=dict(quantization_settings),
            files={
                name: _sha256(tmp / name) for name in (ONNX_FILE, EMBEDDINGS_FILE, TOKENIZER_FILE)
            },
            versions=_versions(),
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        _write_json(tmp / METADATA_FILE, meta.to_json())
        meta = _validated(model, tmp, meta, precision)
        _write_json(tmp / METADATA_FILE, meta.to_json())
        _publish(tmp, export_dir)
    except (RuntimeError, ValueError, OSError) as exc:
        raise EncoderError(
            f"exporting {source_model} to ONNX failed: {exc}; use the torch encoder instead"
        ) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def _export_int8(torch: Any, model: Any, tmp: Path) -> None:
    quantization: Any = require_module("onnxruntime.quantization", "the ONNX export")
    fp32, prepared = tmp / "model.fp32.onnx", tmp / "model.prepared.onnx"
    _export_fp32(torch, model, fp32)
    # ONNX Runtime's recommended preparation (graph optimization, shape inference)
    # before quantizing: the same vectors, and 64 instead of 72 CPU ms per abstract.
    # Symbolic shape inference gives up on this graph; ONNX's own is enough.
    shape_inference: Any = require_module(
        "onnxruntime.quantization.shape_inference", "the ONNX export"
    )
    shape_inference.quant_pre_process(fp32, prepared, skip_symbolic_shape=True)
    quantization.quantize_dynamic(
        prepared,
        tmp / ONNX_FILE,
        op_types_to_quantize=QUANTIZATION["op_types"],
        per_channel=QUANTIZATION["per_channel"],
        weight_type=quantization.QuantType.QInt8,
    )
    fp32.unlink()
    prepared.unlink()


def _check_pooling(model: Any, source_dir: Path) -> None:
    """Only Transformer → mean Pooling → (Normalize) is reproduced outside torch."""
    kinds = [type(module).__name__ for module in model]
    pooling = model[1].get_config_dict() if len(kinds) > 1 else {}
    mode = pooling.get("pooling_mode")
    mean = mode == "mean" or (mode is None and pooling.get("pooling_mode_mean_tokens"))
    if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]) or not mean:
        raise EncoderError(
            f"{source_dir}: only transformer + mean pooling models can be exported to ONNX "
            f"(this one is {' → '.join(kinds)}, pooling {mode}); use it with the torch encoder"
        )


def _export_fp32(torch: Any, model: Any, path: Path) -> None:
    transformer = model[0].auto_model.eval()
    lookup = transformer.get_input_embeddings()
    # Two texts of different lengths, so that the traced graph handles padding: traced
    # with no padding, the attention mask could be folded away as a constant.
    features = model.preprocess(["a short text", "a somewhat longer text that needs more tokens"])
    names = [n for n in ("attention_mask", "token_type_ids") if n in features]

    class LastHiddenState(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.inner = transformer

        def forward(self, inputs_embeds: Any, *inputs: Any) -> Any:
            others = dict(zip(names, inputs, strict=True))
            return self.inner(inputs_embeds=inputs_embeds, **others).last_hidden_state

    inputs = [INPUT_NAME, *names]
    axes = {n: {0: "batch", 1: "sequence"} for n in [*inputs, "last_hidden_state"]}
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter warns that it is legacy and that traced shapes may be
        # constants; the dynamic axes above and the validation after export cover both.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHiddenState(),
            (lookup(features["input_ids"]), *(features[n] for n in names)),
            str(path),
            input_names=inputs,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def _save_word_embeddings(model: Any, path: Path) -> None:
    table = model[0].auto_model.get_input_embeddings().weight.detach().cpu().numpy()
    np.save(path, np.ascontiguousarray(table, dtype=np.float32))


def _save_tokenizer(model: Any, source_dir: Path, path: Path) -> None:
    shipped = source_dir / TOKENIZER_FILE
    if shipped.is_file():
        shutil.copyfile(shipped, path)
        return
    backend = getattr(model.tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise EncoderError(f"{source_dir} has no fast tokenizer (tokenizer.json) to export")
    backend.save(str(path))


def _validated(
    model: Any, export_dir: Path, meta: ExportMetadata, precision: str
) -> ExportMetadata:
    texts = list(_VALIDATION_TEXTS)
    vectors = model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
    reference = np.asarray(vectors, dtype=np.float32)
    exported = OnnxEncoder(export_dir).encode_documents(texts)
    cosines = (reference * exported).sum(axis=1)
    mean, worst = float(cosines.mean()), float(cosines.min())
    if precision == INT8 and mean < MIN_MEAN_COSINE:
        raise EncoderError(
            f"the ONNX export of {meta.source_model} is too far from the original "
            f"(mean cosine {mean:.3f} < {MIN_MEAN_COSINE}); use the torch encoder"
        )
    if precision == FP32 and worst < MIN_FP32_COSINE:
        raise EncoderError(
            f"the fp32 ONNX export of {meta.source_model} does not reproduce its vectors "
            f"(minimum cosine {worst:.6f} < {MIN_FP32_COSINE})"
        )
    validation = {"mean_cosine": round(mean, 6), "min_cosine": round(worst, 6)}
    return ExportMetadata(**{**meta.to_json(), "validation": validation})


def _publish(tmp: Path, export_dir: Path) -> None:
    """Rename the finished export into place; an older one is moved aside, then deleted."""
    old: Path | None = None
    if export_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{export_dir.name}.old.", dir=export_dir.parent))
        os.replace(export_dir, old / "export")
    try:
        os.replace(tmp, export_dir)
    except OSError:
        # Another process published an export between our two renames; keep that one.
        if not export_dir.is_dir():
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _versions() -> dict[str, str]:
    found = {}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
