"""The streaming index build (qa.index.Index.build): batch tokenisation to term ids (qa.tokens.TermIds) agrees token
for token with the per-sentence tokenizer, and the written index is byte for byte what the per-sentence path
(split_sentences, Tokenizer.tokenize, BM25Engine.build, np.save of all vectors at once) writes."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qa.build as qb
from qa.errors import CorpusError
import qa.index as qi
from qa.bm25 import BM25Engine, BM25Params
from qa.corpus import load_corpus
from qa.sentences import article_spans, split_sentences
from qa.tokens import TermIds, Tokenizer, TokenizerConfig, _char_tables

from .conftest import SEEDS


def _per_sentence(tok: Tokenizer, texts: list[str]) -> list[list[str]]:
    return [tok.tokenize(t) for t in texts]


def _batched(tok: Tokenizer, texts: list[str], batch: int) -> tuple[list[list[str]], list[str]]:
    ids = TermIds(tok)
    out: list[list[str]] = []
    for lo in range(0, len(texts), batch):
        flat, counts = ids.add(texts[lo : lo + batch])
        assert flat.dtype == np.int32 and counts.shape == (len(texts[lo : lo + batch]),)
        ends = np.cumsum(counts)
        out.extend([ids.terms[i] for i in flat[e - c : e]] for c, e in zip(counts.tolist(), ends.tolist()))
    return out, ids.terms


def _first_seen(lists: list[list[str]]) -> list[str]:
    vocab: dict[str, None] = {}
    for ts in lists:
        vocab.update(dict.fromkeys(ts))
    return list(vocab)


CONFIGS = [
    TokenizerConfig(),
    TokenizerConfig(lowercase=False, normalize=None),
    TokenizerConfig(stopwords=None, stemmer=None),
    TokenizerConfig(stopwords=("police", "2534", "ton")),
    TokenizerConfig(numbers_whole=False),
]


def test_char_tables_are_the_regex_classes():
    word, dec, cjk = _char_tables()
    chars = "".join(map(chr, range(0x110000)))
    want = np.zeros(0x110000, dtype=bool)
    for m in re.finditer(r"\w+", chars):
        want[m.start() : m.end()] = True
    assert np.array_equal(word, want)
    want[:] = False
    for m in re.finditer(r"\d+", chars):
        want[m.start() : m.end()] = True
    assert np.array_equal(dec, want)
    for small, full in zip(_char_tables(0x10000), (word, dec, cjk)):  # the BMP tables used first
        assert np.array_equal(small, full[:0x10000])
    assert cjk.sum() == sum(b - a + 1 for a, b in ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF)))


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: json.dumps(c.to_dict()))
def test_batched_tokens_equal_per_sentence_tokens_on_the_seeds(cfg):
    tok = Tokenizer(cfg)
    texts = [s.text for a in load_corpus([SEEDS]) for s in split_sentences(a)]
    texts += ["", "  ", "2,534 kg 9.8 t 1,234,5678 12.5a 1.2.3 a1,234 3.x ,5 1,23",
              "東京で2,534人 ｆｉ Σίσυφος ß \x00x\x01y\x02", "𝟗,𝟗𝟗𝟗 𝐀𝐁 😀 1,000"]
    want = _per_sentence(tok, texts)
    for batch in (1, 7, len(texts)):
        got, terms = _batched(tok, texts, batch)
        assert got == want
        assert terms == _first_seen(want)  # term ids in order of first occurrence, as BM25Engine.build numbers them


_alphabet = st.sampled_from(
    list("ab ZzÉé0123456789,.,.-_'\n\t") + ["ß", "ﬁ", "Σ", "ς", "東", "京", "ア", "٣", "²", "\u0301", "\x00", "\x01",
                                             "\x02", "\ud800", "\u3000", "\xa0", "\x1c", "İ",
                                             "\U0001d7d7", "\U0001d400", "\U0001f600", "\U00020000"]
)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(_alphabet, max_size=40), min_size=1, max_size=12), st.integers(1, 5),
       st.sampled_from(range(len(CONFIGS))))
def test_batched_tokens_equal_per_sentence_tokens_on_any_text(texts, batch, which):
    tok = Tokenizer(CONFIGS[which])
    want = _per_sentence(tok, texts)
    got, terms = _batched(tok, texts, batch)
    assert got == want
    assert terms == _first_seen(want)


def test_from_ids_is_build():
    tok = Tokenizer()
    texts = [s.text for a in load_corpus([SEEDS]) for s in split_sentences(a)]
    tokens = _per_sentence(tok, texts)
    ref = BM25Engine.build(tokens, BM25Params(method="robertson"))
    ids = TermIds(tok)
    flat, counts = ids.add(texts)
    got = BM25Engine.from_ids(flat, counts, ids.terms, BM25Params(method="robertson"))
    assert got.vocab == ref.vocab and list(got.vocab) == list(ref.vocab)
    for name in ("indptr", "docs", "weights", "bounds", "weights32"):
        a, b = getattr(got, name), getattr(ref, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name


def test_article_spans_are_split_sentences():
    for a in load_corpus([SEEDS]):
        first, spans = article_spans(a.text)
        assert [(s.number, s.start, s.end) for s in split_sentences(a)] == [
            (first + i, s, e) for i, (s, e) in enumerate(spans)
        ]


class HashEncoder:
    """Deterministic per-text vectors, whatever the batch a text comes in."""

    name = "test:hash-8"
    dimension = 8

    def __init__(self):
        self.calls: list[int] = []

    def encode(self, texts, batch_size=64, progress=None):
        self.calls.append(len(texts))
        out = np.empty((len(texts), 8), dtype=np.float32)
        for i, t in enumerate(texts):
            v = np.frombuffer(hashlib.sha256(t.encode("utf-8", "surrogatepass")).digest()[:8], dtype=np.uint8)
            out[i] = (v.astype(np.float32) + 1) / np.linalg.norm(v.astype(np.float32) + 1)
        if progress:
            progress(len(texts))
        return out


def _expected(corpus, title_context: bool, tmp_path):
    """The files of an index as the per-sentence path writes them."""
    arts = load_corpus([corpus])
    sents, rows = [], []
    for i, a in enumerate(arts):
        for s in split_sentences(a):
            sents.append(s)
            rows.append((i, s.number, s.start, s.end))
    texts = []
    for s, (i, _, _, _) in zip(sents, rows):
        title = " ".join((qb.article_title(arts[i]) or "").replace("_", " ").split())
        texts.append(f"{title}: {s.text}" if title_context and title and not s.is_title else s.text)
    out = tmp_path / "expected"
    toks = _per_sentence(Tokenizer(), texts)
    terms = sorted({t for ts in toks for t in ts})  # an index's vocabulary is sorted (the same for any segments)
    pos = {t: i for i, t in enumerate(terms)}
    flat = np.array([pos[t] for ts in toks for t in ts], dtype=np.int64)
    BM25Engine.from_ids(flat, np.array([len(ts) for ts in toks]), terms).save(out / "bm25")
    assert BM25Engine.build(toks).top_k(toks[3], 5)[1].tolist() == BM25Engine.load(out / "bm25", len(toks), BM25Params()).top_k(toks[3], 5)[1].tolist()
    np.save(out / "sentences.npy", np.array(rows, dtype=np.int64))
    np.save(out / "vectors.npy", HashEncoder().encode(texts))
    return out


def _same_files(idx, exp):
    gen = idx.folder
    for rel in ["sentences.npy", *(f"bm25/{f}" for f in BM25Engine.FILES)]:
        assert (gen / rel).read_bytes() == (exp / rel).read_bytes(), rel
    assert np.asarray(idx.vectors).tobytes() == np.load(exp / "vectors.npy").tobytes()


@pytest.mark.parametrize("title_context", [False, True])
def test_streamed_build_writes_the_per_sentence_index(tmp_path, monkeypatch, title_context):
    monkeypatch.setattr(qb, "EMBED_CHUNK", 7)  # several encoder calls and vector blocks
    monkeypatch.setattr(qb, "SPLIT_CHUNK", 2)  # several split / tokenise batches
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for f in SEEDS.iterdir():
        (corpus / f.name).write_bytes(f.read_bytes())
    enc = HashEncoder()
    idx = qi.Index.build([corpus], tmp_path / "index", encoder=enc, title_context=title_context)
    assert max(enc.calls) <= 7 and sum(enc.calls) == len(idx)
    _same_files(idx, _expected(corpus, title_context, tmp_path))
    [seg] = idx.folder.glob("seg/*")  # a fresh build: one segment, its vectors file the np.save of them all
    assert (seg / "vectors.npy").read_bytes() == (tmp_path / "expected" / "vectors.npy").read_bytes()
    assert not list((tmp_path / "index").glob(".tmp-*"))

    # a rebuild reuses the unchanged articles' vectors (read from the previous file) and embeds only the changed one
    first = sorted(corpus.iterdir())[0]
    first.write_text(first.read_text(encoding="utf-8") + "\n\nOne more sentence about 2,534 tons.\n", encoding="utf-8")
    enc2 = HashEncoder()
    idx2 = qi.Index.build([corpus], tmp_path / "index", encoder=enc2, title_context=title_context)
    assert 0 < idx2.build_stats["embedded"] < len(idx2) and idx2.build_stats["reused"] > 0
    assert sum(enc2.calls) == idx2.build_stats["embedded"]
    _same_files(idx2, _expected(corpus, title_context, tmp_path / "2"))
    assert idx2.build_stats["segments"] == 2  # the changed article's, and the first build's (still 30 of 47 live)
    assert not list((tmp_path / "index").glob(".tmp-*"))


def test_a_failed_embedding_leaves_no_vectors_file(tmp_path):
    class Broken(HashEncoder):
        def encode(self, texts, batch_size=64, progress=None):
            raise RuntimeError("encoder died")

    with pytest.raises(RuntimeError):
        qi.Index.build([SEEDS], tmp_path / "index", encoder=Broken())
    assert not list((tmp_path / "index").glob(".tmp-*"))
    # the folder this failed first build created is gone, not left holding only .lock (issue 21)
    assert not (tmp_path / "index").exists()
    # a folder that was there before stays (with whatever it held), and an index in it is untouched
    good = qi.Index.build([SEEDS], tmp_path / "index", encoder=HashEncoder())
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "new.txt").write_text("A new article about clove harvests.\n", encoding="utf-8")
    with pytest.raises(RuntimeError):
        qi.Index.build([SEEDS, tmp_path / "more"], tmp_path / "index", encoder=Broken())
    assert qi.Index.load(tmp_path / "index").ask("tons seized", k=1, mode="bm25").top == \
        good.ask("tons seized", k=1, mode="bm25").top


def test_an_empty_corpus_creates_no_index_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="the corpus is empty"):
        qi.Index.build([tmp_path / "empty"], tmp_path / "index", encoder=HashEncoder())
    assert not (tmp_path / "index").exists()


def test_the_split_worker_process_splits_like_the_build_itself(tmp_path, monkeypatch):
    """Large corpora are split by `python -m qa.splitworker`; the index is the same bytes."""
    monkeypatch.setattr(qb, "SPLIT_CHUNK", 1)
    monkeypatch.setattr(qb, "SPLIT_PROCESS_MIN", 1)
    arts = load_corpus([SEEDS])
    starts = list(range(len(arts)))
    texts = [a.text for a in arts] + ["\ud800 lone surrogate. Then 2,534 more.\n\nΣ para."]
    got = list(qb._split_in_process(list(range(len(texts))), lambda lo: texts[lo : lo + 1]))
    assert len(got) == len(texts)  # every batch came from the process
    for g, t in zip(got, texts):
        want = qb._spans_here([t])
        assert all(np.array_equal(x, y) for x, y in zip(g, want))
    idx = qi.Index.build([SEEDS], tmp_path / "index", encoder=HashEncoder())
    assert len(starts) == 3
    _same_files(idx, _expected(SEEDS, False, tmp_path))


def test_a_split_worker_that_dies_falls_back_to_splitting_here(tmp_path, monkeypatch):
    monkeypatch.setattr(qb, "SPLIT_CHUNK", 1)
    monkeypatch.setattr(qb, "SPLIT_PROCESS_MIN", 1)
    monkeypatch.setattr("sys.executable", "/bin/false")  # starts, reads nothing, exits
    idx = qi.Index.build([SEEDS], tmp_path / "index", encoder=HashEncoder())
    _same_files(idx, _expected(SEEDS, False, tmp_path))
