"""Any Hugging Face extractive-QA model as a reader (``--reader FOLDER|NAME``): ``AutoModelForQuestionAnswering``
and its (fast) tokenizer, loaded offline from a folder or the local cache. torch and transformers are imported
here only, so naming no such reader costs nothing (``qa ask`` on the default path never imports them).

How it reads: the question and the cited sentence *with its neighbours* (``before + " " + sentence + " " +
after``) go through the model as one pair (long contexts in overlapping windows); the answer is the span
``(s, e)`` of highest ``start_logit[s] + end_logit[e]`` with ``e - s < max_answer_tokens`` whose characters lie
inside the cited sentence (the neighbours are read, never cited), widened to whole words (a span never starts or
ends inside a word split into pieces) and mapped back to source offsets through the tokenizer's character
offsets. No answer (``None``) when that best span does not beat the model's own no-answer
score (the ``[CLS]`` token's start + end logits, as SQuAD 2.0 models are trained to use). ``score`` is the
span's probability under the window's start and end softmaxes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..answer import ShortAnswer
from ..modelfiles import _offline
from .questions import answer_type
from .passage import Passage, ReaderError

MAX_ANSWER_TOKENS = 30
MAX_LENGTH = 384
STRIDE = 128


class HFReader:
    """A Hugging Face ``AutoModelForQuestionAnswering`` (folder or cached name), CPU, one batch per passage."""

    def __init__(self, name: str, *, max_answer_tokens: int = MAX_ANSWER_TOKENS, max_length: int = MAX_LENGTH,
                 stride: int = STRIDE):
        self.name = name
        self.max_answer_tokens = max_answer_tokens
        _offline()
        try:
            import torch
            from transformers import AutoModelForQuestionAnswering, AutoTokenizer
        except ImportError as e:  # pragma: no cover - a broken install
            raise self._error(e) from None
        p = Path(name).expanduser()
        src = str(p) if p.is_dir() else name
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(src, local_files_only=True)
            if not getattr(self.tokenizer, "is_fast", False):
                raise ValueError("its tokenizer has no fast (Rust) version, which the character offsets need")
            self.model = AutoModelForQuestionAnswering.from_pretrained(src, local_files_only=True)
        except Exception as e:  # anything: OSError, ValueError, HF errors...
            raise self._error(e) from None
        self.model.eval()
        self._torch = torch
        limit = getattr(self.model.config, "max_position_embeddings", None) or max_length
        self.max_length = int(min(max_length, limit, getattr(self.tokenizer, "model_max_length", max_length)))
        self.stride = min(stride, self.max_length // 2)
        self._inputs = [k for k in ("input_ids", "attention_mask", "token_type_ids")
                        if k in self.tokenizer.model_input_names]

    def _error(self, e: BaseException) -> ReaderError:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return ReaderError(f"cannot load reader {self.name!r} offline ({msg}); pass --reader qa-extract, none, or a "
                           "Hugging Face extractive-QA model folder")

    def read(self, question: str, passages: Sequence[Passage]) -> list[ShortAnswer | None]:
        atype = answer_type(question) or "other"
        return [self._read(question, p, atype) for p in passages]

    def _read(self, question: str, p: Passage, atype: str) -> ShortAnswer | None:
        if not p.text.strip() or not question.strip():
            return None
        lo = len(p.before) + 1 if p.before else 0  # the sentence's characters in the context: [lo, hi)
        hi = lo + len(p.text)
        context = (p.before + " " if p.before else "") + p.text + (" " + p.after if p.after else "")
        q_ids = self.tokenizer(question, add_special_tokens=False)["input_ids"]
        if len(q_ids) > self.max_length // 3:  # a long question would leave no room for the context windows
            question = self.tokenizer.decode(q_ids[: self.max_length // 3])
        enc = self.tokenizer(question, context, truncation="only_second", max_length=self.max_length,
                             stride=self.stride, return_overflowing_tokens=True, return_offsets_mapping=True,
                             padding=True, return_tensors="pt")
        with self._torch.no_grad():
            out = self.model(**{k: enc[k] for k in self._inputs if k in enc})
        starts = out.start_logits.float().numpy()
        ends = out.end_logits.float().numpy()
        offsets = enc["offset_mapping"].numpy()
        best: tuple[float, float, int, int] | None = None  # (score, probability, char start, char end)
        for w in range(starts.shape[0]):
            seq = enc.sequence_ids(w)
            ok = np.array([sid == 1 for sid in seq]) & (offsets[w, :, 0] >= lo) & (offsets[w, :, 1] <= hi) & (
                offsets[w, :, 1] > offsets[w, :, 0])
            if not ok.any():
                continue
            s_l, e_l = starts[w].astype(np.float64), ends[w].astype(np.float64)
            pair = s_l[:, None] + e_l[None, :]
            n = len(s_l)
            band = np.triu(np.ones((n, n), dtype=bool)) & ~np.triu(np.ones((n, n), dtype=bool), self.max_answer_tokens)
            pair = np.where(band & ok[:, None] & ok[None, :], pair, -np.inf)
            k = int(np.argmax(pair))
            s, e = divmod(k, n)
            score = float(pair[s, e])
            if not np.isfinite(score) or score <= s_l[0] + e_l[0]:  # the no-answer score ([CLS])
                continue
            mask = enc["attention_mask"][w].numpy().astype(bool)
            prob = float(np.exp(s_l[s] - _logsumexp(s_l[mask])) * np.exp(e_l[e] - _logsumexp(e_l[mask])))
            if best is None or score > best[0]:
                s, e = _whole_words(enc.word_ids(w), ok, s, e)
                best = (score, prob, int(offsets[w, s, 0]), int(offsets[w, e, 1]))
        if best is None:
            return None
        a, b = best[2] - lo, best[3] - lo
        while a < b and p.text[a].isspace():
            a += 1
        while b > a and p.text[b - 1].isspace():
            b -= 1
        if a >= b:
            return None
        return ShortAnswer(p.text[a:b], p.start + a, p.start + b, atype, round(best[1], 6))


def _whole_words(word_ids: list[int | None], ok: np.ndarray, s: int, e: int) -> tuple[int, int]:
    """Widen the token span ``[s, e]`` to whole words (a start or end on a word piece: "##53" of "2,534")."""
    while s > 0 and ok[s - 1] and word_ids[s - 1] is not None and word_ids[s - 1] == word_ids[s]:
        s -= 1
    while e + 1 < len(word_ids) and ok[e + 1] and word_ids[e + 1] is not None and word_ids[e + 1] == word_ids[e]:
        e += 1
    return s, e


def _logsumexp(x: np.ndarray) -> float:
    m = float(np.max(x))
    return m + float(np.log(np.sum(np.exp(x - m))))
