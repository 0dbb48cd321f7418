"""qa-reader (issue 19): the shipped model folder is checksummed and loads; answers slice the source exactly;
the ask path imports no torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from qa.corpus import load_corpus
from qa.eval import load_gold, quote_spans
from qa.reader import (DEFAULT_READER, MODELS_DIR, Encoded, Reader, ReaderError, best_spans, encode_batch, extract,
                       read_many, span_type)
from qa.sentences import split_sentences

from .conftest import ROOT, SEEDS

FOLDER = MODELS_DIR / DEFAULT_READER

# Fixture text written for these tests (not from the seeds test split).
TEXT = ("Harbour Lights Museum\n\nThe Harbour Lights Museum opened in Portsmouth on 14 May 1998. It cost 12 "
        "million pounds to build and was designed by the architect Ellen Marsh. About 240,000 people visited it "
        "in its first year, and its lighthouse lens weighs 4.5 tonnes. The museum closes every Monday.")


def _sentences(text: str):
    from qa.corpus import Article

    return split_sentences(Article("fixture", text))


@pytest.fixture(scope="module")
def reader():
    return Reader.load(FOLDER)


def test_model_files_listed_with_sha256_and_loadable(reader):
    spec = json.loads((FOLDER / "reader.json").read_text())
    assert spec["format"] == "qa-reader" and set(spec["files"]) == {"model.onnx"}
    assert len(spec["files"]["model.onnx"]["sha256"]) == 64
    assert (FOLDER / "MODEL_CARD.md").is_file()
    total = sum(p.stat().st_size for p in FOLDER.iterdir())
    assert total < 25_000_000  # the repository stays light: the base model's embeddings are not copied
    assert 0.0 <= reader.threshold < 1.0


def test_changed_byte_or_other_base_raises(tmp_path):
    bad = tmp_path / "r"
    shutil.copytree(FOLDER, bad)
    data = bytearray((bad / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ReaderError, match="checksum"):
        Reader.load(bad)
    other = tmp_path / "o"
    shutil.copytree(FOLDER, other)
    spec = json.loads((other / "reader.json").read_text())
    spec["base"]["tensor_sha256"] = "0" * 64
    (other / "reader.json").write_text(json.dumps(spec))
    with pytest.raises(ReaderError, match="embeddings"):
        Reader.load(other)


def _check(ans, source: str, s) -> None:
    assert source[ans.start:ans.end] == ans.text
    assert s.start <= ans.start < ans.end <= s.end
    assert ans.text == ans.text.strip() and 0.0 <= ans.score <= 1.0


@pytest.mark.parametrize("question,expected", [
    ("When did the Harbour Lights Museum open?", "1998"),
    ("Who designed the museum?", "Ellen Marsh"),
    ("How much did the museum cost to build?", "12 million pounds"),
    ("How much does the lighthouse lens weigh?", "4.5 tonnes"),
])
def test_fixture_answers_slice_the_source(reader, question, expected):
    sents = _sentences(TEXT)
    items = [(s.text, s.start, sents[k - 1].text if k else "", sents[k + 1].text if k + 1 < len(sents) else "")
             for k, s in enumerate(sents)]
    got = reader.read(question, items, threshold=0.0)
    for ans, s in zip(got, sents):
        if ans is not None:
            _check(ans, TEXT, s)
    gold = next(k for k, s in enumerate(sents) if expected in s.text)  # read on its gold sentence, it finds it
    assert got[gold] is not None and expected in got[gold].text


def test_batch_equals_one_by_one_and_threshold(reader):
    sents = _sentences(TEXT)
    q = "When did the Harbour Lights Museum open?"
    items = [(s.text, s.start, "", "") for s in sents]
    batch = reader.read(q, items, threshold=0.0)
    single = [reader.read(q, [it], threshold=0.0)[0] for it in items]
    assert [(a.text, a.start, a.end) for a in batch] == [(a.text, a.start, a.end) for a in single]
    # (scores are not compared: int8 dynamic quantisation scales activations per batch, padding included)
    assert reader.read(q, items, threshold=1.01) == [None] * len(items)
    assert reader.read(q, [("", 0, "", "")]) == [None] and reader.read(" ", items) == [None] * len(items)


def test_extract_has_the_shape_of_qa_extract():
    s = _sentences(TEXT)[1]
    a = extract("When did the Harbour Lights Museum open?", s.text, s.start, before="", after="")
    assert a is not None and a.text.endswith("1998") and TEXT[a.start:a.end] == a.text and a.type == "date"
    assert read_many("When did it open?", [])  == []


def test_encode_keeps_the_sentence_and_the_budget(reader):
    long = " ".join(["word"] * 200)
    e = encode_batch(reader.tokenizer, "What is it?", [(long, "The answer is here.", long)], max_len=40, side=8)[0]
    assert isinstance(e, Encoded) and len(e.ids) <= 40 and e.ids[0] == 101 and e.ids[-1] == 102
    assert e.hi - e.lo == 5 and e.offsets[0] == (0, 3)  # the, answer, is, here, .
    assert len(e.ids) == 3 + 4 + 5 + 8 + 8  # [CLS] q(4) [SEP] before(8) sentence(5) after(8) [SEP]
    cut = encode_batch(reader.tokenizer, "What?", [("", long, "")], max_len=20)[0]
    assert len(cut.ids) == 20 and cut.hi - cut.lo == 20 - 3 - 2


def test_best_span_stays_in_the_sentence():
    import numpy as np

    start = np.array([5.0, 9.0, 0.0, 1.0, 0.0, 9.0])
    end = np.array([5.0, 0.0, 0.0, 3.0, 0.0, 9.0])
    i, j, p = best_spans(start, end, 2, 5, 30)
    assert (i, j) == (3, 3) and 0.0 < p < 1.0
    i, j, _ = best_spans(np.array([0.0, 0.0, 0.0, 9.0]), np.array([0.0, 9.0, 0.0, 0.0]), 1, 4, 30)
    assert i <= j  # an end before the start is never chosen


def test_span_type():
    assert span_type("What share voted yes?", "52%") == "percent"
    assert span_type("How much did it cost?", "$4 million") == "money"
    assert span_type("When did it open?", "14 May 1998") == "date"
    assert span_type("How many people came?", "240,000") == "number"
    assert span_type("How heavy is the lens?", "4.5 tonnes") == "quantity"
    assert span_type("Who designed it?", "Ellen Marsh") == "person"
    assert span_type("What was built?", "a museum") == "other"


@pytest.mark.slow
def test_dev_questions_slice_their_seed_sentences(reader):
    """Every answerable seeds dev question, read on its evidence sentence: the answer slices the file."""
    arts = {a.id: a for a in load_corpus([SEEDS])}
    n = 0
    for g in load_gold(ROOT / "eval" / "gold.jsonl"):
        if g.split != "dev" or not g.answerable:
            continue
        ev = g.evidence[0]
        a = arts[ev.article]
        sents = split_sentences(a)
        spans = quote_spans(a.text, ev.quote)
        for k, s in enumerate(sents):
            if any(s.start < qe and qs < s.end for qs, qe in spans):
                ans = extract(g.question, s.text, s.start, before=sents[k - 1].text if k else "",
                              after=sents[k + 1].text if k + 1 < len(sents) else "")
                if ans is not None:
                    _check(ans, a.text, s)
                    n += 1
    assert n >= 20


@pytest.mark.slow
def test_reader_path_imports_no_torch():
    code = ("import sys; from qa.reader import extract; "
            "s = 'The museum opened in Portsmouth on 14 May 1998.'; "
            "a = extract('When did the museum open?', s, 0); assert a is not None and s[a.start:a.end] == a.text; "
            "bad = [m for m in ('torch', 'transformers', 'onnx', 'qa.extract') if m in sys.modules]; "
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_qa_reader_by_name_in_ask_and_the_cli(seeds_index, copy_index):
    """`--reader qa-reader` (library and CLI): each hit's answer is an exact slice of its source, inside the hit."""
    from typer.testing import CliRunner

    from qa.cli import app

    ans = seeds_index.ask("how many suspects were arrested in Safe Mekong?", k=3, reader="qa-reader")
    assert any(h.answer is not None for h in ans.hits)
    for h in ans.hits:
        if h.answer is not None:
            src = open(h.path, encoding="utf-8").read()
            assert src[h.answer.start:h.answer.end] == h.answer.text and h.start <= h.answer.start < h.answer.end <= h.end
    r = CliRunner().invoke(app, ["ask", "how many suspects were arrested in Safe Mekong?", "--index-dir",
                                 str(copy_index), "--reader", "qa-reader", "--json", "-k", "1"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["hits"][0]["answer"] is not None
