"""The sentence-splitting worker process of a large index build (``qa.build._split_batches``).

Run as ``python -m qa.splitworker``: reads batches of texts on stdin and writes each batch's
:func:`~qa.sentences.article_spans` on stdout, until stdin closes. A separate interpreter (not ``multiprocessing``,
which would re-run the caller's main script) so that splitting runs beside the tokenizer instead of sharing its
GIL. Frames are little-endian int64 arrays and UTF-8 bytes (``surrogatepass``: any ``str`` goes through); no pickle.

Request: ``n``, ``n`` byte lengths, the texts' bytes. Reply: ``n``, each text's first sentence number, each text's
number of sentences, then ``(start, end)`` of every sentence.

>>> req = encode_request(["Headline here\\nThe U.N. met. It ended."])
>>> decode_reply(io.BytesIO(reply(io.BytesIO(req))))
(array([0]), array([3]), array([[ 0, 13],
       [14, 27],
       [28, 37]]))
"""

from __future__ import annotations

import io
import sys
from typing import BinaryIO

import numpy as np

from .sentences import texts_spans

_I8 = np.dtype("<i8")


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if data is None or len(data) != n:
        raise EOFError(f"expected {n} bytes, got {0 if data is None else len(data)}")
    return data


def encode_request(texts: list[str]) -> bytes:
    raw = [t.encode("utf-8", "surrogatepass") for t in texts]
    lens = np.fromiter(map(len, raw), dtype=_I8, count=len(raw))
    return len(raw).to_bytes(8, "little") + lens.tobytes() + b"".join(raw)


def reply(f: BinaryIO) -> bytes | None:
    """Read one request from ``f`` and return its reply (``None`` at the end of the input)."""
    head = f.read(8)
    if not head:
        return None
    if len(head) != 8:
        raise EOFError("truncated request")
    n = int.from_bytes(head, "little")
    lens = np.frombuffer(_read(f, 8 * n), dtype=_I8).tolist()
    blob = _read(f, sum(lens))
    texts, pos = [], 0
    for ln in lens:
        texts.append(blob[pos : pos + ln].decode("utf-8", "surrogatepass"))
        pos += ln
    got = texts_spans(texts)
    firsts = np.fromiter((first for first, _ in got), dtype=_I8, count=n)
    counts = np.fromiter((len(sp) for _, sp in got), dtype=_I8, count=n)
    bounds = np.array([x for _, sp in got for pair in sp for x in pair], dtype=_I8)
    return n.to_bytes(8, "little") + firsts.tobytes() + counts.tobytes() + bounds.tobytes()


def decode_reply(f: BinaryIO) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(firsts, counts, bounds)`` of one reply: bounds is int64 ``(sentences, 2)``."""
    n = int.from_bytes(_read(f, 8), "little")
    firsts = np.frombuffer(_read(f, 8 * n), dtype=_I8).astype(np.int64)
    counts = np.frombuffer(_read(f, 8 * n), dtype=_I8).astype(np.int64)
    bounds = np.frombuffer(_read(f, 16 * int(counts.sum())), dtype=_I8).astype(np.int64).reshape(-1, 2)
    return firsts, counts, bounds


def main() -> None:
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        r = reply(inp)
        if r is None:
            return
        out.write(r)
        out.flush()


if __name__ == "__main__":
    main()
