"""--rerank with a sentence-transformers CrossEncoder (qa.rerank.CrossEncoderReranker), through the library.

The cross-encoder is built here from the MiniLM weights qa already ships (an untrained one-label head, seeded):
what is tested is that qa orders the hybrid candidates exactly by the model's own ``predict`` scores, not that
the model is any good (eval/train_cross_encoder.py measures that).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from qa.options import RERANK_DEPTH
from qa.rerank import RerankerError, load_reranker

from .conftest import ROOT, SEEDS

QUESTIONS = ("tons seized in Safe Mekong", "How many drug suspects were arrested?")


@pytest.fixture(scope="session")
def cross_encoder_dir(tmp_path_factory):
    """A tiny CrossEncoder folder: the shipped MiniLM with a seeded, untrained one-label head."""
    import torch
    from sentence_transformers import CrossEncoder

    from qa.modelfiles import _offline, resolve_model

    _offline()
    torch.manual_seed(0)
    ce = CrossEncoder(resolve_model(None)[1], num_labels=1, local_files_only=True)
    folder = tmp_path_factory.mktemp("cross-encoder") / "minilm-ce"
    ce.save(str(folder))
    return folder


def _row(idx, hit) -> int:
    return idx._row_of[(hit.article, hit.sentence)]


@pytest.mark.slow
@pytest.mark.parametrize("question", QUESTIONS)
def test_hits_follow_the_cross_encoders_own_scores(seeds_index, cross_encoder_dir, question):
    from sentence_transformers import CrossEncoder

    ans = seeds_index.ask(question, k=5, mode="hybrid", rerank=str(cross_encoder_dir))
    assert ans.rerank == str(cross_encoder_dir) and len(ans.hits) == 5

    # independently: the hybrid top RERANK_DEPTH, scored by the CrossEncoder in one batch, sorted (-score, row)
    base = seeds_index.ask(question, k=RERANK_DEPTH, mode="hybrid", rerank="none")
    assert len(base.hits) == RERANK_DEPTH
    ce = CrossEncoder(str(cross_encoder_dir), local_files_only=True)
    pairs = [(question, h.text) for h in base.hits]
    scores = ce.predict(pairs, batch_size=len(pairs), convert_to_numpy=True, show_progress_bar=False)
    want = sorted(((float(s), _row(seeds_index, h)) for s, h in zip(scores, base.hits)), key=lambda x: (-x[0], x[1]))
    assert [_row(seeds_index, h) for h in ans.hits] == [r for _, r in want[:5]]
    for h, (s, _) in zip(ans.hits, want):
        assert h.rerank_score == s and h.score == s
        assert 0.0 <= h.rerank_score <= 1.0  # one-label CrossEncoder: sigmoid probability
        assert h.confidence is not None  # confidence stays qa's calibrated model, whatever ordered the hits
    retrieval = {_row(seeds_index, h): h.retrieval_score for h in base.hits}
    assert all(h.retrieval_score == retrieval[_row(seeds_index, h)] for h in ans.hits)
    for h in ans.hits:  # offsets still slice the source
        raw = (SEEDS / f"{h.article}.txt").read_text(encoding="utf-8")
        assert raw[h.start : h.end] == h.text


@pytest.mark.slow
def test_reranker_score_batches_and_caches(cross_encoder_dir):
    r = load_reranker(str(cross_encoder_dir))
    assert r is load_reranker(str(cross_encoder_dir))  # loaded once per process
    assert r.name == str(cross_encoder_dir)
    empty = r.score("anything", [], {}, [])
    assert isinstance(empty, np.ndarray) and empty.shape == (0,)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["no-such/cross-encoder", "no-such-cross-encoder"])
def test_unknown_name_is_one_line_reranker_error(seeds_index, name):
    with pytest.raises(RerankerError) as e:
        seeds_index.ask(QUESTIONS[0], k=5, mode="hybrid", rerank=name)
    msg = str(e.value)
    assert "\n" not in msg and e.value.exit_code == 6
    assert msg.startswith(f"cannot load reranker {name!r} offline (")
    assert msg.endswith("; pass --rerank a CrossEncoder folder, a qa reranker folder, or none")


@pytest.mark.slow
def test_missing_folder_and_bi_encoder_are_reranker_errors(tmp_path):
    from qa.modelfiles import resolve_model

    with pytest.raises(RerankerError, match=r"^cannot load reranker '[^\n]*nowhere' offline \([^\n]*$"):
        load_reranker(str(tmp_path / "nowhere"))
    # a SentenceTransformer bi-encoder would load as a CrossEncoder with an untrained head: refused
    bi = resolve_model(None)[1]
    with pytest.raises(RerankerError) as e:
        load_reranker(bi)
    assert "\n" not in str(e.value) and "not a CrossEncoder" in str(e.value) and repr(bi) in str(e.value)


def test_importing_rerank_stays_torch_free():
    code = "import sys, qa.rerank, qa.index; sys.exit('torch' in sys.modules or 'sentence_transformers' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
