"""Embedding backends (issue 10): sentence-transformers' PyTorch float32 against onnxruntime, step by step, up to
what `qa index --backend onnx` ships (qa/onnx_embed.py): a float32 export; ORT's BERT fusion (EmbedLayerNorm,
Attention, BiasGelu; SkipLayerNorm fused or not); int8 dynamic quantisation (per-channel weights; VNNI int8); ORT's
pool threads spinning or sleeping when idle; fixed batches of 16 or length-sorted batches cut by a token budget.
Every onnx variant sorts by token length (little padding) and runs on all cores; torch runs qa's own
`Encoder.encode` (sentence-transformers, sorted by characters) at several batch sizes and the best is the baseline.

Quality: MRR@10 / hit@1 of dense retrieval over the sentences of the first 300 SQuAD dev paragraphs of one half of
the articles (eval/squad_variants.py's split: even-numbered articles = tune half, odd = held-out half), gold = the
sentence holding the answer, questions embedded in float32 (sentence-transformers; qa.embed.light, the same vectors
to 1e-6, before issue 20) whatever the document backend.
Settings were chosen on the tune half; the committed results are the held-out half (report only).

Speed: the same sentences, every variant in turn, REPEATS rounds (interleaved); the machine is shared, so the table
gives each variant's best round and the median of the per-round ratios to torch (same round).

``--peer`` (issue 21) measures instead the fair peer, sentence-transformers' own ONNX backend with its int8
dynamically quantised model (``benchmarks/embed_peer.py``, run in its own process over the package overlay it needs),
against qa's onnx encoder and sentence-transformers' PyTorch float32, in the same paired rounds on the same
sentences.

    python -m benchmarks.onnx_embed [--half held-out|tune] [--repeats 5]     # writes benchmarks/EMBED-ONNX.json + .md
    nice -n 10 python -m benchmarks.onnx_embed --peer --half tune --paragraphs 700 --repeats 5
    python -m benchmarks.onnx_embed --render-only                            # EMBED-ONNX.md from EMBED-ONNX.json

A run merges its section (``variants`` or ``peer``) into the committed ``benchmarks/EMBED-ONNX.json`` and renders
``benchmarks/EMBED-ONNX.md`` from the whole file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks.common import BENCH, DATA, DEFAULT_SQUAD, ROOT, command_line, load_json, machine, merge_into

JSON_PATH = BENCH / "EMBED-ONNX.json"
MD_PATH = BENCH / "EMBED-ONNX.md"
PEER_SITE = DATA / "peer-site"
# The batched path these tables measure (``qa.Index.build(batch_size=64)``): qa's default is one sentence per run
# since issue 20 (qa.embed.onnx.DEFAULT_BATCH), for question and document vectors of the same text to agree.
BATCHED = 64
# Float32 questions for every document backend; sections recorded before issue 20 name none: qa.embed.light.
QUESTIONS_BY = "sentence-transformers"


def gold_set(path: Path, half: str, n_paragraphs: int) -> tuple[list[str], list[str], np.ndarray]:
    """Sentences of the first ``n_paragraphs`` paragraphs of one half of SQuAD dev, the questions about them, and
    the index of the sentence holding each answer."""
    from qa.corpus import Article
    from qa.sentences import split_sentences

    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    sents, qs, gold, n = [], [], [], 0
    for i, art in enumerate(data):
        if (i % 2 == 0) != (half == "tune"):
            continue
        for p in art["paragraphs"]:
            if n >= n_paragraphs:
                break
            ss = split_sentences(Article(f"p{n}", p["context"]))
            base = len(sents)
            sents += [s.text for s in ss]
            for q in p["qas"]:
                a = q["answers"][0]["answer_start"]
                g = [base + j for j, s in enumerate(ss) if s.start <= a < s.end]
                if g:
                    qs.append(q["question"])
                    gold.append(g[0])
            n += 1
    return sents, qs, np.array(gold)


def variant(folder: str, model_path: str, batch: int, max_tokens: int | None = None, spinning: bool = True,
            fuse_skip: bool = False) -> Callable[[list[str]], np.ndarray]:
    """qa's OnnxEncoder (tokenising, batching, pooling) over another ONNX file and session settings."""
    from qa.embed.onnx import OnnxEncoder, make_session

    enc = OnnxEncoder(folder)
    sess = make_session(model_path, enc.threads, spinning=spinning, disabled=() if fuse_skip else ("SkipLayerNormFusion",))
    enc.__dict__["session"] = sess  # the cached_property, set: no export, no cache
    enc.inputs = [i.name for i in sess.get_inputs()]
    return lambda texts: enc.encode(texts, batch_size=batch, max_tokens=max_tokens)


def quality(v: np.ndarray, qv: np.ndarray, gold: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """hit@1 and MRR@10 of exact dense retrieval with document vectors ``v``; cosine of each row to ``ref``."""
    rank = np.argsort(-(qv @ v.T), axis=1, kind="stable")[:, :10]
    hit = rank == gold[:, None]
    cos = (v * ref).sum(1)
    return {"hit@1": float(hit[:, 0].mean()), "mrr@10": float((hit / np.arange(1, 11)).sum(1).mean()),
            "cos_min": float(cos.min()), "cos_mean": float(cos.mean())}


def _variant_runs(folder: str, work: Path) -> tuple[dict[str, Callable], dict[str, float], int]:
    """Every variant of the table, with the ONNX files written to ``work`` (their sizes, MiB) and the threads."""
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    from qa.embed import Encoder
    from qa.embed.onnx import DEFAULT_TOKENS, OnnxEncoder

    # the previous recipe (1): SkipLayerNormalization fused as well
    opt = optimize_model(str(work / "fp32.onnx"), model_type="bert", num_heads=12, hidden_size=384, opt_level=1)
    opt.save_model_to_file(str(work / "fused-skip.onnx"))
    quantize_dynamic(work / "fused-skip.onnx", work / "int8-fused-skip.onnx", weight_type=QuantType.QInt8,
                     per_channel=True, reduce_range=False, op_types_to_quantize=["MatMul", "Attention"],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    sizes = {f.name: f.stat().st_size / 2**20 for f in sorted(work.glob("*.onnx"))}
    threads = OnnxEncoder(folder).threads
    torch.set_num_threads(threads)
    enc = Encoder(backend="torch")
    enc.model
    runs = {f"torch fp32 (sentence-transformers), batch {b}": (lambda b: lambda x: enc.encode(x, batch_size=b))(b)
            for b in (16, 32, 64)}
    B, T = 16, DEFAULT_TOKENS
    m = str(work / "model.onnx")
    runs.update({
        f"onnxruntime fp32, batch {B}": variant(folder, str(work / "fp32.onnx"), B),
        f"onnxruntime fp32 + BERT fusion (no SkipLayerNorm), batch {B}": variant(folder, str(work / "fused.onnx"), B),
        f"int8 + fusion with SkipLayerNorm (recipe 1, the previous qa onnx), batch {B}, spinning":
            variant(folder, str(work / "int8-fused-skip.onnx"), B, fuse_skip=True),
        f"int8 + fusion without SkipLayerNorm, batch {B}, spinning": variant(folder, m, B),
    })
    for t in (256, 512, 1024):
        star = "**qa onnx**: " if t == T else ""
        runs[f"{star}int8, no SkipLayerNorm, spinning, {t}-token batches (at most {BATCHED})"] = \
            variant(folder, m, BATCHED, max_tokens=t)
    runs[f"int8, no SkipLayerNorm, idle threads sleep, {T}-token batches (at most {BATCHED})"] = \
        variant(folder, m, BATCHED, max_tokens=T, spinning=False)
    return runs, sizes, threads


def run_variants(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The step-by-step table: every variant timed in ``args.repeats`` interleaved rounds."""
    from qa.modelfiles import resolve_model
    from qa.embed import Encoder
    from qa.embed.onnx import export

    load_before = os.getloadavg()
    folder = resolve_model(None)[1]
    sents, qs, gold = gold_set(Path(args.squad), args.half, args.paragraphs)
    qv = Encoder(query_backend="torch").encode_queries(qs)  # float32 questions
    print(f"{len(sents)} sentences, {len(qs)} questions ({args.half} half)", flush=True)
    work = Path(tempfile.mkdtemp(prefix="qa-onnx-bench-"))
    t = time.perf_counter()
    export(folder, work, keep=work)  # work/model.onnx = what qa ships; work/fp32.onnx, work/fused.onnx its steps
    export_s = time.perf_counter() - t
    runs, sizes, threads = _variant_runs(folder, work)
    for f in runs.values():
        f(sents[:64])  # warm up
    times: dict[str, list[float]] = {k: [] for k in runs}
    loads: list[float] = []
    vecs: dict[str, np.ndarray] = {}
    for r in range(args.repeats):
        for k, f in runs.items():
            t = time.perf_counter()
            vecs[k] = f(sents)
            times[k].append(time.perf_counter() - t)
        loads.append(os.getloadavg()[0])
        print(f"round {r + 1}/{args.repeats}: load {loads[-1]:.2f}", flush=True)
    load_after = os.getloadavg()
    shutil.rmtree(work, ignore_errors=True)
    base = min((k for k in runs if k.startswith("torch")), key=lambda k: min(times[k]))  # torch at its best batch
    star = next(k for k in runs if k.startswith("**qa onnx**"))
    rows = []
    for k in runs:
        best = len(sents) / min(times[k])
        rows.append({"backend": k, "sentences/s": best, "vs_torch_best": best / (len(sents) / min(times[base])),
                     "vs_torch_paired": float(np.median([a / b for a, b in zip(times[base], times[k])])),
                     **quality(vecs[k], qv, gold, vecs[base])})
        print(rows[-1], flush=True)
    base_mrr = rows[list(runs).index(base)]["mrr@10"]
    for row in rows:
        row["delta_mrr"] = row["mrr@10"] - base_mrr
    return {"command": command, "questions_by": QUESTIONS_BY, "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
            "load_before": list(load_before), "load_after": list(load_after), "threads": threads,
            "half": args.half, "paragraphs": args.paragraphs, "sentences": len(sents), "questions": len(qs),
            "repeats": args.repeats, "baseline": base.rsplit(", ", 1)[1], "export_s": export_s, "rows": rows,
            "rounds": [{"torch": len(sents) / times[base][r], "qa onnx": len(sents) / times[star][r], "load": loads[r]}
                       for r in range(args.repeats)],
            "onnx_files_mib": sizes}


class PeerWorker:
    """``benchmarks.embed_peer`` in its own process (the overlay of packages the peer needs on its path)."""

    def __init__(self, folder: str, sents: list[str], work: Path, site: Path, configs: list[str]):
        (work / "sentences.json").write_text(json.dumps(sents), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1"}
        self.work = work
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.embed_peer", folder,
                                      str(work / "sentences.json"), str(work), "--configs", ",".join(configs)],
                                     cwd=ROOT, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.configs = configs
        self.info = self._answer()

    def _answer(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the peer worker exited (code {self.proc.wait()}); see its stderr above")
        return json.loads(line)

    def embed(self, config: str, batch: int) -> tuple[float, np.ndarray]:
        """(seconds the peer took to embed every sentence in batches of ``batch`` with its ``config`` int8 model,
        its vectors)."""
        self.proc.stdin.write(f"embed {config} {batch}\n")
        self.proc.stdin.flush()
        secs = self._answer()["seconds"]
        return secs, np.load(self.work / f"peer-{config}-{batch}.npy")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def _peer_runs(folder: str, work: Path, peer: PeerWorker, threads: int, torch_batches: list[int],
               peer_batches: list[int]) -> dict[str, Callable[[list[str]], tuple]]:
    """name → function returning (seconds, vectors): torch and the peer at each of their batch sizes, qa's onnx."""
    import torch

    from qa.embed import Encoder
    from qa.embed.onnx import DEFAULT_TOKENS

    torch.set_num_threads(threads)
    enc = Encoder(backend="torch")
    enc.model
    qa_onnx = variant(folder, str(work / "qa" / "model.onnx"), BATCHED, max_tokens=DEFAULT_TOKENS)

    def clock(fn: Callable[[list[str]], np.ndarray]) -> Callable[[list[str]], tuple]:
        def run(texts: list[str]) -> tuple[float, np.ndarray]:
            t = time.perf_counter()
            v = fn(texts)
            return time.perf_counter() - t, v
        return run

    runs: dict[str, Callable[[list[str]], tuple]] = {
        f"torch fp32 (sentence-transformers), batch {b}": clock((lambda b: lambda x: enc.encode(x, batch_size=b))(b))
        for b in torch_batches}
    runs[f"**qa onnx** (qa/onnx_embed.py: int8, {DEFAULT_TOKENS}-token batches of at most {BATCHED})"] = \
        clock(qa_onnx)
    for config in peer.configs:
        for b in peer_batches:
            runs[f"sentence-transformers onnx int8 (`backend=\"onnx\"`, {config} dynamic quantisation), batch {b}"] = \
                (lambda c, b: lambda x: peer.embed(c, b))(config, b)
    return runs


def run_peer(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """qa's onnx encoder, sentence-transformers torch fp32 and the peer's own onnx int8, paired rounds."""
    from qa.modelfiles import resolve_model
    from qa.embed import Encoder
    from qa.embed.onnx import OnnxEncoder, export

    site = Path(args.peer_site)
    if not (site / "optimum" / "onnxruntime").is_dir():
        sys.exit(f"the peer needs its packages in {site}: see benchmarks/embed_peer.py for the pip command")
    load_before = os.getloadavg()
    folder = resolve_model(None)[1]
    sents, qs, gold = gold_set(Path(args.squad), args.half, args.paragraphs)
    step = max(1, len(qs) // args.questions)
    qs, gold = qs[::step][: args.questions], gold[::step][: args.questions]
    qv = Encoder(query_backend="torch").encode_queries(qs)  # float32 questions
    print(f"{len(sents)} sentences, {len(qs)} questions ({args.half} half)", flush=True)
    work = Path(tempfile.mkdtemp(prefix="qa-onnx-peer-"))
    t = time.perf_counter()
    export(folder, work / "qa")
    qa_export_s = time.perf_counter() - t
    peer = PeerWorker(folder, sents, work, site, args.peer_configs.split(","))
    try:
        threads = OnnxEncoder(folder).threads
        runs = _peer_runs(folder, work, peer, threads, [int(b) for b in args.torch_batches.split(",")],
                          [int(b) for b in args.peer_batches.split(",")])
        times: dict[str, list[float]] = {k: [] for k in runs}
        vecs: dict[str, np.ndarray] = {}
        loads: list[float] = []
        for k, f in runs.items():  # warm up (the peer's worker warmed up on its own when it started)
            if not k.startswith("sentence-transformers onnx"):
                f(sents[:200])
        for r in range(args.repeats):
            for k, f in runs.items():
                dt, vecs[k] = f(sents)
                times[k].append(dt)
            loads.append(os.getloadavg()[0])
            print(f"round {r + 1}/{args.repeats}: load {loads[-1]:.2f}; "
                  + "; ".join(f"{k[:40]} {len(sents) / times[k][-1]:.0f}/s" for k in runs), flush=True)
    finally:
        peer.close()
        shutil.rmtree(work, ignore_errors=True)
    return _peer_section(args, command, runs, times, vecs, qv, gold, len(sents), len(qs), loads,
                         {"before": list(load_before), "after": list(os.getloadavg())},
                         {"qa_export_s": round(qa_export_s, 1), "peer": peer.info, "threads": threads})


def _peer_section(args: argparse.Namespace, command: str, runs: dict, times: dict, vecs: dict, qv: np.ndarray,
                  gold: np.ndarray, n_sents: int, n_qs: int, loads: list[float], load: dict, info: dict) -> dict:
    """The ``peer`` section of EMBED-ONNX.json from the rounds' timings and vectors."""
    torch_keys = [k for k in runs if k.startswith("torch")]
    base = min(torch_keys, key=lambda k: float(np.median(times[k])))  # torch at its best batch size (median round)
    qa_key = next(k for k in runs if k.startswith("**qa onnx**"))
    rows = []
    for k in runs:
        rows.append({"backend": k, "sentences/s best": n_sents / min(times[k]),
                     "sentences/s median": n_sents / float(np.median(times[k])),
                     "vs_torch_paired": float(np.median([a / b for a, b in zip(times[base], times[k])])),
                     "vs_qa_paired": float(np.median([a / b for a, b in zip(times[qa_key], times[k])])),
                     **quality(vecs[k], qv, gold, vecs[base])})
    base_mrr = next(r["mrr@10"] for r in rows if r["backend"] == base)
    for row in rows:
        row["delta_mrr"] = row["mrr@10"] - base_mrr
    return {"command": command, "questions_by": QUESTIONS_BY, "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": machine(("onnxruntime", "torch")),
            "load": {**load, "rounds": loads}, "nice": os.nice(0), "half": args.half, "paragraphs": args.paragraphs,
            "sentences": n_sents, "questions": n_qs, "repeats": args.repeats, "baseline": base, **info, "rows": rows,
            "seconds": times}


# -- rendering -------------------------------------------------------------------------------------------------------
def _render_variants(v: dict[str, Any]) -> list[str]:
    lb, la = v["load_before"], v["load_after"]
    base_half = "odd" if v["half"] == "held-out" else "even"
    md = [
        "# Embedding backends: PyTorch vs onnxruntime (issue 10)", "",
        f"Command: `{v['command']}` on {v['date']}; machine: {json.dumps(v['machine'])}; "
        f"load average (1 min) before {lb[0]:.2f}, after {la[0]:.2f} (5 min: {la[1]:.2f}); "
        f"onnxruntime and torch on {v['threads']} threads (all cores).", "",
        f"{v['sentences']} sentences (the first {v['paragraphs']} paragraphs of the SQuAD dev **{v['half']} half**: "
        f"{base_half}-numbered articles), {v['questions']} questions, embedded in float32 "
        f"({v.get('questions_by', 'qa.embed.light')}) for every document backend. {v['repeats']} interleaved rounds: *best* is each variant's fastest "
        f"round, *paired* the median over rounds of (torch time / variant time) in the same round; the baseline is "
        f"torch at its best batch size ({v['baseline']}). ONNX export (one time, cached): {v['export_s']:.1f} s.", "",
        "| backend | sentences/s (best) | vs torch (best) | vs torch (paired) | hit@1 | MRR@10 | ΔMRR | cos vs torch (min / mean) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    md += [f"| {r['backend']} | {r['sentences/s']:.0f} | {r['vs_torch_best']:.2f}× | {r['vs_torch_paired']:.2f}× | "
           f"{r['hit@1']:.3f} | {r['mrr@10']:.4f} | {r['delta_mrr']:+.4f} | {r['cos_min']:.4f} / {r['cos_mean']:.4f} |"
           for r in v["rows"]]
    if v.get("rounds"):
        md += ["", "Per round (sentences/s; 1-min load at the round's end): " + "; ".join(
            f"{i + 1}: torch {r['torch']:.0f}, qa onnx {r['qa onnx']:.0f} (load {r['load']:.2f})"
            for i, r in enumerate(v["rounds"])) + "."]
    md += ["", "ONNX files: " + ", ".join(f"{n} {b:.0f} MiB" for n, b in sorted(v["onnx_files_mib"].items())) + ".",
           ""]
    return md


def _quantised(info: dict[str, Any]) -> str:
    """``avx2: 12.6 s, 21.9 MiB; ...`` (a run before the config was a choice quantised for avx512_vnni only)."""
    q, f = info["quantize_s"], info["file_mib"]
    if not isinstance(q, dict):
        q, f = {"avx512_vnni": q}, {"avx512_vnni": f}
    cpu = f"; this CPU's documented config: {info['cpu_config']}" if info.get("cpu_config") else ""
    return "; ".join(f"{c}: {q[c]} s, {f[c]} MiB" for c in q) + cpu


def _render_peer(p: dict[str, Any]) -> list[str]:
    ld = p["load"]
    pv = p["peer"].get("versions", {})
    md = [
        "## The fair peer: sentence-transformers' own ONNX int8 backend (issue 21)", "",
        f"Command: `{p['command']}` on {p['date']} (nice {p['nice']}); machine: {json.dumps(p['machine'])}; load "
        f"average (1 min) before {ld['before'][0]:.2f}, at the rounds' ends "
        f"{', '.join(f'{x:.2f}' for x in ld['rounds'])}, after {ld['after'][0]:.2f} (5 min: {ld['after'][1]:.2f}); "
        f"{p['threads']} cores.", "",
        f"{p['sentences']} sentences (the first {p['paragraphs']} paragraphs of the SQuAD dev **{p['half']} half**), "
        f"{p['questions']} of their questions embedded in float32 ({p.get('questions_by', 'qa.embed.light')}). The same sentences go to every encoder "
        f"in each of {p['repeats']} rounds (after a warm-up), one encoder after the other; *paired* is the "
        f"median over rounds of (other time / this time) in the same round. The peer is sentence-transformers "
        f"{pv.get('sentence-transformers', '?')} (transformers {pv.get('transformers', '?')}, optimum "
        f"{pv.get('optimum', '?')}) in its own process (`benchmarks/embed_peer.py`: its ONNX backend needs "
        f"optimum-onnx, which pins transformers < 4.58); `SentenceTransformer(folder, backend=\"onnx\")` exported "
        f"the model ({p['peer']['export_s']} s) and `export_dynamic_quantized_onnx_model(model, CONFIG, "
        f"folder)` quantised it ({_quantised(p['peer'])}); qa's export "
        f"(`qa.embed.onnx.export`) took {p['qa_export_s']} s. The baseline is torch at its best batch size "
        f"(median round).", "",
        "| backend | sentences/s (best / median round) | vs torch (paired) | vs qa onnx (paired) | hit@1 | MRR@10 | "
        "ΔMRR | cos vs torch (min / mean) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    md += [f"| {r['backend']} | {r['sentences/s best']:.0f} / {r['sentences/s median']:.0f} | "
           f"{r['vs_torch_paired']:.2f}× | {r['vs_qa_paired']:.2f}× | {r['hit@1']:.3f} | {r['mrr@10']:.4f} | "
           f"{r['delta_mrr']:+.4f} | {r['cos_min']:.4f} / {r['cos_mean']:.4f} |" for r in p["rows"]]
    if p.get("notes"):
        md += ["", p["notes"].strip()]
    return md + [""]


def render(data: dict[str, Any]) -> str:
    """EMBED-ONNX.md from EMBED-ONNX.json: the step-by-step table, the peer's table, then the notes."""
    md: list[str] = []
    if "variants" in data:
        md += _render_variants(data["variants"])
    if "peer" in data:
        md += _render_peer(data["peer"])
    if data.get("notes"):
        md += [data["notes"].strip(), ""]
    return "\n".join(md)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad", default=DEFAULT_SQUAD)
    ap.add_argument("--half", choices=["held-out", "tune"], default="held-out")
    ap.add_argument("--paragraphs", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--peer", action="store_true", help="the fair-peer run (issue 21) instead of the variants")
    ap.add_argument("--peer-site", default=str(PEER_SITE), help="the peer's package overlay (see embed_peer.py)")
    ap.add_argument("--questions", type=int, default=1500, help="questions for the quality columns (--peer)")
    ap.add_argument("--torch-batches", default="16,32", help="torch batch sizes (--peer)")
    ap.add_argument("--peer-batches", default="16,32,64", help="the peer's batch sizes (--peer)")
    ap.add_argument("--peer-configs", default="avx2,avx512_vnni",
                    help="the peer's quantisation configs (export_dynamic_quantized_onnx_model), --peer")
    ap.add_argument("--json", type=Path, default=JSON_PATH)
    ap.add_argument("--out", type=Path, default=MD_PATH)
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args(argv)
    if not args.render_only:
        command = command_line("benchmarks.onnx_embed", argv)
        section = run_peer(args, command) if args.peer else run_variants(args, command)
        merge_into(args.json, {"peer" if args.peer else "variants": section}, depth=1)
    md = render(load_json(args.json))
    args.out.write_text(md, encoding="utf-8")
    print(md)


if __name__ == "__main__":
    main()
