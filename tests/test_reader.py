"""Readers (``qa.extract.reader``): ``qa-extract`` (the default, today's extractor), ``none``, registered names,
and any Hugging Face extractive-QA model folder — tested offline with a tiny ``BertForQuestionAnswering`` this
file builds and saves itself. Its weights are set by hand so that the answer is known: a 0-layer BERT whose start
logit fires on one word and whose end logit fires on another, so the reader must return exactly the span between
them, with offsets that slice the source text."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from qa.answer import ShortAnswer
from qa.errors import ModelLoadError
from qa.extract import ANSWER_TYPES, DEFAULT_READER, Passage, Reader, ReaderError, extract, load_reader
from qa.extract import reader as reader_mod

from .conftest import ROOT, SEEDS

runner = CliRunner()
S = "China initiated the Safe Mekong operation in June, during which 2,534 drug crime suspects were arrested."
Q = "How many suspects were arrested?"
A0 = "000_8a6680b996ccc773"
MEKONG_Q = "How many drug crime suspects were arrested in the Safe Mekong joint operation?"  # g012 (dev)


def _build_tiny_qa_model(folder, start_word: str, end_word: str, extra_words: str = "") -> None:
    """A BertForQuestionAnswering with no transformer layer: embeddings → LayerNorm → start/end head. Only
    ``start_word`` and ``end_word`` have non-zero embeddings (dims 0 and 1), and the head reads dim 0 as the start
    logit and dim 1 as the end logit: every other token (and [CLS], the no-answer score) scores 0."""
    torch = pytest.importorskip("torch")
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    words = set((S + " " + Q + " " + extra_words).casefold().replace(",", " , ").replace(".", " . ")
                .replace("?", " ? ").split())
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(words | {"2", "534"})
    ids = {w: i for i, w in enumerate(vocab)}
    tok = tokenizers.Tokenizer(tokenizers.models.WordPiece(ids, unk_token="[UNK]"))
    tok.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    tok.post_processor = tokenizers.processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
        mask_token="[MASK]", model_max_length=128, model_input_names=["input_ids", "token_type_ids", "attention_mask"])
    cfg = transformers.BertConfig(vocab_size=len(vocab), hidden_size=8, num_hidden_layers=0, num_attention_heads=2,
                                  intermediate_size=16, max_position_embeddings=128)
    torch.manual_seed(0)
    model = transformers.BertForQuestionAnswering(cfg)
    with torch.no_grad():
        emb = model.bert.embeddings
        for table in (emb.word_embeddings, emb.position_embeddings, emb.token_type_embeddings):
            table.weight.zero_()
        emb.word_embeddings.weight[ids[start_word], 0] = 1.0
        emb.word_embeddings.weight[ids[end_word], 1] = 1.0
        model.qa_outputs.weight.zero_()
        model.qa_outputs.bias.zero_()
        model.qa_outputs.weight[0, 0] = 1.0  # start logit: dim 0
        model.qa_outputs.weight[1, 1] = 1.0  # end logit: dim 1
    fast.save_pretrained(str(folder))
    model.save_pretrained(str(folder))


@pytest.fixture(scope="module")
def tiny_reader_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny-qa")
    _build_tiny_qa_model(d, "2", "suspects", extra_words="police held 2 suspects on friday")
    return d


def _check(a: ShortAnswer, p: Passage) -> None:
    assert p.start <= a.start < a.end <= p.end
    assert p.text[a.start - p.start : a.end - p.start] == a.text
    assert a.text == a.text.strip() and a.type in ANSWER_TYPES


# -- the protocol and the built-in readers ----------------------------------------------------------------------
def test_default_reader_is_todays_extractor():
    r = load_reader()
    assert r.name == DEFAULT_READER == "qa-extract" and isinstance(r, Reader) and load_reader("qa-extract") is r
    p = Passage(S, 100, before="Police acted.", after="Officials said so.")
    (a,) = r.read(Q, [p])
    assert a == extract(Q, S, 100, before=p.before, after=p.after)
    assert a is not None and a.text == "2,534 drug crime suspects"
    _check(a, p)


def test_none_reader_gives_no_answers():
    r = load_reader("none")
    assert r.name == "none" and r.read(Q, [Passage(S, 0), Passage(S, 50)]) == [None, None]


def test_registered_reader_plugs_in_by_name():
    class Upper:
        name = "first-word"

        def read(self, question, passages):
            return [ShortAnswer(p.text.split()[0], p.start, p.start + len(p.text.split()[0]), "other", 1.0)
                    for p in passages]

    reader_mod.register_reader("first-word", Upper)
    try:
        (a,) = load_reader("first-word").read(Q, [Passage(S, 7)])
        assert a.text == "China" and (a.start, a.end) == (7, 12)
        assert "first-word" in reader_mod.reader_names()
        reader_mod.register_reader("lazy-none", "qa.extract.reader:NoReader")  # imported on first use
        assert load_reader("lazy-none").read(Q, [Passage(S, 0)]) == [None]
        reader_mod.register_reader("missing", "qa.no_such_module:Reader")
        with pytest.raises(ReaderError, match="cannot load reader 'missing'"):
            load_reader("missing")
    finally:
        for name in ("first-word", "lazy-none", "missing"):
            reader_mod._FACTORIES.pop(name, None)
            reader_mod._CACHE.pop(name, None)


def test_bad_reader_is_one_model_load_error(tmp_path):
    with pytest.raises(ReaderError, match="cannot load reader") as e:
        load_reader(str(tmp_path / "no-such-model"))
    assert isinstance(e.value, ModelLoadError) and "\n" not in str(e.value)
    with pytest.raises(ReaderError):
        load_reader("  ")


def test_bad_reader_fails_before_any_index(tmp_path):
    from qa.cli import app

    for cmd in (["ask", "a question"], ["eval"]):
        r = runner.invoke(app, [*cmd, "--reader", str(tmp_path / "nope"), "--index-dir", str(tmp_path / "no-index")])
        assert r.exit_code == ModelLoadError.exit_code and "cannot load reader" in r.stderr, r.output
        assert not (tmp_path / "no-index").exists()  # nothing was built


def test_default_path_imports_no_torch_or_transformers():
    code = ("import sys; from qa.extract import load_reader, Passage; "
            f"print(load_reader().read({Q!r}, [Passage({S!r}, 0)])[0].text); "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.splitlines() == ["2,534 drug crime suspects", "[]"]


# -- a Hugging Face extractive-QA model, built here ---------------------------------------------------------------
def test_hf_reader_returns_the_models_span_with_exact_offsets(tiny_reader_dir):
    r = load_reader(str(tiny_reader_dir))
    assert r.name == str(tiny_reader_dir)
    p = Passage(S, 1000)
    (a,) = r.read(Q, [p])
    assert a is not None and a.text == "2,534 drug crime suspects" and a.type == "number"
    assert (a.start, a.end) == (1000 + S.index("2,534"), 1000 + S.index(" were arrested"))
    assert 0.0 < a.score <= 1.0
    _check(a, p)


def test_hf_reader_reads_the_neighbours_but_answers_inside_the_sentence(tiny_reader_dir):
    r = load_reader(str(tiny_reader_dir))
    # the same start and end words in the sentence before: as strong, and first, but not citable
    p = Passage(S, 500, before="Police held 2 suspects on Friday.", after="Police held 2 suspects on Friday.")
    (a,) = r.read(Q, [p])
    assert a is not None and a.text == "2,534 drug crime suspects"
    _check(a, p)


def test_hf_reader_no_answer_when_nothing_beats_the_cls_score(tiny_reader_dir):
    r = load_reader(str(tiny_reader_dir))
    # neither the start nor the end word in the sentence: every span scores 0, like [CLS]
    assert r.read(Q, [Passage("China initiated the operation in June.", 0, before="Police held 2 suspects.")]) == [None]
    assert r.read(Q, [Passage("", 0)]) == [None]
    (a,) = r.read("How many suspects " + "were really arrested " * 60 + "?", [Passage(S, 0)])  # > the model's 128
    assert a is not None and a.text == "2,534 drug crime suspects"


def test_hf_reader_long_context_is_read_in_windows(tiny_reader_dir):
    r = load_reader(str(tiny_reader_dir))
    filler = " ".join(["China initiated the operation in June."] * 30)  # ~240 word pieces: several windows
    p = Passage(S, 10, before=filler, after=filler)
    (a,) = r.read(Q, [p])
    assert a is not None and a.text == "2,534 drug crime suspects"
    _check(a, p)


@pytest.mark.slow
def test_ask_and_cli_with_a_hugging_face_reader(seeds_index, copy_index, tiny_reader_dir):
    from qa.cli import app

    ans = seeds_index.ask(MEKONG_Q, k=3, reader=str(tiny_reader_dir))
    source = {h.article: (SEEDS / f"{h.article}.txt").read_text(encoding="utf-8") for h in ans.hits}
    assert ans.top.article == A0 and ans.short is not None and ans.short.text == "2,534 drug crime suspects"
    for h in ans.hits:
        if h.answer is not None:
            assert h.start <= h.answer.start < h.answer.end <= h.end
            assert source[h.article][h.answer.start:h.answer.end] == h.answer.text
    assert all(h.answer is None for h in seeds_index.ask(MEKONG_Q, k=3, reader="none").hits)
    default = seeds_index.ask(MEKONG_Q, k=3)
    assert seeds_index.ask(MEKONG_Q, k=3, reader="qa-extract").to_dict() == default.to_dict()
    r = runner.invoke(app, ["ask", MEKONG_Q, "-k", "2", "--json", "--reader", str(tiny_reader_dir),
                            "--index-dir", str(copy_index)])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["short"]["text"] == "2,534 drug crime suspects" and d["short"]["article"] == A0
    r = runner.invoke(app, ["ask", MEKONG_Q, "--reader", "none", "--index-dir", str(copy_index)])
    assert r.exit_code == 0 and not any(ln.startswith("A: ") for ln in r.stdout.splitlines())
    r = runner.invoke(app, ["ask", MEKONG_Q, "--reader", "/no/such/reader", "--index-dir", str(copy_index)])
    assert r.exit_code == ModelLoadError.exit_code and "cannot load reader" in r.stderr


@pytest.mark.slow
def test_server_reader_field(copy_index):
    from starlette.testclient import TestClient

    from qa.serve import create_app

    with TestClient(create_app(copy_index)) as c:
        on = c.get("/ask", params={"q": MEKONG_Q, "k": 2}).json()
        off = c.get("/ask", params={"q": MEKONG_Q, "k": 2, "reader": "none"}).json()
        same = c.post("/ask", json={"question": MEKONG_Q, "k": 2, "reader": "qa-extract"}).json()
        bad = c.post("/ask", json={"question": MEKONG_Q, "reader": "/some/model/folder"})
    assert on["short"]["text"] == "2,534" and same == on
    assert off["short"] is None and all(h["answer"] is None for h in off["hits"])
    assert [h["sentence"] for h in off["hits"]] == [h["sentence"] for h in on["hits"]]
    assert bad.status_code == 400 and "reader" in bad.json()["error"]


@pytest.mark.slow
def test_hf_reader_with_a_real_word_piece_vocabulary():
    """The shipped MiniLM encoder as a QA model (its start/end head untrained, seeded): whatever span it picks, the
    offsets slice the source exactly, on whole words, inside the sentence — accents, CJK, emoji, odd spaces."""
    torch = pytest.importorskip("torch")
    from qa.modelfiles import DEFAULT_MODEL, resolve_model

    folder = resolve_model(DEFAULT_MODEL)[1]
    torch.manual_seed(0)
    r = load_reader(str(folder))
    try:
        texts = ["Café  Zoë opened in São Paulo in 2019 — 😀 the owner, José, said.",
                 "中文 text with e\u0301 and \u00a0nbsp, 2,534 suspects were\tarrested.", S]
        for question in (Q, "Who opened the café in 2019?", "What happened?"):
            for t in texts:
                p = Passage(t, 7, before="Before é 😀 sentence.", after="After\u200b sentence.")
                (a,) = r.read(question, [p])
                assert a is not None
                _check(a, p)
                i, j = a.start - p.start, a.end - p.start
                assert not (i > 0 and t[i - 1].isalnum() and t[i].isalnum()), (t, a.text)  # whole words
                assert not (j < len(t) and t[j - 1].isalnum() and t[j].isalnum()), (t, a.text)
    finally:
        reader_mod._CACHE.pop(str(folder), None)
