"""The light (numpy) query encoder: same vectors as sentence-transformers, same answers, no torch on `qa ask`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import qa
from qa.embed import Encoder
from qa.embed.bert import supported
from qa.embed.light import LightEncoder
from qa.modelfiles import resolve_model

from .conftest import ROOT, SEEDS

QUESTIONS = [
    "tons seized in Safe Mekong",
    "How many drug crime suspects were arrested?",
    "Which countries took part in the joint operation?",
    "what happened to the economy",
    "Ünïcödé café — naïve 北京",
]


def _model_folder():
    return resolve_model(None)[1]


def test_default_model_is_supported():
    assert supported(_model_folder()) is None


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda d: (d / "1_Pooling" / "config.json").write_text(
            json.dumps({"word_embedding_dimension": 384, "pooling_mode_cls_token": True})), "pooling"),
        (lambda d: (d / "modules.json").write_text(json.dumps(json.loads((d / "modules.json").read_text())[:2])),
         "Normalize"),
        (lambda d: (d / "config.json").write_text(
            json.dumps({**json.loads((d / "config.json").read_text()), "model_type": "roberta"})), "BERT"),
        (lambda d: (d / "tokenizer.json").unlink(), "tokenizer.json"),
    ],
)
def test_other_models_are_refused_and_fall_back(tmp_path, change, reason):
    src = resolve_model(None)[1]
    dst = tmp_path / "model"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("model.safetensors"))
    (dst / "model.safetensors").symlink_to(src + "/model.safetensors")
    assert supported(dst) is None
    change(dst)
    assert reason in supported(dst)
    enc = Encoder(str(dst))
    assert enc.light is None  # auto: falls back to sentence-transformers
    with pytest.raises(qa.ModelLoadError):
        Encoder(str(dst), query_backend="light").light
    with pytest.raises(ValueError):
        LightEncoder(dst)


def test_erf_approximation():
    from math import erf

    from qa.embed.light import _erf

    x = np.linspace(-6, 6, 2001)
    assert np.abs(_erf(x) - np.array([erf(v) for v in x])).max() < 2e-7


@pytest.mark.slow
def test_same_vectors_as_sentence_transformers(encoder):
    texts = [ln.strip() for p in sorted(SEEDS.glob("*.txt")) for ln in p.read_text(encoding="utf-8").splitlines()]
    texts = [t for t in texts if t] + QUESTIONS + ["", "a", "word " * 400, "UPPER lower 2,534 9.8 😀"]
    ref = encoder.encode(texts)
    light = LightEncoder(_model_folder())
    got = light.encode(texts, batch_size=7)
    cos = (ref * got).sum(1)
    assert cos.min() >= 1 - 1e-4
    assert np.abs(ref - got).max() < 1e-5
    one = light.encode_query(QUESTIONS[0])
    assert float(one @ ref[len(texts) - 4 - len(QUESTIONS)]) >= 1 - 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("fusion", ["rrf", "convex"])
def test_fast_path_answers_identically(seeds_index, fusion):
    fast = qa.Index.load(seeds_index.folder.parent)
    fast._encoder = Encoder(query_backend="light")
    full = qa.Index.load(seeds_index.folder.parent)
    full._encoder = Encoder(query_backend="torch")
    for q in QUESTIONS:
        for mode in ("hybrid", "dense"):
            a = fast.ask(q, k=10, mode=mode, fusion=fusion, context=1)
            b = full.ask(q, k=10, mode=mode, fusion=fusion, context=1)
            key = [(h.article, h.sentence, h.bm25_rank, h.dense_rank) for h in a.hits]
            assert key == [(h.article, h.sentence, h.bm25_rank, h.dense_rank) for h in b.hits]
            assert [h.score for h in a.hits] == pytest.approx([h.score for h in b.hits], abs=1e-5)
    assert "model" not in fast.encoder.__dict__  # the fast index never loaded torch


def _ask_in_subprocess(index_dir, *args: str) -> dict:
    code = (
        "import sys, json\n"
        "from qa.cli import app\n"
        "try:\n"
        f"    app({['ask', *args, '--json', '--index-dir', str(index_dir)]!r})\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        "print(json.dumps({'code': code, 'modules': sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'sentence_transformers', 'transformers', 'tokenizers', 'safetensors'))}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    return {"answer": json.loads(lines[0]), **json.loads(lines[-1])}


@pytest.mark.slow
def test_qa_ask_never_imports_torch(copy_index):
    bm = _ask_in_subprocess(copy_index, "tons seized in Safe Mekong", "--mode", "bm25")
    assert bm["code"] in (0, None) and bm["modules"] == []  # bm25: no model at all
    hy = _ask_in_subprocess(copy_index, "tons seized in Safe Mekong")
    assert hy["code"] in (0, None)
    assert not any(m.split(".")[0] in ("torch", "sentence_transformers", "transformers") for m in hy["modules"])
    assert hy["answer"]["hits"][0]["sentence"] == 7


def test_import_qa_is_light():
    code = "import sys, qa, qa.cli; print(sorted(m for m in ('torch', 'sentence_transformers', 'tokenizers', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
