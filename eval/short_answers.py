"""Short answers (issue 9): how well ``qa.extract.extract`` finds the answering phrase, given the gold sentence.

Usage (from the repository root)::

    .venv/bin/python eval/short_answers.py [--squad ../shared/data/squad-dev-v1.1.json] [--out eval/short-answers.md]
    .venv/bin/python eval/short_answers.py fit [--squad ...] [--folds]   # refit the model qa/models/qa-extract (tune half)

Metrics are SQuAD v1.1's official ones (``evaluate-v1.1.py``): answers normalised (lowercase, punctuation and the
articles a/an/the removed, whitespace collapsed); exact match and token F1, each the max over the gold answers;
a ``None`` prediction scores 0 on both. They are computed **given the gold sentence**:

* SQuAD v1.1 dev, each paragraph split by qa's splitter (``qa.sentences.split_sentences`` on a
  ``qa.corpus.Article``); the gold sentence is the one holding the question's first ``answer_start`` (on the
  space between two sentences: the next one, as in ``qa.eval.squad.build_task``); ``before``/``after`` are its
  neighbours in the paragraph. Reported on the tune half (even-numbered articles, where the weights were fitted
  and every choice was made) and the held-out half (odd-numbered, reporting only) — ``qa.eval.squad.article_halves``;
* the gold set ``eval/gold.jsonl``: each answerable question's evidence quote locates its sentence in
  ``seeds/<article>.txt`` (the first sentence of ``split_sentences`` overlapping the quote that holds a gold
  answer, else the first overlapping one); answers are the ``answers`` field. **Dev split only**: the test split is
  for reporting, end to end, from ``qa eval --split test`` alone (never read here).

Rows are the question's answer type (``qa.extract.answer_type``; ``no fact`` = the questions it answers
``None`` to). ``fit`` refits the linear scorer on the tune half (softmax over each question's candidates, target
= the candidates of best F1) and writes the model folder ``qa/models/qa-extract`` (safetensors + ``extractor.json``); ``--folds`` instead
fits on tune folds 1–4 and reports fold 0 (``qa.eval.squad.tune_folds``), the validation used to choose features.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa import extract as ex  # noqa: E402
from qa.corpus import Article, load_corpus  # noqa: E402
from qa.modelfiles import sha256_file  # noqa: E402
from qa.eval import (  # noqa: E402,F401
    HELD_OUT, TUNE, article_halves, em_f1, load_gold, load_squad, normalize_answer, quote_spans, tune_folds,
)
from qa.sentences import split_sentences  # noqa: E402

SQUAD = ROOT.parent / "shared" / "data" / "squad-dev-v1.1.json"
GOLD = ROOT / "eval" / "gold.jsonl"
OUT = ROOT / "eval" / "short-answers.md"
ROW_ORDER = (*ex.ANSWER_TYPES, "no fact")
NUMERIC = frozenset({"number", "quantity", "money", "percent", "date"})  # the "number and date questions"


# -- SQuAD's official normalisation and scores: qa.eval.metrics' (one implementation, also used by `qa eval`) -----
score = em_f1


# -- data ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """One question with its gold sentence (offsets into its source text) and gold answers."""

    id: str
    question: str
    golds: tuple[str, ...]
    sentence: str
    start: int
    before: str
    after: str
    group: str  # "tune" / "held-out" (SQuAD) or "dev" / "test" (gold set)
    fold: int = -1  # tune-half CV fold (SQuAD tune questions), else -1


def squad_items(path: str | Path = SQUAD) -> list[Item]:
    """SQuAD dev questions with their gold sentences, split by qa's splitter."""
    paragraphs = load_squad(path)
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    texts = {str(q["id"]): tuple(a["text"] for a in q.get("answers", ()))
             for art in raw["data"] for p in art["paragraphs"] for q in p["qas"]}
    halves, folds = article_halves(paragraphs), tune_folds(paragraphs)
    out = []
    for p in paragraphs:
        sents = split_sentences(Article(p.id, p.text))
        starts = [s.start for s in sents]
        for q in p.questions:
            if q.impossible:
                continue
            pos = q.answer_starts[0]
            i = bisect.bisect_right(starts, pos) - 1
            if i < 0 or pos >= sents[i].end:
                i += 1
            s = sents[i]
            out.append(Item(q.id, q.question, texts[q.id], s.text, s.start, sents[i - 1].text if i > 0 else "",
                            sents[i + 1].text if i + 1 < len(sents) else "", halves[p.title], folds.get(p.title, -1)))
    return out


def gold_items(path: str | Path = GOLD, seeds: str | Path = ROOT / "seeds") -> list[Item]:
    """Answerable gold-set questions with the seed sentence their evidence quote lies in."""
    arts = {a.id: a for a in load_corpus([seeds])}
    out = []
    for g in load_gold(path):
        if not g.answerable:
            continue
        ev = g.evidence[0]
        a = arts[ev.article]
        sents = split_sentences(a)
        spans = quote_spans(a.text, ev.quote)
        hits = [k for k, s in enumerate(sents) if any(s.start < qe and qs < s.end for qs, qe in spans)]
        with_answer = [k for k in hits if any(x in sents[k].text for x in g.answers)]
        k = (with_answer or hits)[0]
        s = sents[k]
        out.append(Item(g.id, g.question, g.answers, s.text, s.start, sents[k - 1].text if k > 0 else "",
                        sents[k + 1].text if k + 1 < len(sents) else "", g.split))
    return out


# -- evaluation ---------------------------------------------------------------------------------------------------
def predict(item: Item, context: bool = True, weights: dict | None = None) -> ex.ShortAnswer | None:
    if context:
        return ex.extract(item.question, item.sentence, item.start, before=item.before, after=item.after,
                          weights=weights)
    return ex.extract(item.question, item.sentence, item.start, weights=weights)


def evaluate(items: Iterable[Item], context: bool = True, weights: dict | None = None) -> dict[str, dict[str, float]]:
    """Per answer-type row (plus ``number+date``: the number, quantity, money, percent and date rows together,
    and ``all``): n, EM, F1 and the share of ``None``."""
    acc: dict[str, list[tuple[float, float, bool]]] = collections.defaultdict(list)
    for it in items:
        a = predict(it, context, weights)
        row = ex.answer_type(it.question) or "no fact"
        em, f1 = score(a.text if a else None, it.golds)
        acc[row].append((em, f1, a is None))
        if row in NUMERIC:
            acc["number+date"].append((em, f1, a is None))
        acc["all"].append((em, f1, a is None))
    out = {}
    for row in (*ROW_ORDER, "number+date", "all"):
        v = acc.get(row)
        if v:
            arr = np.array(v, dtype=float)
            out[row] = {"n": len(v), "em": float(arr[:, 0].mean()), "f1": float(arr[:, 1].mean()),
                        "none": float(arr[:, 2].mean())}
    return out


def table(res: dict[str, dict[str, float]]) -> str:
    lines = ["| answer type | n | EM | F1 | None |", "|---|---:|---:|---:|---:|"]
    for row, v in res.items():
        name = f"**{row}**" if row == "all" else (f"*{row}*" if row == "number+date" else row)
        lines.append(f"| {name} | {v['n']} | {v['em']:.3f} | {v['f1']:.3f} | {v['none']:.3f} |")
    return "\n".join(lines)


def timing(items: Sequence[Item], repeat: int = 1) -> float:
    """Mean milliseconds per question (warm: after one pass)."""
    for it in items[:50]:
        predict(it)
    t0 = time.perf_counter()
    for _ in range(repeat):
        for it in items:
            predict(it)
    return (time.perf_counter() - t0) * 1000 / (len(items) * repeat)


# -- fitting ------------------------------------------------------------------------------------------------------
_F1_CACHE: dict[tuple[str, str], float] = {}


def _span_f1(it: Item, text: str) -> float:
    key = (it.id, text)
    v = _F1_CACHE.get(key)
    if v is None:
        v = _F1_CACHE[key] = score(text, it.golds)[1]
    return v


def _design(items: Sequence[Item]):
    """Stack every question's candidates: features, boundary ids, type index, group offsets and targets."""
    xs, lexs, types, offs, ys = [], [], [], [0], []
    for it in items:
        atype = ex.answer_type(it.question)
        if atype is None:
            continue
        q = ex._question(it.question, atype)
        sp = ex.candidates(q, it.sentence, it.before, it.after)
        if sp is None:
            continue
        toks = sp.tokens
        f1 = np.array([_span_f1(it, it.sentence[toks[a][1]:toks[b - 1][2]]) for a, b in zip(sp.i, sp.j)])
        best = f1.max()
        if best <= 0.0:
            continue
        y = (f1 >= best - 1e-9).astype(np.float64)
        xs.append(sp.x.astype(np.float32))
        lexs.append(sp.lex)
        types.append(ex.ANSWER_TYPES.index(atype))
        offs.append(offs[-1] + len(y))
        ys.append(y / y.sum())
    return (np.concatenate(xs), np.concatenate(lexs), np.array(types), np.array(offs), np.concatenate(ys))


def fit(items: Sequence[Item] | tuple, hidden: int = 16, l2: float = 30.0, l2_lex: float = 3.0, iters: int = 200,
        seed: int = 0) -> dict:
    """Fit the scorer (``qa.extract._scores``): per-type linear weights, shared boundary-word tables and one
    ReLU layer of ``hidden`` units over the features and the answer type's one-hot; softmax loss over each
    question's candidates (target: the best-F1 candidates), L2 penalties, scipy L-BFGS from a seeded start."""
    from scipy.optimize import minimize

    X, LEX, T, OFF, Y = items if isinstance(items, tuple) else _design(items)
    nq, F, V, K, H = len(T), X.shape[1], len(ex.LEXICON), len(ex.ANSWER_TYPES), hidden
    row_type = np.repeat(T, np.diff(OFF))
    seg = np.repeat(np.arange(nq), np.diff(OFF))
    by_type = [np.flatnonzero(row_type == k) for k in range(K)]
    X_type = [X[r] for r in by_type]
    XT = np.hstack([X, np.eye(K, dtype=np.float32)[row_type]])  # features + type one-hot (hidden layer input)
    shapes = {"linear": (K, F), "lex": (4, V)}
    if H:
        shapes.update(w1=(H, F + K), b1=(H,), w2=(H,))
    sizes = {k: int(np.prod(v)) for k, v in shapes.items()}

    def unpack(theta):
        out, o = {}, 0
        for k, shp in shapes.items():
            out[k] = theta[o:o + sizes[k]].reshape(shp)
            o += sizes[k]
        return out

    calls = [0]

    def f(theta):
        calls[0] += 1
        w = unpack(theta)
        s = np.zeros(len(Y))
        for k in range(K):
            r = by_type[k]
            if len(r):
                s[r] = X_type[k] @ w["linear"][k]
        for p in range(4):
            s += w["lex"][p, LEX[:, p]]
        if H:
            z = XT @ w["w1"].T.astype(np.float32) + w["b1"].astype(np.float32)
            a = np.maximum(z, 0)
            s += a @ w["w2"].astype(np.float32)
        mx = np.maximum.reduceat(s, OFF[:-1])
        e = np.exp(s - mx[seg])
        zz = np.add.reduceat(e, OFF[:-1])
        logp = s - mx[seg] - np.log(zz[seg])
        loss = -(Y * logp).sum() / nq
        g = (e / zz[seg] - Y) / nq
        grad = {k: np.zeros(v) for k, v in shapes.items()}
        for k in range(K):
            r = by_type[k]
            if len(r):
                grad["linear"][k] = X_type[k].T @ g[r]
        grad["lex"] = np.stack([np.bincount(LEX[:, p], weights=g, minlength=V) for p in range(4)])
        if H:
            g32 = g.astype(np.float32)
            grad["w2"] = a.T @ g32
            gz = (g32[:, None] * w["w2"].astype(np.float32)) * (z > 0)
            grad["w1"] = gz.T @ XT
            grad["b1"] = gz.sum(0)
        for k in shapes:
            lam = l2_lex if k == "lex" else (0.0 if k == "b1" else l2)
            loss += 0.5 * lam * float((w[k] * w[k]).sum()) / nq
            grad[k] = grad[k] + lam * w[k] / nq
        if calls[0] % 25 == 0:
            print(f"  fit: evaluation {calls[0]}, loss {loss:.4f}", file=sys.stderr, flush=True)
        return loss, np.concatenate([grad[k].ravel() for k in shapes]).astype(np.float64)

    rng = np.random.default_rng(seed)
    theta0 = np.zeros(sum(sizes.values()))
    init = unpack(theta0)
    if H:
        init["w1"][:] = rng.normal(0, 0.1, size=shapes["w1"])
        init["w2"][:] = rng.normal(0, 0.1, size=shapes["w2"])
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # one BLAS thread: the same sums in the same order, so a refit is bit-identical
        res = minimize(f, theta0, jac=True, method="L-BFGS-B", options={"maxiter": iters})
    print(f"fit: {nq} questions, {len(Y)} candidates, loss {res.fun:.4f}, {res.nit} iterations", file=sys.stderr)
    return {k: v.astype(np.float16).astype(np.float64) for k, v in unpack(res.x).items()}


MODEL_DIR = ROOT / "qa" / "models" / ex.DEFAULT_EXTRACTOR


def write_model(w: dict, folder: Path = MODEL_DIR, training: dict | None = None) -> dict:
    """Write the fitted arrays as ``weights.safetensors`` (float32 holding float16-rounded values) and
    ``extractor.json`` (format, features, lexicon, answer types, the file's size and sha256, the training record)
    into ``folder``; ``MODEL_CARD.md`` there is kept as is. Returns the spec."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.ascontiguousarray(w[k], dtype=np.float32) for k in ex.WEIGHT_NAMES if k in w}
    path = folder / "weights.safetensors"
    save_file(arrays, str(path), metadata={"format": ex.EXTRACTOR_FORMAT})
    spec = {
        "format": ex.EXTRACTOR_FORMAT,
        "format_version": ex.EXTRACTOR_FORMAT_VERSION,
        "name": folder.name,
        "weights": path.name,
        "hidden": int(arrays["w2"].shape[0]) if "w2" in arrays else 0,
        "answer_types": list(ex.ANSWER_TYPES),
        "features": list(ex.FEATURES),
        "lexicon": list(ex.LEXICON),
        "files": {path.name: {"bytes": path.stat().st_size, "sha256": sha256_file(path)}},
        "training": training or {},
    }
    (folder / "extractor.json").write_text(json.dumps(spec, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return spec


# -- main ---------------------------------------------------------------------------------------------------------
def report(squad: Path, gold: Path, out: Path | None) -> str:
    items = squad_items(squad)
    tune = [it for it in items if it.group == TUNE]
    held = [it for it in items if it.group == HELD_OUT]
    gitems = [it for it in gold_items(gold) if it.group == "dev"]  # the test split: `qa eval --split test` only
    res = {"tune": evaluate(tune), "held": evaluate(held), "gold_dev": evaluate(gitems)}
    ms = timing(held[:1000])
    md = [
        "Generated by `.venv/bin/python eval/short_answers.py` (tables between the markers are rewritten on each "
        "run). EM / F1: SQuAD v1.1's official normalisation, max over the gold answers; `None` scores 0. Rows: the "
        "extractor's answer type for the question (`no fact`: why / how-did / describe / explain questions, answered "
        "`None` on purpose); `None` column: share of questions answered `None`. The extractor is given the gold "
        "sentence and its neighbours (`before`/`after`).",
        "",
        f"### SQuAD v1.1 dev, held-out half (odd-numbered articles; reporting only)\n\n{table(res['held'])}",
        "",
        f"### SQuAD v1.1 dev, tune half (even-numbered articles; weights fitted and choices made here)\n\n"
        f"{table(res['tune'])}",
        "",
        f"### Gold set, dev split (used in development)\n\n{table(res['gold_dev'])}",
        "",
        f"Speed: {ms:.2f} ms per question (warm, mean over 1,000 held-out questions, this machine).",
        "",
    ]
    text = "\n".join(md)
    if out is not None:
        src = out.read_text(encoding="utf-8") if out.is_file() else ""
        begin, end = "<!-- tables:begin -->", "<!-- tables:end -->"
        if begin in src and end in src:
            text_out = src[: src.index(begin) + len(begin)] + "\n" + text + src[src.index(end):]
        else:
            text_out = begin + "\n" + text + end + "\n" + src
        out.write_text(text_out, encoding="utf-8")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", nargs="?", default="report", choices=("report", "fit"))
    ap.add_argument("--squad", type=Path, default=SQUAD)
    ap.add_argument("--gold", type=Path, default=GOLD)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--no-write", action="store_true", help="print the tables only")
    ap.add_argument("--hidden", type=int, default=16, help="fit: hidden units (0: linear scorer)")
    ap.add_argument("--folds", action="store_true", help="fit: fit on tune folds 1-4, report fold 0, write nothing")
    args = ap.parse_args(argv)
    if args.command == "fit":
        items = squad_items(args.squad)
        tune = [it for it in items if it.group == TUNE]
        if args.folds:
            w = fit([it for it in tune if it.fold != 0], hidden=args.hidden)
            val = [it for it in tune if it.fold == 0]
            print(table(evaluate(val, weights=w)))
            gd = [it for it in gold_items(args.gold) if it.group == "dev"]
            print(table(evaluate(gd, weights=w)))
            return 0
        w = fit(tune, hidden=args.hidden)
        spec = write_model(w, training={
            "command": "python eval/short_answers.py fit --squad ../shared/data/squad-dev-v1.1.json",
            "data": f"SQuAD v1.1 dev, tune half (even-numbered articles, qa.eval.squad.article_halves): {len(tune)} questions",
            "objective": "softmax over each question's candidate spans, target = best-F1 candidates; L2; L-BFGS",
            "hidden": args.hidden, "seed": 0, "squad_sha256": sha256_file(args.squad)})
        print(f"model written to {MODEL_DIR} (sha256 {spec['files']['weights.safetensors']['sha256'][:12]}…)",
              file=sys.stderr)
        return 0
    print(report(args.squad, args.gold, None if args.no_write else args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
