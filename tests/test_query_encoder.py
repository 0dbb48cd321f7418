"""The question encoder (onnxruntime int8, the documents' model file): no torch on `qa ask`, falls back to
sentence-transformers for models it cannot run."""

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
from qa.embed.onnx import cached_model
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
    assert enc.query_onnx is None  # auto: falls back to sentence-transformers
    with pytest.raises(qa.ModelLoadError):
        Encoder(str(dst), query_backend="onnx").query_onnx


@pytest.mark.slow
def test_onnx_questions_are_close_to_torch_and_answer_alike(seeds_index):
    """The onnx question encoder (int8) against sentence-transformers (float32) on a torch-built index: vectors
    near, and the same top answers."""
    fast = qa.Index.load(seeds_index.folder.parent)
    fast._encoder = Encoder(query_backend="onnx")
    full = qa.Index.load(seeds_index.folder.parent)
    full._encoder = Encoder(query_backend="torch")
    a, b = fast.encoder.encode_queries(QUESTIONS), full.encoder.encode_queries(QUESTIONS)
    assert (a * b).sum(1).min() >= 0.97
    for q in QUESTIONS[:3]:
        top = [(h.article, h.sentence) for h in fast.ask(q, k=3).hits[:1]]
        assert top == [(h.article, h.sentence) for h in full.ask(q, k=3).hits[:1]]
    assert "model" not in fast.encoder.__dict__  # the onnx index never loaded torch


@pytest.mark.slow
def test_one_question_does_not_depend_on_the_others():
    enc = Encoder(query_backend="onnx")
    together = enc.encode_queries(QUESTIONS)
    alone = np.stack([enc.encode_query(q) for q in QUESTIONS])
    assert np.array_equal(together, alone)


def _ask_in_subprocess(index_dir, *args: str) -> dict:
    code = (
        "import sys, json\n"
        "from qa.cli import app\n"
        "try:\n"
        f"    app({['ask', *args, '--json', '--index-dir', str(index_dir)]!r})\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        "print(json.dumps({'code': code, 'modules': sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'sentence_transformers', 'transformers', 'tokenizers', 'safetensors', 'onnx'))}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    return {"answer": json.loads(lines[0]), **json.loads(lines[-1])}


@pytest.mark.slow
def test_qa_ask_never_imports_torch(onnx_index):
    cached_model(_model_folder())  # `qa index` exports the onnx model once; `qa ask` only reads it
    bm = _ask_in_subprocess(onnx_index, "tons seized in Safe Mekong", "--mode", "bm25")
    assert bm["code"] in (0, None) and bm["modules"] == []  # bm25: no model at all
    hy = _ask_in_subprocess(onnx_index, "tons seized in Safe Mekong")
    assert hy["code"] in (0, None)
    assert not any(m.split(".")[0] in ("torch", "sentence_transformers", "transformers", "onnx") for m in hy["modules"])
    assert hy["answer"]["hits"][0]["sentence"] == 7


@pytest.mark.slow
def test_questions_are_embedded_as_the_documents_were(seeds_index, encoder, onnx_index):
    """A loaded index embeds questions with the engine that embedded its documents: torch for a `--backend torch`
    index (the int8 onnx vectors differ by ~1e-2 in cosine), the int8 onnx file for a default one; either way a
    question's vector is its text's document vector."""
    text = QUESTIONS[1]
    torch_built = qa.Index.load(seeds_index.folder.parent)
    assert torch_built.store.manifest["model"]["backend"] == "torch"
    v = torch_built.encoder.encode_query(text)
    assert torch_built.encoder.backend == "torch" and torch_built.encoder._query_encoder() is None
    assert float(v @ encoder.encode([text])[0]) >= 0.99999
    onnx_built = qa.Index.load(onnx_index)
    w = onnx_built.encoder.encode_query(text)
    assert onnx_built.encoder._query_encoder() is not None
    assert float(w @ Encoder(backend="onnx").encode([text])[0]) >= 0.99999
    assert float(v @ w) < 0.9999  # the two engines' vectors do differ: the choice matters


def test_a_new_generation_keeps_the_question_encoder_only_if_the_same_engine_built_it(seeds_index, onnx_index):
    """A server swapping in a generation built by another engine (`qa index` with the default backend over a
    `--backend torch` index) must not keep embedding questions with the old engine."""
    torch_built, onnx_built = qa.Index.load(seeds_index.folder.parent), qa.Index.load(onnx_index)
    old = torch_built.encoder
    onnx_built.reuse_encoder(torch_built)
    assert onnx_built.encoder is not old and onnx_built.encoder.backend == "onnx"
    again = qa.Index.load(seeds_index.folder.parent)
    again.reuse_encoder(torch_built)
    assert again.encoder is old


def test_import_qa_is_light():
    code = "import sys, qa, qa.cli; print(sorted(m for m in ('torch', 'sentence_transformers', 'tokenizers', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
