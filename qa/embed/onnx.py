"""Document embeddings with onnxruntime: the sentence-transformers model as a fused, int8-quantised ONNX graph.

``qa index --backend onnx`` (and ``auto`` on a CPU when onnxruntime is installed) embeds documents with this
module instead of sentence-transformers' PyTorch float32: 3.96x the sentences per second of torch at its best batch
size on the 2-core CPU measured (best rounds; benchmarks/EMBED-ONNX.md), for -0.0006 MRR@10 on the SQuAD held-out
half. Questions are embedded by the same model file (:meth:`OnnxEncoder.encode_queries`, on the query-time thread
budget of :mod:`qa.threads`), so a question and a sentence of the same text get the same vector.

The ONNX file is made once per model folder, on first use, from the local model folder (nothing is downloaded):

1. ``torch.onnx.export`` of the Hugging Face ``BertModel`` with eager attention (the pattern onnxruntime fuses);
2. ``onnxruntime.transformers.optimizer`` (model type ``bert``): EmbedLayerNormalization, Attention and BiasGelu
   fusion; not SkipLayerNormalization, whose CPU kernel is slower than the Add and LayerNormalization it replaces
   (and the session is told not to fuse it back: :data:`DISABLED_OPTIMIZERS`);
3. ``onnxruntime.quantization.quantize_dynamic``: int8 weights per output channel for the MatMul and Attention
   nodes (the CPU's VNNI/AMX int8 instructions; activations quantised per batch at run time). The word embedding
   table stays float32: quantising it cost MRR on the tune half for no speed.

It is cached under ``$QA_CACHE_DIR`` (default ``$XDG_CACHE_HOME/qa`` or ``~/.cache/qa``) in ``onnx/<key>/``, the key
being the sha256 of the model folder's files, the onnxruntime version and :data:`RECIPE`; ``meta.json`` beside it
holds the file's sha256, checked at every load: a damaged file is exported again. No pickle anywhere.
Mean pooling and normalisation are done in numpy, exactly as sentence-transformers does them.

>>> enc = OnnxEncoder(resolve_model(None)[1])                 # doctest: +SKIP
>>> enc.encode(["9.8 tons of drugs seized"]).shape            # doctest: +SKIP
(1, 384)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import ModelLoadError
from ..modelfiles import _offline, resolve_model, sha256_file  # noqa: F401 (resolve_model: the doctest)
from ..threads import cores
from .bert import load_tokenizer, max_length, padded_batches, read_json, supported

# Bump when the export recipe changes: a new key, so old cached files are never used for the new recipe.
RECIPE = "bert-eager-opset17+ort-bert-fusion-no-skiplayernorm+int8-dynamic-per-channel-matmul-attention/2"
QUANTIZATION = "int8 dynamic, per-channel weights (MatMul, Attention); embeddings float32"
MODEL_FILE = "model.onnx"
META_FILE = "meta.json"
# One sentence per run by default: int8 activations are quantised per run (one scale over the whole padded batch), so
# a sentence embedded among others gets a vector that depends on them (cos 0.984-0.99 to the same sentence alone),
# and questions, embedded alone, would not match it. Alone, a sentence's vector is the question's of the same text.
# ``batch_size`` > 1 is still accepted (length-sorted batches cut at DEFAULT_TOKENS padded tokens: 512 was the
# fastest budget on the SQuAD tune half, benchmarks/EMBED-ONNX.md), faster by ~10-25% on 2 cores, for vectors that
# match the questions' to cos ~0.99 only.
DEFAULT_BATCH = 1
DEFAULT_TOKENS = 512
# onnxruntime's CPU SkipLayerNormalization kernel is several times slower than Add + LayerNormalization (1.32; a
# [16, 32, 384] micro-benchmark: 4.5-5.3 ns against 0.8 ns an element): the export does not fuse it, and the session
# must not fuse it back at load time.
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


def available() -> bool:
    """Whether onnxruntime (and onnx, needed by the first export) can be imported, without importing them."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def cache_dir() -> Path:
    """Where exported models are kept: ``$QA_CACHE_DIR``, else ``$XDG_CACHE_HOME/qa``, else ``~/.cache/qa``."""
    if os.environ.get("QA_CACHE_DIR"):
        return Path(os.environ["QA_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "qa"


def folder_sha256(folder: str | Path) -> str:
    """sha256 over a model folder's files (relative path and content of each, in sorted order).

    >>> len(folder_sha256("/nonexistent"))
    64
    """
    folder = Path(folder)
    h = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts) if folder.is_dir() else []
    for p in files:
        h.update(p.relative_to(folder).as_posix().encode() + b"\0" + sha256_file(p).encode() + b"\n")
    return h.hexdigest()


def _folder_sha256_remembered(folder: str | Path) -> str:
    """:func:`folder_sha256`, remembered in the cache folder (``onnx/folders.json``) under the folder's path and
    the size and mtime of each of its files: a cold ``qa ask`` does not read the ~90 MB model folder again to find
    its export. Any change to a file's size or mtime (or a file added or removed) hashes the folder again."""
    folder = Path(folder).resolve()
    try:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        stat = [[p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    except OSError:
        return folder_sha256(folder)
    memo_path = cache_dir() / "onnx" / "folders.json"
    memo = read_json(memo_path)
    memo = memo if isinstance(memo, dict) else {}
    hit = memo.get(str(folder))
    if isinstance(hit, dict) and hit.get("stat") == stat and isinstance(hit.get("sha256"), str):
        return hit["sha256"]
    digest = folder_sha256(folder)
    memo[str(folder)] = {"stat": stat, "sha256": digest}
    try:  # best effort, atomic: a reader sees the old file or the new one
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="folders.", suffix=".tmp", dir=memo_path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(memo, f)
        os.replace(tmp, memo_path)
    except OSError:
        pass
    return digest


def cache_key(folder: str | Path) -> str:
    import onnxruntime

    text = f"{_folder_sha256_remembered(folder)}\n{onnxruntime.__version__}\n{RECIPE}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def export(folder: str | Path, out: Path, keep: Path | None = None) -> dict:
    """Write the int8 ONNX model of the sentence-transformers BERT ``folder`` to ``out/model.onnx`` and its
    ``meta.json``; return the meta. Needs torch, transformers, onnx and onnxruntime (all local). ``keep``: a folder
    to leave the float32 steps in (``fp32.onnx``, ``fused.onnx``; benchmarks/onnx_embed.py compares them)."""
    _offline()
    import onnx
    import onnxruntime
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel

    cfg = read_json(Path(folder) / "config.json") or {}
    model = AutoModel.from_pretrained(str(folder), attn_implementation="eager", local_files_only=True).eval()

    class _Hidden(torch.nn.Module):  # last_hidden_state only: pooling is done in numpy
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]

    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = tuple(torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.int64) for _ in names)
    example = (example[0], (example[1] > 0).long(), torch.zeros_like(example[2]))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        work = str(keep) if keep is not None else tmp
        fp32, fused = os.path.join(work, "fp32.onnx"), os.path.join(work, "fused.onnx")
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Hidden(model), example, fp32, input_names=names, output_names=["last_hidden_state"],
                              dynamic_axes={k: {0: "batch", 1: "tokens"} for k in names + ["last_hidden_state"]},
                              opset_version=17, dynamo=False)
        fo = FusionOptions("bert")
        fo.enable_skip_layer_norm = fo.enable_bias_skip_layer_norm = False  # slow on the CPU: see DISABLED_OPTIMIZERS
        opt = optimize_model(fp32, model_type="bert", num_heads=int(cfg["num_attention_heads"]),
                             hidden_size=int(cfg["hidden_size"]), opt_level=1, optimization_options=fo)
        fusions = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
        opt.save_model_to_file(fused)
        import logging

        logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # "consider pre-processing"
        quantize_dynamic(fused, out / MODEL_FILE, weight_type=QuantType.QInt8, per_channel=True, reduce_range=False,
                         op_types_to_quantize=["MatMul", "Attention"],
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    meta = {
        "file": MODEL_FILE,
        "sha256": sha256_file(out / MODEL_FILE),
        "bytes": (out / MODEL_FILE).stat().st_size,
        "source": str(folder),
        "source_sha256": folder_sha256(folder),
        "onnxruntime": onnxruntime.__version__,
        "torch": torch.__version__,
        "recipe": RECIPE,
        "quantization": QUANTIZATION,
        "fusions": fusions,
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return meta


def _valid(folder: Path) -> dict | None:
    """The meta of a cached export whose model file matches its recorded sha256, else ``None``."""
    meta = read_json(folder / META_FILE)
    if not isinstance(meta, dict) or meta.get("recipe") != RECIPE:
        return None
    try:
        return meta if sha256_file(folder / MODEL_FILE) == meta.get("sha256") else None
    except OSError:
        return None


def cached_model(folder: str | Path) -> tuple[Path, dict, bool]:
    """``(path of the int8 ONNX file, its meta, whether it was exported now)`` for a model folder: the cached export
    when its checksum holds, else a fresh one (a damaged or partial one is replaced)."""
    why = supported(folder)
    if why is not None:
        raise ModelLoadError(f"the onnx backend cannot run model {str(folder)!r} ({why}); use --backend torch")
    final = cache_dir() / "onnx" / cache_key(folder)
    meta = _valid(final)
    if meta is not None:
        return final / MODEL_FILE, meta, False
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=final.name + ".tmp-", dir=final.parent))
    except OSError as e:
        raise ModelLoadError(f"cannot write the ONNX model cache under {final.parent} ({e.strerror or e}); "
                             "set QA_CACHE_DIR to a writable folder, or use --backend torch") from None
    try:
        try:
            export(folder, tmp)
        except ModelLoadError:
            raise
        except Exception as e:  # torch / onnx / onnxruntime errors of any kind
            msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            raise ModelLoadError(f"cannot export model {str(folder)!r} to ONNX ({msg}); use --backend torch") from None
        if final.exists():  # damaged (or made by a process beside this one): set it aside, then take its place
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:  # another process put a valid one there first
            meta = _valid(final)
            if meta is None:
                raise ModelLoadError(f"cannot write the ONNX model cache at {final}; use --backend torch") from None
            return final / MODEL_FILE, meta, False
        meta = _valid(final)
        if meta is None:  # pragma: no cover - written and checked just now
            raise ModelLoadError(f"the ONNX model just written at {final} does not match its checksum")
        return final / MODEL_FILE, meta, True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def make_session(path: str | Path, threads: int, spinning: bool = True, disabled: Sequence[str] = DISABLED_OPTIMIZERS):
    """An onnxruntime CPU session as qa runs it: ``threads`` intra-op threads, sequential, every graph
    optimisation but ``disabled``. ``spinning``: idle pool threads spin (onnxruntime's default; 1.25x faster on the
    quiet 2-core machine measured) rather than sleep (1.6-1.9x faster there while other processes loaded it;
    benchmarks/EMBED-ONNX.md)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"], disabled_optimizers=list(disabled))


class OnnxEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from the int8 ONNX export of a sentence-transformers BERT
    folder, run by onnxruntime on the CPU with one thread per core."""

    backend = "onnx"
    quantization = QUANTIZATION
    default_batch_size = DEFAULT_BATCH

    def __init__(self, folder: str | Path, threads: int | None = None, spinning: bool = True):
        self.folder = Path(folder)
        self.threads = threads or cores()
        self.spinning = spinning
        cfg = read_json(self.folder / "config.json") or {}
        self.dimension = int(cfg.get("hidden_size", 0))
        st = read_json(self.folder / "sentence_bert_config.json") or {}
        self.do_lower_case = bool(st.get("do_lower_case", False))
        self.max_length = max_length(self.folder)
        self.exported = False  # set when the session is made: whether the ONNX file was exported then
        self.path: Path | None = None
        self.meta: dict = {}

    @cached_property
    def session(self):
        import onnxruntime as ort

        path, self.meta, self.exported = cached_model(self.folder)
        self.path = path
        try:
            sess = make_session(path, self.threads, self.spinning)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types
            msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            raise ModelLoadError(f"onnxruntime cannot load {path} ({msg}); delete it or use --backend torch") from None
        self.inputs = [i.name for i in sess.get_inputs()]
        return sess

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
        max_tokens: int | None = DEFAULT_TOKENS,
    ) -> np.ndarray:
        """Embed ``texts`` as L2-normalised float32 rows, in order: batches of similar token length (little padding)
        of at most ``batch_size`` sentences and ``max_tokens`` padded tokens (``None``: no token budget).

        >>> OnnxEncoder(resolve_model(None)[1]).encode(["a", "b"]).dtype   # doctest: +SKIP
        dtype('float32')
        """
        sess = self.session
        bs = int(batch_size or DEFAULT_BATCH)
        texts = [t.lower() for t in texts] if self.do_lower_case else list(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        encs = load_tokenizer(str(self.folder), self.max_length).encode_batch(texts) if texts else []
        for idx, ids, mask in padded_batches(encs, bs, max_tokens):
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = sess.run(None, {k: feed[k] for k in self.inputs})[0]
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            out[idx] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            if progress is not None:
                progress(len(idx))
        return out

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions one at a time (batches of one: a question's vector never depends on the others asked with
        it, and equals a document's vector of the same text embedded alone).

        >>> OnnxEncoder(resolve_model(None)[1], threads=1).encode_queries(["a"]).shape   # doctest: +SKIP
        (1, 384)
        """
        return self.encode(texts, batch_size=1)
