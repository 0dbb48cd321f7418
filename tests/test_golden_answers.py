"""`qa ask --json` output compared with a recorded copy: the redesign (and any refactor) must not change answers.

The recording is `tests/data/ask-golden.jsonl`: every `dev` question of eval/gold.jsonl asked through the CLI in each
retrieval configuration below, against the session's seeds index. Everything is compared exactly except floats,
compared to 6 significant digits (BLAS may sum in another order on another machine). A deliberate change of
answers re-records it: `python tests/test_golden_answers.py --record`, and the commit says why.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "data" / "ask-golden.jsonl"
CONFIGS: dict[str, list[str]] = {
    "bm25": ["--mode", "bm25"],
    "dense": ["--mode", "dense"],
    "hybrid": [],  # the default: convex fusion, reranked, short answers
    "hybrid-norerank": ["--rerank", "none"],
    "hybrid-rrf": ["--fusion", "rrf", "--rerank", "none"],
    "context": ["--context", "1", "-k", "3"],
}


def dev_questions() -> list[dict]:
    rows = [json.loads(line) for line in (ROOT / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines()]
    return [{"id": r["id"], "question": r["question"]} for r in rows if r.get("split") == "dev"]


def ask_all(index_dir: Path, questions_file: Path) -> list[dict]:
    from typer.testing import CliRunner

    from qa.cli import app

    out = []
    for name, opts in CONFIGS.items():
        r = CliRunner().invoke(app, ["ask", "--json", "--questions", str(questions_file), "--index-dir", str(index_dir),
                                     *opts])
        assert r.exit_code == 0, r.output
        for line in r.stdout.splitlines():
            # paths are absolute: recorded relative to the checkout, so that any clone compares equal
            out.append({"config": name, **json.loads(line.replace(json.dumps(str(ROOT))[1:-1], "<ROOT>"))})
    return out


def _rounded(x):
    if isinstance(x, float):
        return float(f"{x:.6g}") if math.isfinite(x) else x
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x


@pytest.mark.slow
def test_ask_json_matches_the_recorded_answers(seeds_index, tmp_path):
    qfile = tmp_path / "questions.jsonl"
    qfile.write_text("".join(json.dumps(q) + "\n" for q in dev_questions()), encoding="utf-8")
    got = ask_all(seeds_index.folder.parent, qfile)
    want = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()]
    assert len(got) == len(want) == len(CONFIGS) * len(dev_questions())
    for g, w in zip(got, want):
        assert _rounded(g) == _rounded(w), (g["config"], g.get("id"))


if __name__ == "__main__" and "--record" in sys.argv:
    import tempfile

    import qa
    from qa.embed import Encoder  # the encoder the conftest fixture uses

    with tempfile.TemporaryDirectory() as d:
        idx = qa.Index.build([ROOT / "seeds"], Path(d) / "index", encoder=Encoder(backend="torch"))
        qfile = Path(d) / "q.jsonl"
        qfile.write_text("".join(json.dumps(q) + "\n" for q in dev_questions()), encoding="utf-8")
        rows = ask_all(idx.folder.parent, qfile)
    GOLDEN.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"recorded {len(rows)} answers in {GOLDEN}")
