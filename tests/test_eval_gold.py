"""The gold set (eval/gold.jsonl): format, evidence found verbatim, coverage of the seeds, splits; gold loading
errors; evidence quotes → relevant sentence ids (checked by hand). No embedding model needed."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pytest

import qa
from qa.eval import GoldError, docid, load_gold, qrels_for, quote_spans, select_split

from .conftest import ROOT, SEEDS

GOLD = ROOT / "eval" / "gold.jsonl"
A = "000_8a6680b996ccc773"
B = "002_affe0ed3586086fb"
C = "003_e2b995e5acfe77ef"


class HashEncoder:
    """A stand-in encoder (no model): deterministic unit vectors from a hash of the text."""

    name = "test-hash-encoder"
    dimension = 8

    def encode(self, texts, batch_size=64, progress=None):
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, t in enumerate(texts):
            rng = np.random.default_rng(abs(hash(t)) % (2**32))
            v = rng.normal(size=self.dimension)
            out[i] = v / np.linalg.norm(v)
        return out


@pytest.fixture(scope="module")
def hash_index(tmp_path_factory):
    return qa.Index.build([SEEDS], tmp_path_factory.mktemp("hash-index"), encoder=HashEncoder())


@pytest.fixture(scope="module")
def gold():
    return load_gold(GOLD)


@pytest.fixture(scope="module")
def articles():
    return {a.id: a for a in qa.load_corpus([SEEDS])}


def test_gold_size_fields_and_splits(gold):
    raw = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(raw) == len(gold) >= 60
    for obj in raw:
        assert {"id", "question", "answers", "evidence", "split"} <= set(obj)
        assert obj["split"] in ("dev", "test")
    splits = Counter(g.split for g in gold)
    assert abs(splits["dev"] - splits["test"]) <= 0.1 * len(gold), splits
    unanswerable = [g for g in gold if not g.answerable]
    assert len(unanswerable) >= 6
    # unanswerable questions are spread over both splits, so a "no answer" threshold can be tuned on dev
    assert {g.split for g in unanswerable} == {"dev", "test"}
    assert len({g.id for g in gold}) == len(gold)


def test_question_mix(gold):
    types = Counter(g.type for g in gold)
    assert types["keyword"] >= 5 and types["paraphrase"] >= 10 and types["numeric"] >= 10
    for w in ("who", "when", "where", "which"):
        assert any(g.question.lower().startswith(w) for g in gold), w
    # keyword queries are short and not questions
    assert all(len(g.question.split()) <= 7 and not g.question.endswith("?") for g in gold if g.type == "keyword")


def test_every_quote_is_verbatim_and_every_answer_is_in_its_article(gold, articles):
    for g in gold:
        for ev in g.evidence:
            assert ev.article in articles, g.id
            assert quote_spans(articles[ev.article].text, ev.quote), (g.id, ev.quote)
        for a in g.answers:
            assert any(a.casefold() in articles[ev.article].text.casefold() for ev in g.evidence), (g.id, a)


def test_every_sentence_with_a_checkable_fact_is_covered(gold, articles):
    """Each sentence that states a number, or names a person/place/organisation beyond its first word, is the
    evidence of at least one question."""
    covered = set()
    for g in gold:
        for ev in g.evidence:
            text = articles[ev.article].text
            for s in qa.split_sentences(articles[ev.article]):
                if any(s.start < e and b < s.end for b, e in quote_spans(text, ev.quote)):
                    covered.add((s.article, s.number))
    missing = []
    for a in articles.values():
        for s in qa.split_sentences(a):
            if s.is_title:
                continue
            has_number = re.search(r"\d", s.text)
            words = re.findall(r"\w[\w'-]*", s.text)[1:]  # the first word is capitalised anyway
            has_name = any(w[0].isupper() for w in words)
            if (has_number or has_name) and (a.id, s.number) not in covered:
                missing.append((a.id, s.number, s.text[:60]))
    assert not missing


def test_select_split(gold):
    dev, test = select_split(gold, "dev"), select_split(gold, "test")
    assert len(dev) + len(test) == len(gold) == len(select_split(gold, "all"))
    assert not {g.id for g in dev} & {g.id for g in test}
    with pytest.raises(qa.QueryError):
        select_split(gold, "train")


def test_evidence_maps_to_sentence_ids_by_hand(gold, hash_index):
    qrels = qrels_for(gold, hash_index)
    by_q = {g.question: g.id for g in gold}
    # dev questions only: the test split is for reporting (`qa eval --split test`), never for unit tests
    assert qrels[by_q["tons seized in Safe Mekong"]] == {docid(A, 7): 1}
    # the sentence after the one wrapped over seed 000's lines 2-3 (the wrap itself: the next test)
    assert qrels[by_q["Apart from ASEAN members, which countries is China open to anti-drug cooperation with?"]] == {
        docid(A, 3): 1}
    # seed 002 has a headline (sentence 0), so its body sentences count from 1
    assert qrels[by_q["How many anti-drug plans did SCO leaders approve at the Astana summit?"]] == {docid(B, 13): 1}
    assert qrels[by_q["Which data technology is being applied in the fight against narcotics crime?"]] == {docid(C, 11): 1}
    # unanswerable questions have no qrels
    assert all(g.id not in qrels for g in gold if not g.answerable)
    assert len(qrels) == sum(g.answerable for g in gold)


def _write(tmp_path, lines):
    p = tmp_path / "gold.jsonl"
    p.write_text("\n".join(json.dumps(x) if isinstance(x, dict) else x for x in lines) + "\n", encoding="utf-8")
    return p


def _q(**kw):
    base = {"id": "q1", "question": "Who?", "answers": ["Wei"], "evidence": [{"article": A, "quote": "Wei said"}],
            "split": "dev"}
    base.update(kw)
    return base


def test_a_quote_across_a_wrapped_line_maps_to_its_one_sentence(tmp_path, hash_index):
    # seed 000's sentence 2 is wrapped over lines 2-3 of the file: the newline is part of the quote
    quote = "Narcotics Control Bureau of\nMinistry of Public Security"
    g = load_gold(_write(tmp_path, [_q(evidence=[{"article": A, "quote": quote}])]))
    assert qrels_for(g, hash_index) == {"q1": {docid(A, 2): 1}}
    # without the newline the quote is not verbatim: an error, not a guess
    g = load_gold(_write(tmp_path, [_q(evidence=[{"article": A, "quote": quote.replace("\n", " ")}])]))
    with pytest.raises(GoldError, match="not found verbatim"):
        qrels_for(g, hash_index)


def test_a_quote_spanning_two_sentences_makes_both_relevant(tmp_path, hash_index):
    quote = "The 34th ASOD began on Tuesday"
    prev_tail = "Office on Drugs and Crime (UNODC).\n"
    g = load_gold(_write(tmp_path, [_q(evidence=[{"article": A, "quote": prev_tail + quote}])]))
    assert qrels_for(g, hash_index) == {"q1": {docid(A, 16): 1, docid(A, 17): 1}}


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"id": "q1", "question": "x"}), "missing field(s) answers, evidence, split"),
        (_q(split="train"), "split must be 'dev' or 'test'"),
        (_q(answers=[]), "both be given, or both be empty"),
        (_q(evidence=[{"article": A}]), "needs string fields article and quote"),
        (_q(id="q 1"), "without spaces"),
        (_q(question=" "), "question must be a non-empty string"),
    ],
)
def test_bad_gold_lines_are_one_clear_error(tmp_path, line, message):
    p = _write(tmp_path, [line])
    with pytest.raises(GoldError, match=re.escape(message)) as e:
        load_gold(p)
    assert f"{p}:1" in str(e.value)


def test_duplicate_ids_and_empty_file(tmp_path):
    with pytest.raises(GoldError, match="duplicate id 'q1'"):
        load_gold(_write(tmp_path, [_q(), _q()]))
    with pytest.raises(GoldError, match="no questions"):
        load_gold(_write(tmp_path, [""]))


def test_a_quote_not_found_is_a_clear_error(tmp_path, hash_index):
    g = load_gold(_write(tmp_path, [_q(evidence=[{"article": A, "quote": "Wei  said"}])]))
    with pytest.raises(GoldError, match="not found verbatim in article 000_8a6680b996ccc773"):
        qrels_for(g, hash_index)
    g = load_gold(_write(tmp_path, [_q(evidence=[{"article": "999_missing", "quote": "Wei said"}])]))
    with pytest.raises(GoldError, match="article '999_missing' is not in the index"):
        qrels_for(g, hash_index)
