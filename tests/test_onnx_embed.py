"""The onnxruntime document backend (qa/embed/onnx.py, `qa index --backend`): its vectors against
sentence-transformers', what the manifest records, re-embedding on a backend change, the export cache's checksum,
and the one-line errors of --device / --backend."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import qa
from qa.cli import app
from qa.embed import Encoder, resolve_backend
from qa.errors import ModelLoadError
from qa.eval import load_gold

from .conftest import ROOT, SEEDS

runner = CliRunner()
onnx_installed = pytest.mark.skipif(
    not __import__("qa.embed.onnx", fromlist=["available"]).available(), reason="onnxruntime/onnx not installed"
)


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


# -- fast: choosing the backend -----------------------------------------------------------------------------------
def test_resolve_backend_rules(tmp_path):
    from qa.modelfiles import resolve_model

    folder = resolve_model(None)[1]
    assert resolve_backend("torch", "cpu", folder) == "torch"
    assert resolve_backend("auto", "cuda", folder) == "torch"  # a GPU: sentence-transformers
    with pytest.raises(ModelLoadError, match="unknown embedding backend 'tf'"):
        resolve_backend("tf", "cpu", folder)
    with pytest.raises(ModelLoadError, match="CPU only"):
        resolve_backend("onnx", "cuda", folder)
    # a folder the export does not reproduce: auto falls back to torch, onnx says why
    assert resolve_backend("auto", "cpu", str(tmp_path)) == "torch"
    with pytest.raises(ModelLoadError, match="no modules.json"):
        resolve_backend("onnx", "cpu", str(tmp_path))


@onnx_installed
def test_auto_is_onnx_on_cpu():
    assert Encoder(backend="auto").backend == "onnx"


def test_one_default_backend_for_library_cli_and_builds():
    """issue 21: `qa index` and `qa.Index.build` (and a bare Encoder) embed with the same backend by default."""
    import inspect

    import qa
    from qa.cli import index as cli_index
    from qa.embed import DEFAULT_BACKEND

    assert inspect.signature(qa.Index.build).parameters["backend"].default == DEFAULT_BACKEND
    assert inspect.signature(Encoder).parameters["backend"].default == DEFAULT_BACKEND
    assert inspect.signature(cli_index).parameters["backend"].default.default == DEFAULT_BACKEND


@pytest.mark.skipif(_has_gpu(), reason="a GPU is present")
def test_device_cuda_without_gpu_is_one_line(tmp_path):
    r = runner.invoke(app, ["index", str(SEEDS), "--index-dir", str(tmp_path / "i"), "--device", "cuda"])
    assert r.exit_code == ModelLoadError.exit_code
    assert r.output.count("\n") == 1 and "sees no CUDA GPU" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "i").exists()  # refused before any work


def test_bad_backend_is_one_line(tmp_path):
    r = runner.invoke(app, ["index", str(SEEDS), "--index-dir", str(tmp_path / "i"), "--backend", "tensorrt"])
    assert r.exit_code == ModelLoadError.exit_code and r.output.count("\n") == 1, r.output
    assert "unknown embedding backend 'tensorrt'" in r.output


def test_token_budget_batches_keep_every_sentence_once():
    from types import SimpleNamespace

    from qa.embed.bert import padded_batches

    rng = np.random.default_rng(0)
    lens = rng.integers(3, 120, size=400)
    encs = [SimpleNamespace(ids=list(range(1, n + 1))) for n in lens]
    fixed = list(padded_batches(encs, 16))
    for bs, budget in ((64, 512), (8, 100), (64, 40)):
        batches = list(padded_batches(encs, bs, max_tokens=budget))
        seen = sorted(i for idx, _, _ in batches for i in idx)
        assert seen == list(range(len(encs)))  # every sentence, once
        for idx, ids, mask in batches:
            assert 1 <= len(idx) <= bs and ids.shape == mask.shape == (len(idx), max(lens[idx]))
            assert ids.size <= budget or len(idx) == 1  # over the budget only a sentence alone
            for r, i in enumerate(idx):  # each row is its own sentence's ids, then padding
                assert ids[r, : lens[i]].tolist() == encs[i].ids and mask[r].sum() == lens[i]
                assert not ids[r, lens[i]:].any()
        # short sentences go in bigger batches than a fixed count would make, long ones in smaller
        assert max(len(b[0]) for b in batches) > 16 or bs < 16 or budget < 16 * min(lens)
        assert sum(b[1].size for b in batches) <= sum(b[1].size for b in fixed)  # no more padding
    assert len(list(padded_batches(encs, 16, max_tokens=None))) == len(fixed)


def test_folder_checksum_is_remembered_until_a_file_changes(tmp_path, monkeypatch):
    import os

    from qa.embed.onnx import _folder_sha256_remembered, folder_sha256

    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "model"
    model.mkdir()
    (model / "a.json").write_text("{}")
    (model / "w.bin").write_bytes(b"1234")
    first = _folder_sha256_remembered(model)
    assert first == folder_sha256(model) and (tmp_path / "cache" / "onnx" / "folders.json").is_file()
    assert _folder_sha256_remembered(model) == first  # remembered
    st = (model / "w.bin").stat()
    (model / "w.bin").write_bytes(b"5678")  # same size, new content and mtime
    os.utime(model / "w.bin", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert _folder_sha256_remembered(model) == folder_sha256(model) != first
    (model / "new.txt").write_text("x")  # a file added
    assert _folder_sha256_remembered(model) == folder_sha256(model)


# -- slow: the real model ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def onnx_encoder():
    enc = Encoder(backend="onnx")
    enc.onnx.session  # exported (or read from the cache) now
    return enc


@onnx_installed
@pytest.mark.slow
def test_onnx_vectors_match_torch_on_seeds(seeds_index, onnx_encoder):
    texts = [seeds_index.sentence(r).text for r in range(len(seeds_index))]
    v = onnx_encoder.encode(texts)
    assert v.dtype == np.float32 and v.shape == seeds_index.vectors.shape
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    cos = (v * np.asarray(seeds_index.vectors)).sum(1)
    # int8 weights and activations: 0.98 per row at worst on 1,353 SQuAD sentences (benchmarks/EMBED-ONNX.md)
    assert cos.min() >= 0.97 and cos.mean() >= 0.99, (cos.min(), cos.mean())
    # retrieval parity: the gold questions' dense top hit, with the same float32 question vectors
    gold = load_gold(ROOT / "eval" / "gold.jsonl")
    q = seeds_index.encoder.encode_queries([g.question for g in gold])
    top_torch = np.argmax(q @ np.asarray(seeds_index.vectors).T, axis=1)
    top_onnx = np.argmax(q @ v.T, axis=1)
    assert (top_torch == top_onnx).mean() >= 0.9, (top_torch == top_onnx).mean()


@onnx_installed
@pytest.mark.slow
def test_token_budget_path_matches_fixed_batches_and_keeps_order(seeds_index, onnx_encoder):
    texts = [seeds_index.sentence(r).text for r in range(len(seeds_index))]
    enc = onnx_encoder.onnx
    budget = enc.encode(texts, batch_size=64)  # length-sorted, cut at DEFAULT_TOKENS padded tokens
    fixed = enc.encode(texts, batch_size=16, max_tokens=None)
    # int8 activations are quantised per batch: other batch-mates move a vector a little, never far
    cos = (budget * fixed).sum(1)
    assert cos.min() >= 0.97 and cos.mean() >= 0.99, (cos.min(), cos.mean())
    rev = enc.encode(texts[::-1], batch_size=64)[::-1]  # the output is in input order, whatever the order given
    assert (np.argmax(budget @ rev.T, axis=1) == np.arange(len(texts))).all()
    assert (np.argmax(budget @ fixed.T, axis=1) == np.arange(len(texts))).all()
    assert enc.encode([]).shape == (0, enc.dimension)


@onnx_installed
@pytest.mark.slow
def test_question_and_document_vectors_of_the_same_text_agree(seeds_index, onnx_encoder):
    """Documents (default: one sentence per run) and questions (one per run, the query-time thread budget, idle
    threads asleep) come from the same int8 model file: the same text gets the same vector."""
    texts = [seeds_index.sentence(r).text for r in range(len(seeds_index))] + ["", "a", "word " * 400, "Ünïcödé 😀"]
    docs = onnx_encoder.encode(texts)
    questions = Encoder(query_backend="onnx").encode_queries(texts)
    cos = (docs * questions).sum(1)
    assert cos.min() >= 0.9999, cos.min()
    batched = onnx_encoder.encode(texts, batch_size=64)  # int8 activations quantised per batch: near, not equal
    assert (batched * questions).sum(1).min() < 0.9999


@onnx_installed
@pytest.mark.slow
def test_manifest_records_backend_and_backend_change_reembeds(tmp_path, encoder, onnx_encoder):
    d = tmp_path / "idx"
    first = qa.Index.build([SEEDS], d, encoder=onnx_encoder)
    m = first.manifest["model"]
    assert m["backend"] == "onnx" and m["quantization"].startswith("int8") and m["device"] == "cpu"
    again = qa.Index.build([SEEDS], d, encoder=onnx_encoder)
    assert again.build_stats["embedded"] == 0 and again.build_stats["reused"] == 47
    torch_idx = qa.Index.build([SEEDS], d, encoder=encoder)  # another backend: every sentence again
    assert torch_idx.build_stats["embedded"] == 47 and torch_idx.build_stats["reused"] == 0
    assert torch_idx.manifest["model"]["backend"] == "torch" and torch_idx.manifest["model"]["quantization"] is None
    assert np.array_equal(np.asarray(torch_idx.vectors), np.asarray(encoder.encode(
        [torch_idx.sentence(r).text for r in range(len(torch_idx))])))
    # an index from before backends were recorded was made by torch: its vectors are reused by a torch build ...
    gen = torch_idx.folder
    man = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    for k in ("backend", "quantization", "device"):
        del man["model"][k]
    (gen / "manifest.json").write_text(json.dumps(man), encoding="utf-8")
    assert qa.Index.build([SEEDS], d, encoder=encoder).build_stats["reused"] == 47
    # ... and not by an onnx one
    assert qa.Index.build([SEEDS], d, encoder=onnx_encoder).build_stats["embedded"] == 47


@onnx_installed
@pytest.mark.slow
def test_cli_backend_option_is_recorded(tmp_path):
    d = tmp_path / "idx"
    r = runner.invoke(app, ["index", str(SEEDS), "--index-dir", str(d), "--backend", "onnx"])
    assert r.exit_code == 0 and r.stdout.rstrip().endswith("(onnx int8)"), r.output
    assert qa.Index.load(d).manifest["model"]["backend"] == "onnx"


@onnx_installed
@pytest.mark.slow
def test_damaged_cached_model_is_exported_again(tmp_path, monkeypatch, onnx_encoder):
    from qa.embed.onnx import OnnxEncoder, cached_model

    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    folder = onnx_encoder.path
    path, meta, made = cached_model(folder)
    assert made and path.is_file() and not list(path.parent.glob("*.pkl"))
    texts = ["9.8 tons of drugs seized", "China vowed to strengthen cooperation with ASEAN"]
    before = OnnxEncoder(folder).encode(texts)
    np.testing.assert_allclose(before, onnx_encoder.encode(texts), atol=1e-6)  # the same export as the shared cache
    assert cached_model(folder)[2] is False  # intact: used as is
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the weights
    path.write_bytes(bytes(data))
    enc = OnnxEncoder(folder)
    after = enc.encode(texts)
    assert enc.exported and enc.meta["sha256"] == meta["sha256"]  # detected, exported again: the same file
    np.testing.assert_array_equal(after, before)


def test_progress_bar_shows_sentences_per_second_while_embedding():
    import time

    from qa.cli import _Progress

    with _Progress(enabled=True) as p:
        for _ in range(3):
            p("read", 1, 3)
            p("embed", 16, 160)
            time.sleep(0.02)
        rate = next(c for c in p.bar.columns if type(c).__name__ == "Rate")
        tasks = {t.description.strip(): t for t in p.bar.tasks}
        shown = rate.render(tasks["embedding"]).plain
        assert shown.endswith(" sentences/s") and float(shown.split()[0].replace(",", "")) > 0, shown
        assert rate.render(tasks["reading"]).plain == ""  # other stages: no rate
        assert any(type(c).__name__ == "TimeRemainingColumn" for c in p.bar.columns)
