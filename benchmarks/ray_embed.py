"""`qa index --ray` throughput: qa.embed.ray.RayEncoder (Ray Data actors on a local Ray cluster) against the plain
single-process qa.embed.Encoder, on the same sentences (the first N sentences of the SQuAD v1.1 dev contexts, split
with qa.sentences), batch 64, length-sorted. Writes benchmarks/RAY.md with the machine and the command.

    .venv/bin/pip install -e ".[ray]"
    .venv/bin/python benchmarks/ray_embed.py [--sentences 5000] [--squad ../shared/data/squad-dev-v1.1.json]

Ray rows are timed twice: end to end (cluster start, actors importing torch and loading the model, embedding,
shutdown: what `qa index --ray` pays) and steady state (sentences over the time from the first batch's start to the
last batch's end on the actors, RayEncoder.stats["embed_seconds"]: the embedding rate once the actors are up, which is
what more cores and nodes multiply).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.corpus import Article  # noqa: E402
from qa.sentences import split_sentences  # noqa: E402


def sentences(squad: Path, n: int) -> list[str]:
    data = json.loads(squad.read_text(encoding="utf-8"))["data"]
    out: list[str] = []
    for art in data:
        for i, p in enumerate(art["paragraphs"]):
            out += [s.text for s in split_sentences(Article(f"{art['title']}-{i}", p["context"]))]
            if len(out) >= n:
                return out[:n]
    return out


def machine() -> str:
    cpu = "unknown"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import ray
    import torch

    return (f"{os.cpu_count()} cores ({cpu}), Python {sys.version.split()[0]}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), ray {ray.__version__}")


def run_plain(texts: list[str], threads: int) -> tuple[np.ndarray, float]:
    import torch

    from qa.embed import Encoder

    torch.set_num_threads(threads)
    enc = Encoder()
    enc.encode(texts[:64])  # load and warm up outside the timing
    t = time.perf_counter()
    v = enc.encode(texts, batch_size=64)
    return v, time.perf_counter() - t


def run_ray(texts: list[str], actors: int, threads: int) -> tuple[np.ndarray, float, float]:
    from qa.embed.ray import RayEncoder

    enc = RayEncoder(num_actors=actors, threads=threads, num_cpus=os.cpu_count(), batch_size=64)
    t = time.perf_counter()
    v = enc.encode(texts)
    total = time.perf_counter() - t
    steady = len(texts) / max(1e-9, enc.stats["embed_seconds"])
    return v, total, steady


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sentences", type=int, default=5000)
    ap.add_argument("--squad", type=Path, default=ROOT.parent / "shared" / "data" / "squad-dev-v1.1.json")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RAY.md")
    args = ap.parse_args()
    texts = sentences(args.squad, args.sentences)
    load_before = os.getloadavg()
    ncpu = os.cpu_count() or 1
    rows = []
    ref, dt = run_plain(texts, ncpu)
    rows.append(("plain Encoder, 1 process", f"{ncpu} torch threads", len(texts) / dt, None, dt, 1.0))
    print(rows[-1], flush=True)
    v, dt = run_plain(texts, 1)  # one core's rate: what each single-threaded Ray actor can reach at best
    rows.append(("plain Encoder, 1 process", "1 torch thread", len(texts) / dt, None, dt, float(((v * ref).sum(1)).min())))
    print(rows[-1], flush=True)
    for actors, threads in ((ncpu, 1), (1, ncpu)):
        v, total, steady = run_ray(texts, actors, threads)
        cos = float(((v * ref).sum(1)).min())
        rows.append((f"RayEncoder, local cluster", f"{actors} actor(s) x {threads} thread(s)", len(texts) / total,
                     steady, total, cos))
        print(rows[-1], flush=True)
    v, dt = run_plain(texts, ncpu)  # again: the machine's load drifts; the two plain rows bracket the Ray ones
    rows.append(("plain Encoder, 1 process (again)", f"{ncpu} torch threads", len(texts) / dt, None, dt,
                 float(((v * ref).sum(1)).min())))
    print(rows[-1], flush=True)
    load_after = os.getloadavg()
    base = rows[0][2]
    md = [
        "# `qa index --ray`: Ray Data embedding vs the single-process encoder",
        "",
        f"Command: `.venv/bin/python benchmarks/ray_embed.py --sentences {args.sentences}` on "
        f"{time.strftime('%Y-%m-%d %H:%M')}.",
        f"Machine: {machine()}. Load average (1/5/15 min) before: {' / '.join(f'{x:.2f}' for x in load_before)}, "
        f"after: {' / '.join(f'{x:.2f}' for x in load_after)} (the cores are shared with other work).",
        "",
        f"{len(texts)} sentences: the first ones of the SQuAD v1.1 dev contexts, split by qa.sentences; batch 64, "
        "length-sorted; all-MiniLM-L6-v2 float32 on CPU. End to end = what `qa index --ray` pays for the embedding "
        "stage (local cluster start, actors importing torch and loading the model, embedding, shutdown); steady = "
        "sentences / (last batch's end - first batch's start) on the actors: the rate once the actors are up.",
        "",
        "| encoder | workers | sentences/s end to end | sentences/s steady | seconds | vs plain (end to end) | "
        "min cosine vs plain |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, workers, rate, steady, secs, cos in rows:
        md.append(f"| {name} | {workers} | {rate:.0f} | {'-' if steady is None else f'{steady:.0f}'} | {secs:.1f} | "
                  f"{rate / base:.2f}x | {cos:.7f} |")
    md += [
        "",
        f"**{ncpu} cores cannot show the speed-up Ray is for.** Ray splits the same cores among actors that each "
        "run the same model, while the plain encoder already uses every core through torch's threads: on an idle "
        "machine Ray can at best match it once the actors are up, and pays the cluster start and one model load per "
        "actor on top. What Ray buys is scale-out: the steady rate per actor is what each added core or node "
        "contributes (see [docs/scale.md](../docs/scale.md) for 100M sentences on N machines).",
        "",
        "On a loaded machine (other processes wanting the same cores, see the load average) single-threaded workers "
        "can beat one multi-threaded process: torch's threads meet at a barrier after every operation, so one "
        "descheduled thread stalls the others. Compare the plain 1-thread row with the plain 2-thread rows: when "
        "one thread is about as fast as two, the cores were not there to be had, and a Ray gain in that run is this "
        "effect (independent processes), not more compute.",
    ]
    args.out.write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))


if __name__ == "__main__":
    main()
