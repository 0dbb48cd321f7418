"""Train, export and evaluate qa-reader (issue 19): MiniLM + a start/end head reading question + sentence.

Usage (from the repository root; CPU, 2 threads; each step writes under eval/runs/reader/)::

    python eval/train_reader.py train  [--epochs 1 --shifts 6000 --minutes 60]  # fine-tune (torch), checkpoint
    python eval/train_reader.py export                                          # ONNX int8 -> qa/models/qa-reader
    python eval/train_reader.py eval   [--out eval/reader.md]                   # tables: reader vs qa-extract

Training data (nothing else is read for training or choosing):

* SQuAD v1.1 dev **tune half** (even-numbered articles, ``qa.eval.squad.article_halves``), folds 1–4 of
  ``qa.eval.squad.tune_folds``; tune fold 0 is held out of training to choose the checkpoint's threshold and to
  compare with the extractor (the tune-half CV);
* the seeds gold set's ``dev`` split (``eval/gold.jsonl``, answer found in its evidence sentence);
* SQuAD-shifts Reddit and Amazon (``../shared/data``), a seeded sample of ``--shifts`` questions.

Each example is what qa's reader sees at ask time: the question and the gold sentence (qa's splitter) with up to
``side`` tokens of its neighbouring sentences, the answer span inside the sentence; ``--neg`` of the questions
also give a negative (a sentence of the same paragraph ≥ 2 sentences away whose window lacks the answer: target
[CLS]). Word embeddings stay frozen (the shipped folder holds only what training changed). Seeded (torch, numpy,
data order); fp32; ``torch.set_num_threads(2)``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "eval"))

from qa.corpus import Article  # noqa: E402
from qa.modelfiles import _offline, resolve_model, sha256_file  # noqa: E402
from qa.reader import READER_FORMAT, READER_FORMAT_VERSION, encode_batch  # noqa: E402
from qa.eval.squad import TUNE, article_halves, load_squad, tune_folds  # noqa: E402
from qa.sentences import split_sentences  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SQUAD = DATA / "squad-dev-v1.1.json"
SHIFTS = (DATA / "squadshifts-reddit-v1.0.json", DATA / "squadshifts-amazon-v1.0.json")
WORK = ROOT / "eval" / "runs" / "reader"
MODEL_DIR = ROOT / "qa" / "models" / "qa-reader"
BASE_TENSOR = "embeddings.word_embeddings.weight"
TRAIN_ARGS = ("seed", "epochs", "shifts", "seeds_repeat", "neg", "lr", "batch", "freeze", "threads", "minutes",
              "limit")
CFG = {"max_len": 192, "side": 16, "max_question": 48, "max_answer": 30}


@dataclass(frozen=True)
class Example:
    """One training / validation input: answer span ``[a, b)`` in the sentence, or ``None`` (negative)."""

    id: str
    question: str
    before: str
    sentence: str
    after: str
    span: tuple[int, int] | None
    source: str
    fold: int = -1


def _window(sents, k: int) -> tuple[str, str, str]:
    return (sents[k - 1].text if k > 0 else "", sents[k].text, sents[k + 1].text if k + 1 < len(sents) else "")


def squad_examples(path: Path, keep: Callable[[str], bool], source: str, neg: float, rng: random.Random,
                   fold_of: dict[str, int] | None = None) -> list[Example]:
    """Examples from a SQuAD-format file, for the articles whose title ``keep`` accepts."""
    paragraphs = load_squad(path)
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    raw_paras = [p for art in raw["data"] for p in art["paragraphs"]]
    out = []
    for p, rp in zip(paragraphs, raw_paras):
        if not keep(p.title):
            continue
        sents = split_sentences(Article(p.id, p.text))
        for q in rp["qas"]:
            answers = [(int(a["answer_start"]), a["text"]) for a in q.get("answers", ()) if a.get("text")]
            hit = None
            for s0, t in answers:
                for k, s in enumerate(sents):
                    if s.start <= s0 and s0 + len(t) <= s.end and p.text[s0:s0 + len(t)] == t:
                        hit = (k, s0 - s.start, s0 - s.start + len(t))
                        break
                if hit:
                    break
            if hit is None:
                continue
            k, a, b = hit
            fold = (fold_of or {}).get(p.title, -1)
            out.append(Example(str(q["id"]), q["question"], *_window(sents, k), (a, b), source, fold))
            if rng.random() < neg:
                far = [j for j in range(len(sents)) if abs(j - k) >= 2
                       and not any(t in " ".join(_window(sents, j)) for _, t in answers)]
                if far:
                    j = rng.choice(far)
                    out.append(Example(f"{q['id']}/neg", q["question"], *_window(sents, j), None, source, fold))
    return out


def gold_dev_examples() -> list[Example]:
    """The seeds gold set's dev split, answer located (first occurrence) in its evidence sentence."""
    from short_answers import gold_items

    out = []
    for it in gold_items():
        if it.group != "dev":
            continue
        found = [(it.sentence.find(g), g) for g in it.golds if g and g in it.sentence]
        if found:
            a, g = min(found)
            out.append(Example(it.id, it.question, it.before, it.sentence, it.after, (a, a + len(g)), "seeds-dev"))
    return out


def build_data(args) -> tuple[list[Example], list[Example]]:
    """(training examples, tune fold-0 validation examples with negatives)."""
    rng = random.Random(args.seed)
    paragraphs = load_squad(SQUAD)
    halves, folds = article_halves(paragraphs), tune_folds(paragraphs)
    tune = squad_examples(SQUAD, lambda t: halves[t] == TUNE, "squad-tune", args.neg, rng, folds)
    train = [e for e in tune if e.fold != 0]
    val = [e for e in tune if e.fold == 0]
    shifts: list[Example] = []
    for path in SHIFTS:
        shifts += squad_examples(path, lambda t: True, path.stem.split("-")[1], args.neg, rng)
    rng.shuffle(shifts)
    train += shifts[:args.shifts] + gold_dev_examples() * args.seeds_repeat
    return train, val


# -- tensors ------------------------------------------------------------------------------------------------------
def tokenizer():
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(resolve_model(None)[1]) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def featurise(tok, exs: Sequence[Example]) -> list[tuple[list[int], list[int], int, int]]:
    """(ids, type ids, start token, end token) per example; an answer cut off by the budget is dropped."""
    out = []
    for e in exs:
        enc = encode_batch(tok, e.question, [(e.before, e.sentence, e.after)], **{k: CFG[k] for k in (
            "max_len", "side", "max_question")})[0]
        if e.span is None:
            out.append((list(enc.ids), list(enc.type_ids), 0, 0))
            continue
        a, b = e.span
        toks = [t for t, (s, f) in enumerate(enc.offsets) if f > a and s < b]
        if not toks:
            continue
        out.append((list(enc.ids), list(enc.type_ids), enc.lo + toks[0], enc.lo + toks[-1]))
    return out


def batches(feats, size: int, rng: random.Random) -> list[list[int]]:
    """Length-bucketed batches (examples sorted by length within chunks of 50 batches), shuffled."""
    order = list(range(len(feats)))
    rng.shuffle(order)
    out = []
    chunk = size * 50
    for c in range(0, len(order), chunk):
        part = sorted(order[c:c + chunk], key=lambda i: len(feats[i][0]))
        out += [part[i:i + size] for i in range(0, len(part), size)]
    rng.shuffle(out)
    return out


def collate(feats, idx):
    import torch

    n = max(len(feats[i][0]) for i in idx)
    ids = torch.zeros((len(idx), n), dtype=torch.long)
    types, mask = torch.zeros_like(ids), torch.zeros_like(ids)
    for r, i in enumerate(idx):
        k = len(feats[i][0])
        ids[r, :k] = torch.tensor(feats[i][0])
        types[r, :k] = torch.tensor(feats[i][1])
        mask[r, :k] = 1
    return ids, types, mask, torch.tensor([feats[i][2] for i in idx]), torch.tensor([feats[i][3] for i in idx])


# -- train --------------------------------------------------------------------------------------------------------
def train(args) -> int:
    _offline()
    import torch
    from transformers import BertForQuestionAnswering

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    train_ex, val = build_data(args)
    tok = tokenizer()
    feats = featurise(tok, train_ex)
    by_src: dict[str, int] = {}
    for e in train_ex:
        by_src[e.source + ("/neg" if e.span is None else "")] = by_src.get(e.source + ("/neg" if e.span is None
                                                                                        else ""), 0) + 1
    print(f"data: {len(feats)} features from {by_src}; validation {len(val)} ({time.time() - t0:.0f} s)",
          flush=True)
    model = BertForQuestionAnswering.from_pretrained(resolve_model(None)[1], attn_implementation="eager",
                                                     local_files_only=True)
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    for layer in model.bert.encoder.layer[:args.freeze]:
        for p in layer.parameters():
            p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    rng = random.Random(args.seed)
    plan = [b for _ in range(args.epochs) for b in batches(feats, args.batch, rng)]
    if args.limit:
        plan = plan[:args.limit]
    warm = max(1, int(0.06 * len(plan)))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (len(plan) - s) / (
        len(plan) - warm))))
    model.train()
    WORK.mkdir(parents=True, exist_ok=True)
    deadline = t0 + args.minutes * 60 if args.minutes > 0 else float("inf")
    seen, loss_avg, t1 = 0, None, time.time()
    for step, idx in enumerate(plan):
        ids, types, mask, sp, ep = collate(feats, idx)
        out = model(input_ids=ids, token_type_ids=types, attention_mask=mask)
        neg = (mask == 0)
        s_log = out.start_logits.masked_fill(neg, -1e4)
        e_log = out.end_logits.masked_fill(neg, -1e4)
        loss = (torch.nn.functional.cross_entropy(s_log, sp) + torch.nn.functional.cross_entropy(e_log, ep)) / 2
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        seen += len(idx)
        lv = float(loss.detach())
        loss_avg = lv if loss_avg is None else 0.98 * loss_avg + 0.02 * lv
        if step % 20 == 0 or step == len(plan) - 1:
            el = time.time() - t1
            print(f"step {step + 1}/{len(plan)} seen {seen} loss {loss_avg:.3f} {seen / el:.1f} ex/s "
                  f"elapsed {el / 60:.1f} min", flush=True)
        if step % 200 == 199:
            save_checkpoint(model, args, step + 1, seen)
        if args.stop and step + 1 >= args.stop:
            break
        if time.time() > deadline:
            print(f"time budget reached at step {step + 1}", flush=True)
            break
    save_checkpoint(model, args, step + 1, seen, by_src=by_src)
    return 0


def save_checkpoint(model, args, steps: int, seen: int, by_src: dict | None = None) -> None:
    import torch

    sd = {k: v for k, v in model.state_dict().items() if k != "bert." + BASE_TENSOR}
    torch.save(sd, WORK / "checkpoint.pt.tmp")
    os.replace(WORK / "checkpoint.pt.tmp", WORK / "checkpoint.pt")
    rec = {"args": vars(args), "steps": steps, "examples_seen": seen, "cfg": CFG}
    if by_src:
        rec["data"] = by_src
    (WORK / "checkpoint.json").write_text(json.dumps(rec, indent=1, default=str) + "\n", encoding="utf-8")


# -- export -------------------------------------------------------------------------------------------------------
def load_torch_model():
    _offline()
    import torch
    from transformers import BertForQuestionAnswering

    model = BertForQuestionAnswering.from_pretrained(resolve_model(None)[1], attn_implementation="eager",
                                                     local_files_only=True)
    missing, unexpected = model.load_state_dict(torch.load(WORK / "checkpoint.pt"), strict=False)
    assert missing == ["bert." + BASE_TENSOR] and not unexpected, (missing, unexpected)
    return model.eval()


def export(args) -> int:
    """checkpoint -> fp32 ONNX (inputs_embeds) -> bert fusion -> int8 dynamic (MatMul/Attention, per channel)."""
    import logging
    import warnings

    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    if args.spec_only:  # only the threshold / record changes: model.onnx stays as it is
        write_spec(args.threshold)
        print(f"rewrote {MODEL_DIR / 'reader.json'} (threshold {args.threshold})")
        return 0
    model = load_torch_model()

    class _Head(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, inputs_embeds, attention_mask, token_type_ids):
            o = self.m(inputs_embeds=inputs_embeds, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return o.start_logits, o.end_logits

    names = ["inputs_embeds", "attention_mask", "token_type_ids"]
    ex = (torch.randn(2, 6, 384), torch.tensor([[1] * 6, [1] * 4 + [0] * 2]), torch.zeros(2, 6, dtype=torch.long))
    fp32, fused = WORK / "fp32.onnx", WORK / "fused.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Head(model), ex, str(fp32), input_names=names, output_names=["start_logits", "end_logits"],
                          dynamic_axes={k: {0: "batch", 1: "tokens"} for k in names + ["start_logits", "end_logits"]},
                          opset_version=17, dynamo=False)
    fo = FusionOptions("bert")
    fo.enable_skip_layer_norm = fo.enable_bias_skip_layer_norm = False
    opt = optimize_model(str(fp32), model_type="bert", num_heads=12, hidden_size=384, opt_level=1,
                         optimization_options=fo)
    opt.save_model_to_file(str(fused))
    logging.getLogger().setLevel(logging.ERROR)
    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    target = MODEL_DIR / "model.onnx"
    if args.fp32:
        target.write_bytes(fused.read_bytes())
    else:
        quantize_dynamic(str(fused), str(target), weight_type=QuantType.QInt8, per_channel=True, reduce_range=False,
                         op_types_to_quantize=["MatMul", "Attention"],
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    write_spec(args.threshold, quantization=None if args.fp32 else "int8-dynamic-per-channel")
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB)")
    return 0


def write_spec(threshold: float, quantization: str | None = None) -> dict:
    import hashlib

    from qa.modelfiles import map_safetensors, DEFAULT_MODEL

    base_dir = Path(resolve_model(None)[1])
    emb = map_safetensors(base_dir / "model.safetensors")[BASE_TENSOR]
    spec_path = MODEL_DIR / "reader.json"
    old = json.loads(spec_path.read_text()) if spec_path.is_file() else {}
    ck = json.loads((WORK / "checkpoint.json").read_text())
    spec = {
        "format": READER_FORMAT, "format_version": READER_FORMAT_VERSION, "name": "qa-reader",
        "model": "model.onnx", **CFG, "threshold": threshold,
        "quantization": quantization if quantization is not None else old.get("quantization"),
        "base": {"name": DEFAULT_MODEL, "file": "model.safetensors", "tensor": BASE_TENSOR,
                 "tensor_sha256": hashlib.sha256(np.ascontiguousarray(emb).tobytes()).hexdigest(),
                 "tokenizer_sha256": sha256_file(base_dir / "tokenizer.json")},
        "files": {"model.onnx": {"bytes": (MODEL_DIR / "model.onnx").stat().st_size,
                                 "sha256": sha256_file(MODEL_DIR / "model.onnx")}},
        "training": {"command": "python eval/train_reader.py train " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in ck["args"].items() if k in TRAIN_ARGS and k != "minutes")
            + f" --minutes 0 --stop {ck['steps']}",
            "steps": ck["steps"], "examples_seen": ck["examples_seen"], "data": ck.get("data"),
            "squad_sha256": sha256_file(SQUAD)},
    }
    spec_path.write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    return spec


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=("train", "export", "eval", "speed", "end2end"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--shifts", type=int, default=6000, help="SQuAD-shifts questions sampled for training")
    ap.add_argument("--seeds-repeat", type=int, default=2, help="times the seeds dev split is repeated")
    ap.add_argument("--neg", type=float, default=0.1, help="share of questions that also give a negative")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--freeze", type=int, default=0, help="lowest encoder layers kept frozen")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=60.0, help="stop (and save) after this much time (0: none)")
    ap.add_argument("--limit", type=int, default=0, help="train: plan at most this many steps (0: all)")
    ap.add_argument("--stop", type=int, default=0,
                    help="train: stop after this many steps of the plan (the schedule unchanged); reproduces a run "
                         "that the time budget stopped")
    ap.add_argument("--threshold", type=float, default=0.0, help="export: no-answer threshold to record")
    ap.add_argument("--fp32", action="store_true", help="export: skip int8 quantisation")
    ap.add_argument("--spec-only", action="store_true", help="export: rewrite reader.json only (threshold)")
    ap.add_argument("--out", type=Path, default=ROOT / "eval" / "reader.md")
    args = ap.parse_args(argv)
    if args.command == "train":
        return train(args)
    if args.command == "export":
        return export(args)
    from reader_eval import main as eval_main

    return eval_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
