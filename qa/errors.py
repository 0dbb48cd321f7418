"""The exceptions qa raises. Every one is a :class:`QAError`, so callers can catch one type.

The CLI prints ``str(error)`` as a single line and exits non-zero; messages are written to be read by a person.
"""

from __future__ import annotations


class QAError(Exception):
    """Base class of every error qa raises on purpose."""

    exit_code = 1


class CorpusError(QAError):
    """A source path or file cannot be turned into articles (missing, unreadable, empty, binary, not UTF-8)."""

    exit_code = 3


class IndexNotFoundError(QAError):
    """No index exists at the given folder."""

    exit_code = 4


class IndexFormatError(QAError):
    """The index was written by an incompatible format version."""

    exit_code = 4


class IndexCorruptError(QAError):
    """A file of the index is missing, truncated or altered (checksum mismatch)."""

    exit_code = 4


class ModelMismatchError(QAError):
    """The index was built with another embedding model than the one asked for."""

    exit_code = 4


class IndexWriteError(QAError):
    """The index folder cannot be created or written (a file in the way, permissions, disk full).

    Raised before ``CURRENT`` moves, so the previous index stays live and unchanged.
    """

    exit_code = 4


class IndexLockedError(QAError):
    """Another process is building the same index."""

    exit_code = 5


class ModelLoadError(QAError):
    """The embedding model cannot be loaded (offline, wrong path, not a sentence-transformers model)."""

    exit_code = 6


class QueryError(QAError):
    """A question or a search parameter cannot be used (empty, no searchable words, bad k or mode)."""

    exit_code = 2


class StoreError(QAError):
    """The index's store cannot be used: a Milvus server unreachable, credentials refused, a Milvus Lite file
    opened by another process, or a Milvus call failing."""

    exit_code = 7


class ClusterError(QAError):
    """``qa index --ray``: Ray is not installed, the cluster cannot be started or reached, or embedding on it failed."""

    exit_code = 8
