"""qa — cited question answering over news articles with BM25, dense and hybrid sentence retrieval.

>>> import qa                                                     # doctest: +SKIP
>>> index = qa.Index.build(["seeds"], index_dir="index")          # doctest: +SKIP
>>> index.ask("tons seized in Safe Mekong", k=1).top.citation     # doctest: +SKIP
'[000_8a6680b996ccc773 §7]'

Importing qa is cheap: torch and sentence-transformers load only when a question must be embedded.
"""

from __future__ import annotations

from ._version import __version__  # noqa: E402,F401

from .answer import Answer, Context, Hit  # noqa: E402
from .bm25 import BM25Engine, BM25Params  # noqa: E402
from .corpus import Article, load_corpus  # noqa: E402
from .errors import (  # noqa: E402
    ClusterError,
    CorpusError,
    IndexCorruptError,
    IndexFormatError,
    IndexLockedError,
    IndexWriteError,
    IndexNotFoundError,
    ModelLoadError,
    ModelMismatchError,
    QAError,
    QueryError,
)
from .index import Index  # noqa: E402
from .options import AskOptions  # noqa: E402
from .sentences import Sentence, split_sentences  # noqa: E402
from .tokens import Tokenizer, TokenizerConfig  # noqa: E402

__all__ = [
    "Answer", "Article", "AskOptions", "BM25Engine", "BM25Params", "ClusterError", "Context", "CorpusError", "Hit", "Index", "IndexCorruptError",
    "IndexFormatError", "IndexLockedError", "IndexNotFoundError", "IndexWriteError", "ModelLoadError", "ModelMismatchError", "QAError",
    "QueryError", "Sentence", "Tokenizer", "TokenizerConfig", "load_corpus", "split_sentences",
]
