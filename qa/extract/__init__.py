"""Stage 7 — short answers: the phrase inside a cited sentence that answers the question.

``extract("How many suspects were arrested in Safe Mekong?", sentence, start)`` returns the span ``2,534`` of the
Safe Mekong sentence (type ``number``) with its offsets in the source file; the sentence stays the proof.

Method (answer-type classification + candidate extraction + a learned span scorer):

1. **Answer type** (:func:`answer_type`): :func:`qa.features.question_type`'s coarse classes (Li & Roth 2002)
   refined by the question's wording into :data:`ANSWER_TYPES`: ``money`` / ``percent`` / ``quantity`` (a
   measure with its unit) / ``number`` (a count) inside number questions, ``organisation`` vs ``person`` and
   ``place`` from the wh-phrase's head noun ("which agency", "what province"). Why / how-did / describe /
   explain questions ask for no checkable fact: ``None`` (see :func:`answer_type` for the exact list).
2. **Candidates**: every token span of the sentence up to :data:`MAX_SPAN` tokens that starts and ends on a
   word, a number, a currency sign or ``%`` (never on a stopword or dangling punctuation; a date may start with
   "between"/"from") and has a word the question does not have (a span whose every word is in the question is
   not an answer: Rajpurkar et al. 2016, "SQuAD", §5; Hovy et al. 2001's pattern-based QA likewise).
3. **Scoring**: the unlexicalised core of Rajpurkar et al. 2016's logistic-regression baseline (length,
   boundary words, closeness to the question's matched words), without the parse. :data:`FEATURES` per span:
   shape (number, year, month, weekday, percent, currency, unit, capitalised name run, acronym, organisation
   word), closeness (matched question words — Snowball stems — within 3 and 10 tokens on each side, the
   contiguous matched block next to it, the distance to the nearest, which side they lie on against whether the
   wh-phrase is the question's subject or object), the wh-phrase's words next to the span ("how many *drug
   cases*" → the number just before "drug cases"), and whether the question words the sentence lacks are in the
   neighbouring sentence (``before``/``after``: the answer then tends to sit at that edge); plus the
   closed-class word or word shape (:data:`LEXICON`, incl. suffix shapes such as ``-ing``/``-tion``, a cheap
   part-of-speech proxy) just before, first in, last in and just after the span. Score = per-answer-type
   linear weights + boundary-word tables + one ReLU layer of 16 units over the features and the type's one-hot
   (the interactions add 1.5 points F1 over a linear scorer with the same features on the tune validation fold:
   ``eval/short-answers.md``). The weights (model folder ``qa/models/qa-extract``: safetensors + sha256-listed
   ``extractor.json`` + model card; :func:`default_weights`) are
   fitted by ``eval/short_answers.py fit`` — softmax over each question's candidates, the target being the
   candidates of best token F1 against the gold answers, L2-penalised, L-BFGS — on the **tune half** of SQuAD
   v1.1 dev only (even-numbered articles, ``qa.eval.squad.article_halves``); the held-out half is for reporting.
4. **Units and heads**: a ``quantity`` answer that is a bare number directly followed by a unit keeps the unit
   ("how many tons" → ``5.6 tons``), as the issue asks (SQuAD's annotators mostly drop it: −0.2 points F1
   there); a ``number`` answer that runs on from the number is not cut just before the question's head noun
   (``2,534 drug crime`` → ``2,534 drug crime suspects``).

The returned span always lies inside the sentence, is non-empty, equals ``sentence_text[start - sentence_start :
end - sentence_start]`` and never starts or ends with whitespace or punctuation other than a currency sign,
``%`` or an abbreviation's own dot (``U.S.``).

>>> s = "China initiated the Safe Mekong operation in June, during which 2,534 drug crime suspects were arrested."
>>> extract("How many suspects were arrested in Safe Mekong?", s, 100).to_dict()
{'text': '2,534 drug crime suspects', 'start': 164, 'end': 189, 'type': 'number'}
>>> extract("On what date did the minister open the bridge?", "The minister opened the bridge on October 14.", 0).text
'October 14'
>>> extract("Why did China start the operation?", s, 0) is None
True

Modules: ``questions.py`` (answer types, question analysis), ``words.py`` (tokens, stems, word lists, the
boundary-word lexicon), ``candidates.py`` (candidate spans and their features), ``model.py`` (the scorer and its
checksummed weights), ``extractor.py`` (:func:`extract`: the best span of one sentence), ``reader.py`` (the
:class:`Reader` protocol and :func:`load_reader`: ``qa-extract``, ``none``, registered names; ``passage.py``: what a
reader reads) and ``hf.py`` (any
Hugging Face extractive-QA model as a reader; torch and transformers are imported there only), ``lists.py``
(list answers: several spans for "which countries ..." questions, across the top sentences of one article).
"""

from __future__ import annotations

from ..answer import ShortAnswer
from .candidates import _F, FEATURES, MAX_SPAN, _Spans, candidates  # noqa: F401  (_F, _Spans: eval/short_answers.py)
from .extractor import extract
from .model import (
    DEFAULT_EXTRACTOR, EXTRACTOR_FORMAT, EXTRACTOR_FORMAT_VERSION, MODELS_DIR, WEIGHT_NAMES, ExtractorError, _scores,
    default_weights, load_weights, weight_shapes,
)  # noqa: F401  (_scores: eval/short_answers.py)
from .questions import ANSWER_TYPES, _question, _Question, answer_type  # noqa: F401  (eval/short_answers.py)
from .lists import ListItem, is_list_question, list_answer, list_items
from .reader import (
    DEFAULT_READER, NO_READER, ExtractReader, NoReader, Passage, Reader, ReaderError, load_reader, reader_names,
    register_reader,
)
from .words import LEXICON, tokenize

__all__ = ["ANSWER_TYPES", "DEFAULT_EXTRACTOR", "DEFAULT_READER", "EXTRACTOR_FORMAT", "EXTRACTOR_FORMAT_VERSION",
           "FEATURES", "LEXICON", "MAX_SPAN", "MODELS_DIR", "NO_READER", "WEIGHT_NAMES", "ExtractReader",
           "ExtractorError", "ListItem", "NoReader", "Passage", "Reader", "ReaderError", "ShortAnswer", "answer_type",
           "candidates", "default_weights", "extract", "is_list_question", "list_answer", "list_items", "load_reader",
           "load_weights", "reader_names", "register_reader", "tokenize", "weight_shapes"]
