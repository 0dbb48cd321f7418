"""Re-run the seed evaluation (dev and test, all modes) and compare it with eval/expected.json.

    .venv/bin/python eval/update_expected.py            # show old → new, change nothing
    .venv/bin/python eval/update_expected.py --write    # record the new scores (say why in the commit message)

tests/test_eval_regression.py fails when a score drops below expected.json by more than its tolerance; this
script is the only thing that writes the file. Never --write to make a drop pass: find out why it dropped.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import qa
from qa import options as qa_index  # the search defaults (qa/options.py)
from qa.embed import Encoder
from qa.eval import evaluate_gold, load_gold

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = ROOT / "eval" / "expected.json"


def expected_defaults() -> dict:
    """The settings the scores depend on: fusion defaults, the reranker and the sha256 of its trees."""
    from qa import extract
    from qa.rerank import default_confidence_model

    model = default_confidence_model()
    spec = json.loads((extract.MODELS_DIR / extract.DEFAULT_EXTRACTOR / "extractor.json").read_text(encoding="utf-8"))
    return {"fusion": qa_index.DEFAULT_FUSION, "alpha": qa_index.DEFAULT_ALPHA, "depth": qa_index.DEFAULT_DEPTH,
            "rerank": qa_index.DEFAULT_RERANK, "rerank_depth": qa_index.RERANK_DEPTH,
            "rerank_model_sha256": model.spec["files"]["model.txt"]["sha256"],
            "extract_model_sha256": spec["files"][spec["weights"]]["sha256"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    gold = load_gold(ROOT / "eval" / "gold.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        # the encoder tests/test_eval_regression.py scores with (tests/conftest.py): sentence-transformers (torch),
        # not the "auto" default of qa index (onnx int8 on the CPU), whose dense scores differ
        idx = qa.Index.build([ROOT / "seeds"], Path(tmp) / "index", encoder=Encoder(backend="torch"))
        reports = {s: evaluate_gold(idx, gold, split=s, out_dir=Path(tmp) / "runs") for s in ("dev", "test")}
    new = {
        "note": "Seed evaluation scores (ranx, from the run files) with the real model; written by "
                "eval/update_expected.py, checked by tests/test_eval_regression.py (a drop beyond the tolerance fails).",
        "model": idx.model_name,
        "defaults": expected_defaults(),
        "answerable": {s: r["gold"]["answerable"] for s, r in reports.items()},
        "splits": {s: {m: v["metrics"] for m, v in r["modes"].items()} for s, r in reports.items()},
        # the top hit's short answer (SQuAD EM / token F1 against the gold answers), per split and row
        "short_answer": {s: {m: {"EM": v["short_answer"]["EM"], "F1": v["short_answer"]["F1"]}
                             for m, v in r["modes"].items()} for s, r in reports.items()},
    }
    old = json.loads(EXPECTED.read_text(encoding="utf-8")) if EXPECTED.is_file() else {"splits": {}}
    for key, label in (("splits", ""), ("short_answer", "short ")):
        for s, modes in new[key].items():
            for m, metrics in modes.items():
                for k, v in metrics.items():
                    was = old.get(key, {}).get(s, {}).get(m, {}).get(k)
                    mark = "" if was == v else "   <-- changed"
                    print(f"{s:<5} {m:<7} {label}{k:<9} {was if was is not None else '-':>7} -> {v:.4f}{mark}")
    if args.write:
        EXPECTED.write_text(json.dumps(new, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {EXPECTED}")


if __name__ == "__main__":
    main()
