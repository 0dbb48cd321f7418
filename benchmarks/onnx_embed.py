"""Embedding backends for issue 10 (an experiment, not yet wired into `qa index`): sentence-transformers' PyTorch
float32 against onnxruntime float32 and onnxruntime int8 (dynamic quantization, per-channel weights: the CPU's
VNNI instructions) of the same all-MiniLM-L6-v2 graph, all length-sorted in batches of 64 on 2 threads; quality
on 500 SQuAD dev questions over the sentences of the first 300 paragraphs (gold = the sentence holding the answer).

    .venv/bin/pip install onnx onnxruntime onnxscript        # not in qa's dependencies (yet)
    .venv/bin/python benchmarks/onnx_embed.py                 # writes benchmarks/EMBED-ONNX.md

The ONNX files are written to a temporary folder (86 MB float32, 21 MB int8) and not kept.
"""
import importlib.util
import json
import os
import sys
import tempfile
import time
import numpy as np
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
spec = importlib.util.spec_from_file_location("bench", os.path.join(ROOT, "benchmarks", "bench.py")); bench = importlib.util.module_from_spec(spec); sys.modules["bench"] = bench; spec.loader.exec_module(bench)
import torch
from qa.dense import Encoder, resolve_model
from transformers import AutoModel, AutoTokenizer
folder = resolve_model(None)[1]
squad = bench.Squad.load(bench.ROOT / bench.DEFAULT_SQUAD)
sents, qs, gold = bench._gold_set(squad, 300, 500)
gold_a = np.array(gold)
tok = AutoTokenizer.from_pretrained(folder)
model = AutoModel.from_pretrained(folder).eval()
work = tempfile.mkdtemp(prefix="qa-onnx-")
fp32 = os.path.join(work, "model.onnx"); int8 = os.path.join(work, "model.int8.onnx")
if not os.path.exists(fp32):
    x = tok(["hello world", "a longer sentence here"], padding=True, return_tensors="pt")
    class Wrap(torch.nn.Module):
        def __init__(self, m): super().__init__(); self.m = m
        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
    torch.onnx.export(Wrap(model), (x["input_ids"], x["attention_mask"], x["token_type_ids"]), fp32,
                      input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["last_hidden_state"],
                      dynamic_axes={k: {0: "b", 1: "s"} for k in ["input_ids", "attention_mask", "token_type_ids", "last_hidden_state"]},
                      opset_version=17, dynamo=False)
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True)
import onnxruntime as ort
def session(path):
    o = ort.SessionOptions(); o.intra_op_num_threads = 2; o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
def ort_encode(sess):
    def f(texts, bs=64):
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), 384), np.float32)
        for a in range(0, len(texts), bs):
            idx = order[a:a+bs]
            x = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=256, return_tensors="np")
            h = sess.run(None, {"input_ids": x["input_ids"].astype(np.int64), "attention_mask": x["attention_mask"].astype(np.int64), "token_type_ids": x["token_type_ids"].astype(np.int64)})[0]
            m = x["attention_mask"][..., None].astype(np.float32)
            v = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            out[idx] = v / np.linalg.norm(v, axis=1, keepdims=True)
        return out
    return f
enc = Encoder(query_backend="torch"); enc.model
torch.set_num_threads(2)
backends = {"torch fp32 (sentence-transformers)": lambda t: enc.encode(t, batch_size=64),
            "onnxruntime fp32": ort_encode(session(fp32)), "onnxruntime int8 (dynamic, per-channel)": ort_encode(session(int8))}
ref_s = ref_q = None
rows = []
for name, fn in backends.items():
    fn(sents[:64]); t = time.perf_counter(); vs = fn(sents); dt = time.perf_counter() - t; vq = fn(qs)
    if ref_s is None: ref_s, ref_q = vs, vq
    rank = np.argsort(-(vq @ vs.T), axis=1, kind="stable")[:, :10]; hit = rank == gold_a[:, None]
    rows.append((name, len(sents) / dt, hit[:, 0].mean(), hit.any(1).mean(), (hit / np.arange(1, 11)).sum(1).mean(),
                 np.min((vs * ref_s).sum(1)), np.mean((vs * ref_s).sum(1))))
    print(rows[-1], flush=True)
base = rows[0][1]
md = ["# Embedding backends: PyTorch vs onnxruntime (issue 10 experiment)", "",
      f"Command: `.venv/bin/python benchmarks/onnx_embed.py` on {time.strftime('%Y-%m-%d %H:%M')}; machine: "
      f"{json.dumps(bench.machine())}; load average before: {os.getloadavg()[0]:.2f}.", "",
      f"{len(sents)} sentences (first 300 SQuAD dev paragraphs), {len(qs)} questions, batch 64, length-sorted, 2 threads.", "",
      "| backend | sentences/s | vs PyTorch | hit@1 | hit@10 | MRR@10 | cos vs PyTorch (min / mean) |", "|---|---|---|---|---|---|---|"]
md += [f"| {n} | {r:.0f} | {r / base:.2f}× | {h1:.3f} | {h10:.3f} | {m:.4f} | {cmin:.4f} / {cmean:.4f} |"
       for n, r, h1, h10, m, cmin, cmean in rows]
md += ["", f"ONNX files: float32 {os.path.getsize(fp32) >> 20} MB, int8 {os.path.getsize(int8) >> 20} MB.", ""]
open(os.path.join(ROOT, "benchmarks", "EMBED-ONNX.md"), "w").write("\n".join(md))
print("\n".join(md))
