"""Embedding backends (issue 10): sentence-transformers' PyTorch float32 against onnxruntime, step by step, up to
what `qa index --backend onnx` ships (qa/onnx_embed.py): a float32 export; ORT's BERT fusion (EmbedLayerNorm,
Attention, BiasGelu; SkipLayerNorm fused or not); int8 dynamic quantisation (per-channel weights; VNNI int8); ORT's
pool threads spinning or sleeping when idle; fixed batches of 16 or length-sorted batches cut by a token budget.
Every onnx variant sorts by token length (little padding) and runs on all cores; torch runs qa's own
`Encoder.encode` (sentence-transformers, sorted by characters) at several batch sizes and the best is the baseline.

Quality: MRR@10 / hit@1 of dense retrieval over the sentences of the first 300 SQuAD dev paragraphs of one half of
the articles (eval/squad_variants.py's split: even-numbered articles = tune half, odd = held-out half), gold = the
sentence holding the answer, questions embedded in float32 (sentence-transformers) whatever the document backend.
Settings were chosen on the tune half; the committed results are the held-out half (report only).

Speed: the same sentences, every variant in turn, REPEATS rounds (interleaved); the machine is shared, so the table
gives each variant's best round and the median of the per-round ratios to torch (same round).

    .venv/bin/python benchmarks/onnx_embed.py [--half held-out|tune] [--repeats 5]   # writes benchmarks/EMBED-ONNX.md
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
spec = importlib.util.spec_from_file_location("bench", ROOT / "benchmarks" / "bench.py")
bench = importlib.util.module_from_spec(spec)
sys.modules["bench"] = bench
spec.loader.exec_module(bench)

from qa.corpus import Article  # noqa: E402
from qa.embed import Encoder  # noqa: E402
from qa.embed.onnx import DEFAULT_BATCH, DEFAULT_TOKENS, OnnxEncoder, export, make_session  # noqa: E402
from qa.modelfiles import resolve_model  # noqa: E402
from qa.sentences import split_sentences  # noqa: E402


NOTES = """
## Result (the table above: held-out half, 2026-11-24 02:36-02:43)

**3x is reached on the best rounds.** The shipped backend (int8, fused without SkipLayerNormalization,
512-token batches, spinning threads) embeds 1,066 sentences/s against sentence-transformers' 269 at its best batch
size (16): **3.96x** best round against best round, MRR@10 -0.0006 (0.6858 vs 0.6864; limit 0.005), cos to torch
>= 0.980. In the same run the previous recipe (SkipLayerNormalization fused, batches of 16) gave 2.71x (2.78x in
the last run), so the two changes are worth 1.46x together: 1.24x not fusing SkipLayerNormalization (3.36x), 1.18x
the token budget (3.96x).

**The paired column of this run is not a fair figure.** The machine was quiet when the run began (1-min load
1.39, this benchmark alone), but another engineer's 1M-sentence `qa.Index.build` started at 02:39, during round
2, and ran to the end (load 2.7-4.0 at the round ends). sentence-transformers slows far more than onnxruntime
under that load (in the median round torch took about 3x its best time: 11.5x paired against 3.96x best), and the
same-round ratios (9.9-22x) say more about the load than about the backends. The best rounds of every row agree with the quiet
tune-half run of the same settings (02:31, load 1.6-2.4, 3 rounds: torch 289/s at its best batch size 32,
qa onnx 1,091/s spinning: 3.78x best, 3.83x paired; 876/s with sleeping threads: 3.04x). No quiet held-out run
with clean paired ratios was possible before this session ended; the per-round line is printed from now on.

## How the settings were chosen (tune half, 2026-11-24 01:36-02:34, same machine, load 1.4-6.8)

Everything below was measured on the SQuAD **tune** half (1,353 sentences, 1,868 questions; torch MRR@10 0.5912)
mostly while a 1M-sentence `qa index` build and other engineers' tests ran (1-min load 1.4-6.8), so only ratios
between variants timed in the same interleaved rounds are compared.

- **Where the time went** (recipe 1, fixed batches of 16; one thread, onnxruntime's profiler): in the graph,
  SkipLayerNormalization 29%, QAttention 30%, DynamicQuantizeMatMul 27%, BiasGelu 13%, EmbedLayerNormalization 1%;
  outside it, tokenising 1.3% and pooling about 1% of the time; padding 3.7% of the tokens. So batching and the
  Python around `session.run` could give little; the graph had to get faster.
- **SkipLayerNormalization is slow on the CPU** (onnxruntime 1.32): a [16, 32, 384] micro-benchmark gave
  4.5-5.3 ns an element against 0.46 ns for LayerNormalization and 0.8 ns for Add + LayerNormalization. The export
  no longer fuses it (FusionOptions `enable_skip_layer_norm`, `enable_bias_skip_layer_norm` off: the biases fold
  into DynamicQuantizeMatMul), and the session disables `SkipLayerNormFusion`, which would otherwise fuse it back
  at load time (checked in the saved optimised graph: 12 SkipLayerNormalization without, 12 Add + 12
  LayerNormalization with). Same-round speed-up over recipe 1: 1.31-1.44x (batch 16, spinning threads); MRR@10
  0.5882 vs 0.5896 (torch 0.5912). The export stays deterministic (same file, same sha256, on re-export).
- **Spinning or sleeping pool threads** (`session.intra_op.allow_spinning`): with the machine loaded (load 4-5)
  sleeping threads were 1.56-1.90x faster, but on the quieter machine (load 1.5-2.4, 02:31-02:34) spinning (the
  onnxruntime default) was faster: 1.19-1.25x with 512-token batches. Spinning kept; the table shows both.
- **Token-budget batches**: length-sorted, a batch cut before rows x longest passes the budget (at most 64
  sentences). Against fixed batches of 16 in the same rounds, machine loaded (threads sleeping): budget 256
  1.11-1.19x, 384 1.10-1.19x, 512 1.10-1.24x, 768 1.05-1.15x, 1024 1.07x, 2048 0.78x; fixed 8 0.95x, fixed 32
  0.84x. Quieter (load 1.5, spinning): 512 1.08x over fixed 16, 768 and 1024 0.96x of 512. 512 shipped
  (`DEFAULT_TOKENS`): short sentences go 30-64 to a batch, long ones 2-6.
- **Not kept**: static (calibrated) int8, QDQ, per-channel, MinMax over 320 tune sentences, the 36 weight MatMuls
  of the graph without Attention fusion: 0.42x of the shipped graph (the QDQ MatMuls and the float32 attention are
  slower than QAttention; MRR 0.5889); percentile calibration fails on batches of different lengths. Attention
  unfused (MatMulIntegerToFloat, Softmax, ...): 0.77-0.95x. Gelu + bias in the MatMul instead of BiasGelu:
  1.04-1.15x, within the noise; `session.set_denormal_as_zero`: 1.01-1.02x; neither changed. Tokenising in a
  thread beside `session.run` was not tried: it is 1.3% of the time.
- Activations are quantised per batch at run time, so a sentence's vector depends slightly on the sentences
  batched with it (deterministic for the same input; cos >= 0.97 between batchings, >= 0.978 to torch).

Earlier (recipe 1, 2026-11-23, tune half): the eager-attention export (the SDPA one fuses no Attention); int8
dynamic, per-channel, no reduce_range; word-embedding table kept float32 (quantised: -0.002 to -0.005 MRR for
no speed); fixed batches of 16 fastest among 1-128.

The machine is shared with three other engineers' jobs. Under load sentence-transformers slows far more than
onnxruntime with sleeping threads (the tune run at load 4-7 gave torch 52 sentences/s at best, against 243-256
quiet, and "10x"): ratios measured under load overstate the speed-up; the result above is from the quietest run.
"""


def gold_set(path: Path, half: str, n_paragraphs: int) -> tuple[list[str], list[str], np.ndarray]:
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
            fuse_skip: bool = False):
    """qa's OnnxEncoder (tokenising, batching, pooling) over another ONNX file and session settings."""
    enc = OnnxEncoder(folder)
    sess = make_session(model_path, enc.threads, spinning=spinning, disabled=() if fuse_skip else ("SkipLayerNormFusion",))
    enc.__dict__["session"] = sess  # the cached_property, set: no export, no cache
    enc.inputs = [i.name for i in sess.get_inputs()]
    return lambda texts: enc.encode(texts, batch_size=batch, max_tokens=max_tokens)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--squad", default=str(ROOT / bench.DEFAULT_SQUAD))
    ap.add_argument("--half", choices=["held-out", "tune"], default="held-out")
    ap.add_argument("--paragraphs", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "EMBED-ONNX.md"))
    args = ap.parse_args()
    load_before = os.getloadavg()
    folder = resolve_model(None)[1]
    sents, qs, gold = gold_set(Path(args.squad), args.half, args.paragraphs)
    qv = Encoder(query_backend="torch").encode_queries(qs)  # float32 questions (sentence-transformers)
    print(f"{len(sents)} sentences, {len(qs)} questions ({args.half} half)", flush=True)

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    work = Path(tempfile.mkdtemp(prefix="qa-onnx-bench-"))
    t = time.perf_counter()
    export(folder, work, keep=work)  # work/model.onnx = what qa ships; work/fp32.onnx, work/fused.onnx its steps
    export_s = time.perf_counter() - t
    # the previous recipe (1): SkipLayerNormalization fused as well
    opt = optimize_model(str(work / "fp32.onnx"), model_type="bert", num_heads=12, hidden_size=384, opt_level=1)
    opt.save_model_to_file(str(work / "fused-skip.onnx"))
    quantize_dynamic(work / "fused-skip.onnx", work / "int8-fused-skip.onnx", weight_type=QuantType.QInt8,
                     per_channel=True, reduce_range=False, op_types_to_quantize=["MatMul", "Attention"],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    sizes = {f.name: f.stat().st_size for f in work.glob("*.onnx")}

    import torch

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
        runs[f"{star}int8, no SkipLayerNorm, spinning, {t}-token batches (at most {DEFAULT_BATCH})"] = \
            variant(folder, m, DEFAULT_BATCH, max_tokens=t)
    runs[f"int8, no SkipLayerNorm, idle threads sleep, {T}-token batches (at most {DEFAULT_BATCH})"] = \
        variant(folder, m, DEFAULT_BATCH, max_tokens=T, spinning=False)
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
    torch_keys = [k for k in runs if k.startswith("torch")]
    base = min(torch_keys, key=lambda k: min(times[k]))  # torch at its best batch size
    ref = vecs[base]
    rows = []
    for k in runs:
        v = vecs[k]
        rank = np.argsort(-(qv @ v.T), axis=1, kind="stable")[:, :10]
        hit = rank == gold[:, None]
        mrr = float((hit / np.arange(1, 11)).sum(1).mean())
        cos = (v * ref).sum(1)
        best = len(sents) / min(times[k])
        paired = float(np.median([a / b for a, b in zip(times[base], times[k])]))
        rows.append((k, best, best / (len(sents) / min(times[base])), paired, float(hit[:, 0].mean()), mrr,
                     float(cos.min()), float(cos.mean())))
        print(rows[-1], flush=True)
    base_mrr = rows[list(runs).index(base)][5]
    cmd = "`.venv/bin/python benchmarks/onnx_embed.py" + (f" --half {args.half}" if args.half != "held-out" else "") + f" --repeats {args.repeats}`"
    md = [
        "# Embedding backends: PyTorch vs onnxruntime (issue 10)", "",
        f"Command: {cmd} on {time.strftime('%Y-%m-%d %H:%M')}; machine: {json.dumps(bench.machine())}; "
        f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f} (5 min: {load_after[1]:.2f}); "
        f"onnxruntime and torch on {threads} threads (all cores).", "",
        f"{len(sents)} sentences (the first {args.paragraphs} paragraphs of the SQuAD dev **{args.half} half**: "
        f"{'odd' if args.half == 'held-out' else 'even'}-numbered articles), {len(qs)} questions, embedded in float32 "
        f"(sentence-transformers) for every document backend. {args.repeats} interleaved rounds: *best* is each variant's fastest "
        f"round, *paired* the median over rounds of (torch time / variant time) in the same round; the baseline is "
        f"torch at its best batch size ({base.rsplit(', ', 1)[1]}). ONNX export (one time, cached): {export_s:.1f} s.", "",
        "| backend | sentences/s (best) | vs torch (best) | vs torch (paired) | hit@1 | MRR@10 | ΔMRR | cos vs torch (min / mean) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    md += [f"| {k} | {s:.0f} | {x:.2f}× | {p:.2f}× | {h1:.3f} | {m:.4f} | {m - base_mrr:+.4f} | {cmin:.4f} / {cmean:.4f} |"
           for k, s, x, p, h1, m, cmin, cmean in rows]
    star = next(k for k in runs if k.startswith("**qa onnx**"))
    md += ["", "Per round (sentences/s; 1-min load at the round's end): " + "; ".join(
        f"{r + 1}: torch {len(sents) / times[base][r]:.0f}, qa onnx {len(sents) / times[star][r]:.0f} (load {loads[r]:.2f})"
        for r in range(args.repeats)) + "."]
    md += ["", "ONNX files: " + ", ".join(f"{n} {b / 2**20:.0f} MiB" for n, b in sorted(sizes.items())) + ".", ""]
    md += [NOTES.strip(), ""]
    Path(args.out).write_text("\n".join(md), encoding="utf-8")
    print("\n".join(md))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
