"""Train qa's reranker and confidence model (``qa/models/qa-rerank-gbdt``) — the committed, seeded command.

    .venv/bin/python eval/train_reranker.py --squad ../shared/data/squad-dev-v1.1.json

Data (nothing else is read): the SQuAD v1.1 dev **tune half** (even-numbered articles, :func:`qa.eval.squad.article_halves`)
and the seeds gold **dev** split. The held-out half and the seeds test split are never opened here.

1. Candidates: each question's hybrid top ``RERANK_DEPTH`` (convex fusion, qa's defaults) from the ReQA index of
   all SQuAD dev paragraphs (the held-out paragraphs are distractors in that index, as in every qa run; their
   questions are not read). Label 1 for a candidate whose text is a gold sentence (ReQA protocol).
2. Features: :func:`qa.features.candidate_features`.
3. Model choice by 5-fold cross-validation over tune articles (:func:`qa.eval.squad.tune_folds`): LightGBM binary
   log-loss vs LambdaRank, and the number of boosting rounds; metric: top-1 accuracy over all tune questions.
4. Calibration of the out-of-fold raw scores → P(correct), four candidates cross-fitted over the folds: isotonic
   regression on the raw score; a logistic model over each score's place among its question's candidates, then
   isotonic (:class:`qa.rerank.RelativeCalibration`); the same with 8 evidence features; and that logistic fit
   also on the questions asked without their article, isotonic on answerable ones. Rule: top-hit ECE ≤ 0.05,
   then the highest AUROC between answerable questions and questions asked without their article.
5. "Answerable" threshold: the 4th percentile of the out-of-fold top confidence of answerable tune questions (so
   ≥ 95% keep ``answerable: true``); its effect is also shown on tune questions asked of an index without their
   articles (every other tune article dropped).
6. The final model is trained on all tune questions plus the seeds dev split with the chosen settings.

Prints the data, settings and CV metrics; writes ``model.txt`` (LightGBM text), ``reranker.json`` (features,
files with sha256, calibration, threshold, training record) and ``MODEL_CARD.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import qa  # noqa: E402
from qa.eval import load_gold, qrels_for, reliability, select_split  # noqa: E402
from qa.eval.squad import (  # noqa: E402
    TUNE, WORK_DIR, article_halves, build_task, load_squad, prepare_index, question_vectors, tune_folds,
)
from qa.features import FEATURE_NAMES, candidate_features  # noqa: E402
from qa.options import RERANK_DEPTH  # noqa: E402
from qa.modelfiles import sha256_file  # noqa: E402
from qa.rerank import (  # noqa: E402
    DEFAULT_RERANKER, RERANKER_FORMAT, RERANKER_FORMAT_VERSION, Calibration, RelativeCalibration, relative_scores,
)
from qa.train.fits import EVIDENCE_FEATURES, isotonic_fit, logistic_fit  # noqa: E402

SEED = 13
ROUNDS = (100, 200, 300, 400, 600, 800)
PARAMS = {
    "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 40, "feature_fraction": 0.8,
    "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0, "num_threads": 1, "deterministic": True,
    "force_row_wise": True, "verbose": -1,
}


def featurize(idx: qa.Index, question: str, qv: np.ndarray | None) -> tuple[np.ndarray, list[int]]:
    """Features and rows of the question's hybrid top RERANK_DEPTH (retrieval order), as qa ask computes them."""
    ans = idx.ask(question, k=RERANK_DEPTH, mode="hybrid", rerank="none", confidence=False, query_vector=qv)
    rows = [idx._row_of[(h.article, h.sentence)] for h in ans.hits]
    if qv is None:
        qv = idx.embed_query(question)
    tokens = idx.tokenizer.tokenize(question)
    idf, cands, q_words = idx.rerank_inputs(question, tokens, np.array(rows, dtype=np.int64),
                                            np.array([h.bm25_score for h in ans.hits]),
                                            np.array([h.dense_score for h in ans.hits]), qv)
    return candidate_features(question, tokens, idf, cands, q_words), rows


class Group:
    """One question's candidates: features, labels, and where it belongs."""

    def __init__(self, qid: str, X: np.ndarray, y: np.ndarray, fold: int, source: str, answerable: bool):
        self.qid, self.X, self.y, self.fold, self.source, self.answerable = qid, X, y, fold, source, answerable


def squad_groups(squad: Path, say) -> tuple[list[Group], list[Group]]:
    """Answerable tune-half groups on the full index, and unanswerable ones (tune questions whose article was
    dropped from the index: every other tune article)."""
    paragraphs = load_squad(squad)
    halves, folds = article_halves(paragraphs), tune_folds(paragraphs)
    idx = prepare_index(paragraphs, WORK_DIR)
    task = build_task(idx, paragraphs)
    vecs = question_vectors(idx, task.questions, WORK_DIR)
    title_of_q = {q.id: p.title for p in paragraphs for q in p.questions}
    qpos = {qid: i for i, (qid, _) in enumerate(task.questions)}
    cand = task.candidate_of_row
    tune_q = [(qid, q) for qid, q in task.questions if halves[title_of_q[qid]] == TUNE]
    say(f"SQuAD tune half: {sum(h == TUNE for h in halves.values())} articles, {len(tune_q)} questions "
        f"(index: {len(idx)} sentences of all {len(paragraphs)} paragraphs)")
    out = []
    for qid, q in tune_q:
        X, rows = featurize(idx, q, vecs[qpos[qid]])
        y = np.array([1.0 if cand[r] in task.qrels[qid] else 0.0 for r in rows])
        out.append(Group(qid, X, y, folds[title_of_q[qid]], "squad", True))
    tune_titles = [t for t, h in halves.items() if h == TUNE]
    dropped = set(tune_titles[1::2])
    small = idx.without_articles({p.id for p in paragraphs if p.title in dropped})
    una = []
    for qid, q in tune_q:
        if title_of_q[qid] in dropped:
            X, _ = featurize(small, q, vecs[qpos[qid]])
            una.append(Group(qid, X, np.zeros(len(X)), folds[title_of_q[qid]], "squad-dropped", False))
    say(f"unanswerable tune questions (their article left out of the index): {len(una)} from {len(dropped)} articles")
    return out, una


def seed_groups(say) -> list[Group]:
    gold = select_split(load_gold(ROOT / "eval" / "gold.jsonl"), "dev")
    work = ROOT / "eval" / "runs" / "train"
    idx = qa.Index.build([ROOT / "seeds"], work / "seeds-index")
    qrels = qrels_for(gold, idx)
    out = []
    for g in gold:
        X, rows = featurize(idx, g.question, None)
        rel = qrels.get(g.id, {})
        y = np.array([1.0 if f"{idx.sentence(r).article}§{idx.sentence(r).number}" in rel else 0.0 for r in rows])
        out.append(Group(g.id, X, y, -1, "seeds-dev", g.answerable))
    say(f"seeds dev: {len(out)} questions ({sum(g.answerable for g in out)} answerable)")
    return out


def stack(groups: list[Group]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    return (np.vstack([g.X for g in groups]), np.concatenate([g.y for g in groups]), [len(g.y) for g in groups])


def train(groups: list[Group], objective: str, rounds: int, seed: int):
    import lightgbm as lgb

    X, y, sizes = stack(groups)
    params = dict(PARAMS, objective=objective, seed=seed)
    if objective == "lambdarank":
        params.update(lambdarank_truncation_level=RERANK_DEPTH, eval_at=[1])
        data = lgb.Dataset(X, y, group=sizes, feature_name=list(FEATURE_NAMES), free_raw_data=False)
    else:
        data = lgb.Dataset(X, y, feature_name=list(FEATURE_NAMES), free_raw_data=False)
    return lgb.train(params, data, num_boost_round=rounds)


def top1(groups: list[Group], scores: list[np.ndarray]) -> tuple[float, float]:
    """Top-1 accuracy and MRR over the groups (a group without a positive candidate counts 0)."""
    acc, rr = [], []
    for g, s in zip(groups, scores):
        order = sorted(range(len(s)), key=lambda i: (-s[i], i))
        ranks = [r for r, i in enumerate(order, 1) if g.y[i] > 0]
        acc.append(1.0 if ranks and ranks[0] == 1 else 0.0)
        rr.append(1.0 / ranks[0] if ranks else 0.0)
    return float(np.mean(acc)), float(np.mean(rr))


def split_scores(model, groups: list[Group], rounds: int) -> list[np.ndarray]:
    if not groups:
        return []
    X, _, sizes = stack(groups)
    raw = model.predict(X, num_iteration=rounds, raw_score=True)
    return list(np.split(raw, np.cumsum(sizes)[:-1]))


def fit_isotonic(scores: list[np.ndarray], groups: list[Group]) -> Calibration:
    xs, ys = isotonic_fit(np.concatenate(scores), np.concatenate([g.y for g in groups]))
    return Calibration(tuple(float(v) for v in xs), tuple(float(v) for v in ys))


def fit_relative(scores: list[np.ndarray], groups: list[Group], evidence: tuple[str, ...] = ()) -> RelativeCalibration:
    shell = RelativeCalibration((0.0,) * (4 + len(evidence)), Calibration((0.0,), (0.0,)), evidence)
    R = np.vstack([shell.inputs(s, g.X) for s, g in zip(scores, groups)])
    y = np.concatenate([g.y for g in groups])
    w = logistic_fit(R, y)
    p = 1.0 / (1.0 + np.exp(-np.clip(R @ w[:-1] + w[-1], -35, 35)))
    xs, ys = isotonic_fit(p, y)
    return RelativeCalibration(tuple(float(v) for v in w),
                               Calibration(tuple(float(v) for v in xs), tuple(float(v) for v in ys)), evidence)


def fit_evidence(scores: list[np.ndarray], groups: list[Group]) -> RelativeCalibration:
    return fit_relative(scores, groups, EVIDENCE_FEATURES)


def fit_evidence_mixed(scores: list[np.ndarray], groups: list[Group], una_scores: list[np.ndarray],
                       una: list[Group]) -> RelativeCalibration:
    """The logistic part fit on answerable questions and on questions asked without their article (so its
    ranking also tells "not in the corpus"), the isotonic part on answerable questions only (so that, on them,
    a confidence of 0.8 is right about 80% of the time); isotonic is monotone, so the ranking is kept."""
    shell = RelativeCalibration((0.0,) * (4 + len(EVIDENCE_FEATURES)), Calibration((0.0,), (0.0,)), EVIDENCE_FEATURES)
    R = np.vstack([shell.inputs(s, g.X) for s, g in zip(scores + una_scores, groups + una)])
    y = np.concatenate([g.y for g in groups + una])
    w = logistic_fit(R, y)
    Ra = np.vstack([shell.inputs(s, g.X) for s, g in zip(scores, groups)])
    p = 1.0 / (1.0 + np.exp(-np.clip(Ra @ w[:-1] + w[-1], -35, 35)))
    xs, ys = isotonic_fit(p, np.concatenate([g.y for g in groups]))
    return RelativeCalibration(tuple(float(v) for v in w),
                               Calibration(tuple(float(v) for v in xs), tuple(float(v) for v in ys)), EVIDENCE_FEATURES)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=ROOT / "qa" / "models" / DEFAULT_RERANKER)
    ap.add_argument("--seed", type=int, default=SEED)

    args = ap.parse_args()
    import lightgbm as lgb

    t0 = time.perf_counter()
    say = lambda m: print(m, flush=True)  # noqa: E731
    squad, una = squad_groups(args.squad, say)
    seeds = seed_groups(say)
    n_pos = sum(int(g.y.sum() > 0) for g in squad)
    say(f"features: {len(FEATURE_NAMES)}; candidates per question: {RERANK_DEPTH}; tune questions with a gold "
        f"sentence among the candidates: {n_pos}/{len(squad)} ({n_pos / len(squad):.3f}) — the ceiling for top-1")
    base = top1(squad, [g.X[:, FEATURE_NAMES.index("fused")] for g in squad])
    say(f"hybrid retrieval order (no reranking), tune half: top-1 {base[0]:.4f}  MRR@{RERANK_DEPTH} {base[1]:.4f}")

    # -- model choice by cross-validation -------------------------------------------------------------------------
    folds = sorted({g.fold for g in squad})
    results: dict[tuple[str, int], list[list[np.ndarray]]] = {}
    oof: dict[str, dict[str, np.ndarray]] = {"binary": {}, "lambdarank": {}}
    cv: dict[str, dict[int, tuple[float, float]]] = {}
    for objective in ("binary", "lambdarank"):
        per_round = {r: [None] * len(squad) for r in ROUNDS}
        una_scores = {r: [None] * len(una) for r in ROUNDS}
        for f in folds:
            tr = [g for g in squad if g.fold != f] + seeds
            model = train(tr, objective, max(ROUNDS), args.seed)
            te_i = [i for i, g in enumerate(squad) if g.fold == f]
            ue_i = [i for i, g in enumerate(una) if g.fold == f]
            for r in ROUNDS:
                for i, s in zip(te_i, split_scores(model, [squad[i] for i in te_i], r)):
                    per_round[r][i] = s
                for i, s in zip(ue_i, split_scores(model, [una[i] for i in ue_i], r)):
                    una_scores[r][i] = s
        cv[objective] = {r: top1(squad, per_round[r]) for r in ROUNDS}
        for r in ROUNDS:
            a, m = cv[objective][r]
            f0 = [i for i, g in enumerate(squad) if g.fold == 0]
            a0, m0 = top1([squad[i] for i in f0], [per_round[r][i] for i in f0])
            say(f"CV {objective:<10} rounds {r:>4}: top-1 {a:.4f}  MRR {m:.4f}   (fold 0 alone: top-1 {a0:.4f} MRR {m0:.4f})")
        results[objective] = (per_round, una_scores)
    objective, rounds = max(((o, r) for o in cv for r in ROUNDS), key=lambda x: (cv[x[0]][x[1]][0], cv[x[0]][x[1]][1]))
    say(f"chosen: {objective}, {rounds} rounds (CV top-1 {cv[objective][rounds][0]:.4f}, MRR {cv[objective][rounds][1]:.4f})")

    # -- calibration on out-of-fold scores: two calibrators, cross-fitted over the folds, lower top-hit ECE wins
    per_round, una_scores = results[objective]
    oof = per_round[rounds]
    una_oof = una_scores[rounds]
    fits = {"isotonic": lambda sc, gr, us, ug: fit_isotonic(sc, gr),
            "relative-logistic+isotonic": lambda sc, gr, us, ug: fit_relative(sc, gr),
            "evidence-logistic+isotonic": lambda sc, gr, us, ug: fit_evidence(sc, gr),
            "evidence-logistic(with unanswerable)+isotonic": fit_evidence_mixed}

    def apply(cal, s: np.ndarray, g: Group) -> np.ndarray:
        return cal(s, g.X) if isinstance(cal, RelativeCalibration) else cal(s)

    ece: dict[str, dict[str, float]] = {}
    for name, fit in fits.items():
        top_c, top_y, all_c, all_y, una_c = [], [], [], [], []
        for f in folds:
            cal_f = fit([s for s, g in zip(oof, squad) if g.fold != f], [g for g in squad if g.fold != f],
                        [s for s, g in zip(una_oof, una) if g.fold != f], [g for g in una if g.fold != f])
            for s, g in zip(oof, squad):
                if g.fold == f:
                    c = apply(cal_f, s, g)
                    i = int(np.lexsort((np.arange(len(s)), -s))[0])
                    top_c.append(c[i])
                    top_y.append(g.y[i])
                    all_c.extend(c)
                    all_y.extend(g.y)
            for s, g in zip(una_scores[rounds], una):
                if g.fold == f:
                    c = apply(cal_f, s, g)
                    una_c.append(c[int(np.lexsort((np.arange(len(s)), -s))[0])])
        a, u = np.array(top_c), np.array(una_c)
        auc_f = float((a[:, None] > u[None, :]).mean() + 0.5 * (a[:, None] == u[None, :]).mean())
        ece[name] = {"top_hit": reliability(top_c, top_y)["ece"], "all_candidates": reliability(all_c, all_y)["ece"],
                     "auroc_dropped": round(auc_f, 4)}
        say(f"calibration {name:<46} cross-fitted: ECE top hit {ece[name]['top_hit']:.4f}, all candidates "
            f"{ece[name]['all_candidates']:.4f}; AUROC (tune questions without their article) {auc_f:.4f}")
    # calibrated enough (top-hit ECE <= 0.05), then the best at telling answerable from unanswerable questions
    ok = [n for n in ece if ece[n]["top_hit"] <= 0.05] or list(ece)
    cal_name = max(ok, key=lambda n: (ece[n]["auroc_dropped"], -ece[n]["top_hit"]))
    cal = fits[cal_name](oof, squad, una_oof, una)
    say(f"chosen calibration: {cal_name} (rule: top-hit ECE <= 0.05, then the highest AUROC)")
    conf_top = np.array([apply(cal, s, g)[int(np.lexsort((np.arange(len(s)), -s))[0])] for s, g in zip(oof, squad)])
    conf_una = np.array([apply(cal, s, g)[int(np.lexsort((np.arange(len(s)), -s))[0])]
                         for s, g in zip(una_scores[rounds], una)])
    thr = float(np.quantile(conf_top, 0.04))
    auc = float((conf_top[:, None] > conf_una[None, :]).mean() + 0.5 * (conf_top[:, None] == conf_una[None, :]).mean())
    say(f"answerable threshold {thr:.4f}: keeps {(conf_top >= thr).mean():.3f} of answerable tune questions, "
        f"rejects {(conf_una < thr).mean():.3f} of tune questions asked without their article; AUROC {auc:.3f}")

    # -- final model -----------------------------------------------------------------------------------------------
    final = train(squad + seeds, objective, rounds, args.seed)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    text = final.model_to_string(num_iteration=rounds)
    (out / "model.txt").write_text(text, encoding="utf-8")
    record = {
        "data": {"squad_tune_questions": len(squad), "squad_tune_unanswerable": len(una),
                 "seeds_dev_questions": len(seeds), "candidates_per_question": RERANK_DEPTH,
                 "squad_file_sha256": sha256_file(args.squad)},
        "objective": objective, "rounds": rounds, "params": PARAMS, "seed": args.seed, "lightgbm": lgb.__version__,
        "cv_top1": {o: {str(r): round(v[0], 4) for r, v in cv[o].items()} for o in cv},
        "cv_mrr": {o: {str(r): round(v[1], 4) for r, v in cv[o].items()} for o in cv},
        "tune_hybrid_top1": round(base[0], 4), "tune_hybrid_mrr": round(base[1], 4),
        "calibration_ece_cross_fitted": ece, "calibration_chosen": cal_name,
        "threshold_rule": "4th percentile of the out-of-fold top confidence of answerable tune questions",
        "tune_answerable_kept": round(float((conf_top >= thr).mean()), 4),
        "tune_dropped_rejected": round(float((conf_una < thr).mean()), 4), "tune_auroc": round(auc, 4),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    spec = {
        "format": RERANKER_FORMAT, "format_version": RERANKER_FORMAT_VERSION, "name": DEFAULT_RERANKER,
        "kind": "lightgbm-gbdt", "model": "model.txt", "features": list(FEATURE_NAMES),
        "calibration": cal.to_dict(), "answerable_threshold": round(thr, 6),
        "files": {"model.txt": {"bytes": (out / "model.txt").stat().st_size, "sha256": sha256_file(out / "model.txt")}},
        "training": record,
    }
    (out / "reranker.json").write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    imp = sorted(zip(FEATURE_NAMES, final.feature_importance("gain")), key=lambda x: -x[1])
    (out / "MODEL_CARD.md").write_text(model_card(spec, imp), encoding="utf-8")
    say(f"wrote {out} ({(out / 'model.txt').stat().st_size / 1e6:.2f} MB model) in {record['seconds']} s")


def model_card(spec: dict, importance: list[tuple[str, float]]) -> str:
    t = spec["training"]
    d = t["data"]
    rows = "\n".join(f"| {o} | " + " | ".join(f"{t['cv_top1'][o][str(r)]:.4f}" for r in ROUNDS) + " |" for o in t["cv_top1"])
    top = ", ".join(f"{n}" for n, _ in importance[:12])
    return f"""# qa-rerank-gbdt — model card

**What it is.** qa's second stage: LightGBM gradient-boosted trees ({t['objective']}, {t['rounds']} rounds,
{t['params']['num_leaves']} leaves, learning rate {t['params']['learning_rate']}) over the {len(spec['features'])}
explainable features of `qa/features.py`, scoring each of the hybrid top {d['candidates_per_question']} candidate
sentences of a question. Its raw scores also go through a calibration ({t['calibration_chosen']}) to the `confidence`
of every hit, and a hit whose top confidence is below {spec['answerable_threshold']:.4f} makes the answer `answerable: false`.

**Files.** `model.txt` (LightGBM's own text format, evaluated by qa in numpy: no lightgbm or torch at query time),
`reranker.json` (feature list, sha256 of `model.txt`, calibration table, threshold, this training record). Checked
on every load.

**Training data.** SQuAD v1.1 dev, tune half only (even-numbered articles): {d['squad_tune_questions']} questions,
plus {d['squad_tune_unanswerable']} of them asked of an index without their article (for the calibration's logistic
part and the threshold report), and the
seeds gold dev split ({d['seeds_dev_questions']} questions). The SQuAD held-out half and the seeds test split were
not read. SQuAD file sha256 `{d['squad_file_sha256'][:16]}…`.

**Command.** `.venv/bin/python eval/train_reranker.py --squad ../shared/data/squad-dev-v1.1.json` (seed {t['seed']},
LightGBM {t['lightgbm']}, deterministic, 1 thread; {t['seconds']} s on 2 cores).

**Model choice (5-fold CV over tune articles, top-1 accuracy).** Hybrid order without reranking:
{t['tune_hybrid_top1']:.4f} (MRR {t['tune_hybrid_mrr']:.4f}).

| objective | {' | '.join(str(r) for r in ROUNDS)} rounds |
|---|{'---|' * len(ROUNDS)}
{rows}

**Calibration and threshold (out-of-fold, tune half).** Cross-fitted ECE of the top hit / of all candidates:
{'; '.join(f"{k} {v['top_hit']:.4f} / {v['all_candidates']:.4f} (AUROC on tune questions without their article {v['auroc_dropped']:.3f})" for k, v in t['calibration_ece_cross_fitted'].items())};
kept: {t['calibration_chosen']}. {t['threshold_rule']}: keeps {t['tune_answerable_kept']:.3f}
of answerable questions, rejects {t['tune_dropped_rejected']:.3f} of questions asked without their article
(AUROC {t['tune_auroc']:.3f}). Held-out numbers: `eval/README.md`.

**Most useful features (gain).** {top}.

**Limits.** Trained on Wikipedia paragraphs and three news articles, English only; scores are meant for the
hybrid top {d['candidates_per_question']} of qa's own retrieval (other candidate lists shift the feature
distribution). Confidence is calibrated for questions whose answer is in the corpus; the threshold trades that
off against questions it cannot answer.
"""


if __name__ == "__main__":
    main()
