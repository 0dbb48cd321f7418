"""The fair embedding peer (issue 21): sentence-transformers' own ONNX backend with a dynamically quantised int8
model, its fastest documented CPU setting (``SentenceTransformer(folder, backend="onnx")`` exports the model with
Optimum, then ``export_dynamic_quantized_onnx_model(model, CONFIG, folder)`` writes ``onnx/model_<suffix>.onnx``
for the CPU's configuration, ``"avx512_vnni"``, ``"avx512"`` or ``"avx2"``; the model is loaded back with
``model_kwargs={"file_name": ...}``).

sentence-transformers' ONNX backend needs ``optimum-onnx``, whose only release (0.1.0) pins ``transformers<4.58``,
while the sentence-transformers qa uses (6.x) needs ``transformers>=5``. So the peer runs in its own process over
an overlay of the packages it needs, installed beside the venv (nothing in the venv changes)::

    .venv/bin/pip install --no-deps --target benchmarks/data/peer-site sentence-transformers==5.7.0 \\
        transformers==4.57.6 huggingface_hub==0.36.2 tokenizers==0.22.2 optimum==2.1.0 optimum-onnx==0.1.0

``benchmarks.onnx_embed --peer`` starts this module as a worker (``PYTHONPATH=benchmarks/data/peer-site``) and
times it in the same rounds as qa's encoders: it sends ``embed CONFIG BATCH`` on stdin, the worker embeds the
sentences it was given and answers one JSON line ``{"seconds": ...}``, writing the vectors to
``OUT/peer-CONFIG-BATCH.npy``.

>>> peer_file("avx2"), peer_file("avx512_vnni")
('onnx/model_quint8_avx2.onnx', 'onnx/model_qint8_avx512_vnni.onnx')
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

def peer_file(config: str) -> str:
    """The file ``export_dynamic_quantized_onnx_model`` writes for ``config`` (its weights' type + the config)."""
    return f"onnx/model_{'quint8' if config == 'avx2' else 'qint8'}_{config}.onnx"


def cpu_config() -> str:
    """The quantisation configuration the peer's documentation names for this CPU."""
    flags = next((ln.split(":", 1)[1].split() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("flags")), [])
    return "avx512_vnni" if "avx512_vnni" in flags else "avx512" if "avx512f" in flags else "avx2"


def export_peer(model_folder: str, work: Path, configs: list[str]) -> dict:
    """Copy the model folder to ``work``, export it to ONNX and quantise it the peer's documented way for each of
    ``configs``; return the seconds each step took, the files' sizes and the versions used."""
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(model_folder, work)
    t = time.perf_counter()
    model = SentenceTransformer(str(work), backend="onnx", device="cpu")
    model.save(str(work))
    export_s = time.perf_counter() - t
    quant_s, sizes = {}, {}
    for config in configs:
        t = time.perf_counter()
        export_dynamic_quantized_onnx_model(model, config, str(work))
        quant_s[config] = round(time.perf_counter() - t, 1)
        sizes[config] = round((work / peer_file(config)).stat().st_size / 2**20, 1)
    import optimum.version
    import sentence_transformers
    import transformers

    return {"export_s": round(export_s, 1), "quantize_s": quant_s, "file_mib": sizes, "cpu_config": cpu_config(),
            "versions": {"sentence-transformers": sentence_transformers.__version__,
                         "transformers": transformers.__version__, "optimum": optimum.version.__version__}}


def serve(model_folder: str, sentences_file: Path, out: Path, configs: list[str]) -> None:
    """The worker loop: export, load, answer ``embed CONFIG BATCH`` lines until ``quit``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    info = export_peer(model_folder, out / "peer-model", configs)
    from sentence_transformers import SentenceTransformer

    texts = json.loads(sentences_file.read_text(encoding="utf-8"))
    models = {}
    for config in configs:
        models[config] = SentenceTransformer(str(out / "peer-model"), backend="onnx", device="cpu",
                                             model_kwargs={"file_name": peer_file(config)})
        models[config].encode(texts[:200], batch_size=32)  # warm up
    print(json.dumps({"ready": True, **info}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        config, batch = cmd[1], int(cmd[2])
        t = time.perf_counter()
        v = models[config].encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)
        dt = time.perf_counter() - t
        np.save(out / f"peer-{config}-{batch}.npy", v.astype(np.float32))
        print(json.dumps({"seconds": dt}), flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_folder")
    ap.add_argument("sentences", type=Path, help="a JSON list of the sentences to embed")
    ap.add_argument("out", type=Path, help="scratch folder: the peer's model and its vectors")
    ap.add_argument("--configs", default=None, help="quantisation configs, comma-separated [default: this CPU's]")
    a = ap.parse_args(argv)
    serve(a.model_folder, a.sentences, a.out, (a.configs or cpu_config()).split(","))


if __name__ == "__main__":
    main()
