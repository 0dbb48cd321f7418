"""Compare sentence segmenters on the cases issue 2 requires, and on speed over SQuAD paragraphs.

    python -m benchmarks.segmenters [--squad ../shared/data/squad-dev-v1.1.json]

Every segmenter gets the same input as qa gives blingfire: one paragraph at a time, wrapped lines joined
(a single newline becomes a space, so offsets are unchanged). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from benchmarks.common import DEFAULT_SQUAD, ROOT

SEEDS = ROOT / "seeds"


def blingfire_spans(t: str) -> list[tuple[int, int]]:
    import blingfire

    return list(blingfire.text_to_sentences_and_offsets(t)[1])


def pysbd_spans(t: str) -> list[tuple[int, int]]:
    import pysbd

    seg = pysbd.Segmenter(language="en", clean=False, char_span=True)
    return [(s.start, s.end) for s in seg.segment(t)] if t.strip() else []


def syntok_spans(t: str) -> list[tuple[int, int]]:
    import syntok.segmenter as sseg

    out = []
    for para in sseg.analyze(t):
        for sent in para:
            toks = list(sent)
            out.append((toks[0].offset, toks[-1].offset + len(toks[-1].value)))
    return out


SEGMENTERS = {"blingfire": blingfire_spans, "pysbd": pysbd_spans, "syntok": syntok_spans}


def sentences(fn, text: str) -> list[str]:
    flat = re.sub(r"[\r\n]", " ", text)
    return [text[s:e].strip() for s, e in fn(flat) if text[s:e].strip()]


def cases() -> dict[str, tuple[str, list[str]]]:
    s000 = (SEEDS / "000_8a6680b996ccc773.txt").read_text(encoding="utf-8").splitlines()
    s002 = (SEEDS / "002_affe0ed3586086fb.txt").read_text(encoding="utf-8").splitlines()
    s003 = (SEEDS / "003_e2b995e5acfe77ef.txt").read_text(encoding="utf-8").splitlines()
    cut = s002[13].index("Astana.")
    return {
        "000 lines 2-3 wrapped: one sentence": ("\n".join(s000[1:3]), ["\n".join(s000[1:3])]),
        "U.N. inside a sentence": (s000[16] + " " + s000[17], [s000[16], s000[17]]),
        "U.S. inside, then U.S. at the end": (
            "Officials met the U.S. delegation. He moved to the U.S. He liked it.",
            ["Officials met the U.S. delegation.", "He moved to the U.S.", "He liked it."],
        ),
        "5.55 (003 line 5)": (s003[4], [s003[4]]),
        "2,907.7 (002 line 15)": (s002[14], [s002[14]]),
        '..." he said. stays whole': (s002[3] + " " + s002[4], [s002[3], s002[4]]),
        "002 line 14: two sentences": (s002[13], [s002[13][: cut + 7], s002[13][cut + 8 :]]),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--squad", default=DEFAULT_SQUAD)
    args = ap.parse_args(argv)
    paras: list[str] = []
    if Path(args.squad).is_file():
        data = json.loads(Path(args.squad).read_text(encoding="utf-8"))
        paras = [p["context"] for a in data["data"] for p in a["paragraphs"]]
    rows = []
    for name, fn in SEGMENTERS.items():
        passed = []
        for label, (text, want) in cases().items():
            got = sentences(fn, text)
            passed.append((label, got == want))
        speed = n_sent = ""
        if paras:
            t0 = time.perf_counter()
            n = sum(len(sentences(fn, p)) for p in paras)
            dt = time.perf_counter() - t0
            speed, n_sent = f"{sum(map(len, paras)) / dt / 1e6:.2f}", str(n)
        rows.append((name, passed, speed, n_sent))
    labels = [label for label, _ in rows[0][1]]
    print("| case | " + " | ".join(r[0] for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for i, label in enumerate(labels):
        print(f"| {label} | " + " | ".join("ok" if r[1][i][1] else "**fail**" for r in rows) + " |")
    print("| cases passed | " + " | ".join(f"{sum(ok for _, ok in r[1])}/{len(labels)}" for r in rows) + " |")
    if paras:
        print(f"| SQuAD dev sentences ({len(paras)} paragraphs) | " + " | ".join(r[3] for r in rows) + " |")
        print("| speed, M chars/s | " + " | ".join(r[2] for r in rows) + " |")


if __name__ == "__main__":
    main()
