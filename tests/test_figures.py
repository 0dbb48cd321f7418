"""Every figure has one source of truth: the benchmark result file that measured it. Prose elsewhere (README.md,
docs/, eval/README.md, pyproject.toml comments, docstrings and help texts in qa/) either names that file or states
the figure exactly as it is there (issue 21: rerank 6.1 vs 6.6 ms, cold ask 0.38 vs 0.46 s, "~3x" vs "~4x" onnx
speed-up in four places).

Each ``Figure`` reads its values from its benchmark file (a regular expression with named groups) and lists the
phrases elsewhere that state them; a phrase that is missing, or states another value, fails the test. When a
benchmark is re-run, update the phrases it names (the failure says which).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from .conftest import ROOT


@dataclass(frozen=True)
class Figure:
    name: str
    source: str  # the benchmark file
    patterns: tuple[str, ...]  # named groups: the figures, read from ``source``
    claims: tuple[tuple[str, str], ...]  # (file, pattern with some of the same named groups), each must match


EMBED = "benchmarks/EMBED-ONNX.md"
RERANK = "benchmarks/RERANK.md"
FIGURES = (
    Figure(
        "qa's onnx int8 embedding throughput, its ratio to sentence-transformers and its MRR cost", EMBED,
        (r"\| \*\*qa onnx\*\*[^|]*\| (?P<rate>[\d,]+) \| (?P<ratio>[\d.]+)× \|[^|]*\|[^|]*\|[^|]*\| (?P<dmrr>[-+]\d\.\d+) \|",
         r"\| torch fp32 \(sentence-transformers\), batch \d+ \| (?P<torch>[\d,]+) \| 1\.00× \|",
         r"ONNX export \(one time, cached\): (?P<export>[\d.]+) s"),
        (("README.md", r"(?P<rate>[\d,]+) sentences/s\s+against sentence-transformers' PyTorch float32 (?P<torch>[\d,]+) "
                       r"at its best batch size \((?P<ratio>[\d.]+)x, best rounds\), for (?P<dmrr>[-+]?\d\.\d+)\s+MRR@10"),
         ("README.md", r"on first use \((?P<export>[\d.]+) s in `benchmarks/EMBED-ONNX.md`"),
         ("docs/scale.md", r"\| (?P<rate>[\d,]+) sentences/s → \d+ per core \((?P<ratio>[\d.]+)× sentence-transformers' "
                           r"(?P<torch>[\d,]+) in the same run\)"),
         ("docs/scale.md", r"with qa's int8 ONNX backend \((?P<ratio>[\d.]+)×, `benchmarks/EMBED-ONNX.md`\): 210 / (?P=ratio)"),
         ("docs/scale.md", r"int8 (?P<rate>[\d,]+)/s against float32 (?P<torch>[\d,]+)/s in one run")),
    ),
    Figure(
        "the rerank stage's latency (20 candidates, 10k sentences)", RERANK,
        (r"\| rerank stage: features \+ trees \+ calibration \| (?P<p50>[\d.]+) ms \| (?P<p95>[\d.]+) ms \|",),
        (("docs/scale.md", r"\| rerank features \+ trees \(20 candidates\) \| \*\*(?P<p50>[\d.]+) ms p50\*\* \((?P<p95>[\d.]+) p95\)"),
         ("docs/scale.md", r"\| (?P<p50>[\d.]+) ms rerank, "),
         ("eval/README.md", r"takes \*\*(?P<p50>[\d.]+) ms p50\*\* for 20 candidates"),
         ("eval/README.md", r"\| (?P<p50>[\d.]+) ms \(`benchmarks/RERANK.md`\)")),
    ),
    Figure(
        "short answers' latency (5 hits)", RERANK,
        (r"\| short answers of the 5 hits[^|]*\| (?P<p50>[\d.]+) ms \| (?P<p95>[\d.]+) ms \|",),
        (("docs/scale.md", r"ms rerank, (?P<p50>[\d.]+) ms short answers"),
         ("docs/scale.md", r"\| short answers \(5 hits\) \| \*\*(?P<p50>[\d.]+) ms p50\*\* \((?P<p95>[\d.]+) p95\)")),
    ),
    Figure(
        "a cold `qa ask` on the seeds", RERANK,
        (r"\| hybrid, light numpy query encoder \(default\) \|[^|]*\| (?P<light>[\d.]+) \|",
         r"\| hybrid, `QA_QUERY_ENCODER=torch` \(sentence-transformers\) \|[^|]*\| (?P<torch>[\d.]+) \|",
         r"\| hybrid, `--rerank none` \|[^|]*\| (?P<none>[\d.]+) \|"),
        (("eval/README.md", r"with reranking takes \*\*(?P<light>[\d.]+) s\*\*"),
         ("eval/README.md", r"(?P<none>[\d.]+) s with `--rerank none`, (?P<torch>[\d.]+) s\s+through torch")),
    ),
)

ASK = "benchmarks/ASK.md"
SERVE = "benchmarks/SERVE.md"
FIGURES += (
    Figure(
        "one uncached question on the default path (issue 20; the run against 3aaf632)", ASK,
        (r"\| seeds \([^)]*\) \| now \| (?P<seeds>[\d.]+) \|[^\n]*\| (?P<xs>[\d.]+)× faster \|\n\| 100k[^|]*\| base-3aaf632",
         r"\| 100k \([^)]*\) \| now \| (?P<k100>[\d.]+) \|[^\n]*\| (?P<xk>[\d.]+)× faster \|"),
        (("README.md", r"takes \*\*(?P<seeds>[\d.]+) ms\*\*\s+p50 on the seeds and \*\*(?P<k100>[\d.]+) ms\*\* on a 100k"),
         ("README.md", r"(?P<xs>[\d.]+)× and (?P<xk>[\d.]+)× faster than commit")),
    ),
    Figure(
        "qa serve --cache 0 on 2 workers, concurrency 8", SERVE,
        (r"\| seeds \| [\d,]+ \| workers=2 cache=off \| 8 \| [\d,]+ \| (?P<rps>\d+) \| [\d.]+ \| (?P<p99>[\d.]+) \|",),
        (("README.md", r"answers (?P<rps>\d+) new questions/s on the seeds \(p99 (?P<p99>[\d.]+) ms"),),
    ),
)

FIGURES += (
    Figure(
        "BM25 top-10 latency at 1M against bm25s and rank-bm25", "benchmarks/RESULTS.md",
        (r"\| 1M \| (?P<qa>[\d.]+) / [\d.]+ \| (?P<bm25s>[\d.]+) / [\d.]+ \| (?P<ratio>[\d.]+)× \((?P<inter>[\d.]+)× interleaved\)",
         r"\| 1M \| [\d.]+ / [\d.]+ \| [\d.]+ / [\d.]+ \| [\d.]+ \| (?P<rank>[\d.]+) \(\d+\) \|"),
        (("README.md", r"BM25 top-10 p50 (?P<qa>[\d.]+) ms at 1M sentences, (?P<ratio>[\d.]+)× faster than bm25s in its\s+"
                       r"fastest setting \(numba, float32, its own token ids: (?P<bm25s>[\d.]+) ms; (?P<inter>[\d.]+)× timed "
                       r"query-interleaved\) in the same run, with the\s+exact top-10 \(rank-bm25 (?P<rank>[\d.]+) ms\)"),),
    ),
)

# where a speed-up is claimed without a benchmark behind it ("~4x faster"): prose must name the file instead
PROSE = ("README.md", "pyproject.toml", "eval/README.md", "docs/*.md", "qa/*.py")
APPROXIMATE_SPEEDUP = re.compile(r"~\s?\d+(?:\.\d+)?\s?[x×]")


def _values(text: str, pattern: str) -> list[dict[str, str]]:
    return [{k: v.replace(",", "") for k, v in m.groupdict().items()} for m in re.finditer(pattern, text)]


@pytest.mark.parametrize("fig", FIGURES, ids=[f.name for f in FIGURES])
def test_figure_agrees_with_its_benchmark(fig):
    src = (ROOT / fig.source).read_text(encoding="utf-8")
    truth: dict[str, str] = {}
    for p in fig.patterns:
        found = _values(src, p)
        assert found, f"{fig.source} no longer states {p!r}: update tests/test_figures.py and the phrases it names"
        truth.update(found[0])
    wrong = []
    for path, pattern in fig.claims:
        found = _values((ROOT / path).read_text(encoding="utf-8"), pattern)
        if not found:
            wrong.append(f"{path}: no phrase {pattern!r}")
        for got in found:
            diff = {k: (v, truth[k]) for k, v in got.items() if v != truth[k]}
            if diff:
                wrong.append(f"{path}: {diff} (stated, {fig.source})")
    assert not wrong, "\n".join(wrong)


def test_no_approximate_speedup_beside_the_embedding_backends():
    """"~3x" / "~4x faster" for the onnx backend disagreed between four files: name benchmarks/EMBED-ONNX.md."""
    bad = []
    for pattern in PROSE:
        for path in sorted(ROOT.glob(pattern)):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if APPROXIMATE_SPEEDUP.search(line) and re.search(r"onnx|torch|sentence-transformers", line, re.I):
                    bad.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not bad, "\n".join(bad)


def test_the_checks_can_fail():
    fig = next(f for f in FIGURES if f.source == ASK)
    text = "takes **6.1 ms**\np50 on the seeds and **13.27 ms** on a 100k"
    assert _values(text, fig.claims[0][1]) == [{"seeds": "6.1", "k100": "13.27"}]
    assert APPROXIMATE_SPEEDUP.search("onnx (int8 onnxruntime, CPU, ~4x faster)")
