"""Regenerate README.md's output blocks from what the code prints, or check that they still match.

Every fenced block of README.md right after a ``<!-- output:NAME -->`` line is the output of the commands listed
for NAME in ``BLOCKS`` below, run the way a new user runs them: in a fresh folder holding only a copy of
``seeds/`` (so the first ``qa ask`` finds no index and builds one), with this checkout's qa::

    python docs/readme_blocks.py                 # rewrite every block in README.md from a fresh run
    python docs/readme_blocks.py --check         # exit 1 and show the differences if a block is out of date
    python docs/readme_blocks.py --only ask,json # some blocks (the others are left as they are)

What may differ between two runs, and is masked before comparing (``mask``), is only:

* timings: ``in 55.6s`` (a build's duration) and an answer's milliseconds per stage (``timings_ms``);
* index generation names: ``gen-<date>T<time>-<id>``, which hold the build's date;
* the TCP port: the ``serve`` block runs on a free port and shows it as the default, 8000.

Everything else (scores, ranks, the order of hits, texts, offsets, error messages) must be what the code prints,
byte for byte. JSON output is wrapped to the README's width and each sentence ``text`` longer than 40 characters
is shortened to its first four words and `` ...`` (``wrap_json``); that is deterministic, not masked.
``tests/test_readme.py`` runs the check (the Milvus and Ray blocks only where pymilvus / ray are installed).

**Scores depend on the CPU's int8 instructions.** ``qa index`` embeds with onnxruntime's int8 kernels, which
compute differently on a CPU with AVX-512 VNNI than on one with AVX2 only (e.g. the README example's dense score
0.679 on an AMD EPYC with AVX2, 0.662 on an Intel Xeon with AVX-512 VNNI; float32 torch gives 0.680). So the
README shows the blocks as made on ``README_FAMILY`` (:func:`int8_family`), and a machine of another family is
checked against its own recording, ``docs/readme-blocks/FAMILY.md`` (the same blocks, made on such a machine by
this script, which writes there instead of README.md). A change of output re-records both, each on its kind of
machine; a family with no recording is checked against README.md (and fails where scores differ).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARK = re.compile(r"^<!-- output:([\w-]+) -->\n```(\w*)\n(.*?)^```", re.M | re.S)
MASKS = (
    (re.compile(r"\bin \d+(?:\.\d+)?s\b"), "in <seconds>s"),
    (re.compile(r"gen-\d{8}T\d{6}-[0-9a-f]+"), "gen-<date>-<id>"),
    # per-stage milliseconds of an answer (`timings_ms` in JSON, `qa ask --verbose`)
    (re.compile(r'"timings_ms": \{[^{}]*\}'), '"timings_ms": {<ms>}'),
    (re.compile(r"\b(embed|bm25|dense|fuse|rerank|short|total) \d+(?:\.\d+)? ms\b"), r"\1 <ms> ms"),
)


README_FAMILY = "avx2"  # the int8 family of the machine that made README.md's blocks (an AMD EPYC, AVX2 only)
VARIANTS = ROOT / "docs" / "readme-blocks"


def int8_family() -> str:
    """Which of onnxruntime's x86 int8 kernels this CPU runs (its best of AVX-512 VNNI, AVX-VNNI, AVX-512BW, AVX2),
    read from ``/proc/cpuinfo``; the machine type elsewhere.

    >>> int8_family() in {"avx512vnni", "avxvnni", "avx512bw", "avx2"} or bool(int8_family())
    True
    """
    import platform

    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.machine() or "unknown"
    flags = set(next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), []))
    for flag, family in (("avx512_vnni", "avx512vnni"), ("avx_vnni", "avxvnni"), ("avx512bw", "avx512bw"),
                         ("avx2", "avx2")):
        if flag in flags:
            return family
    return platform.machine() or "unknown"


def expected_text(readme: str, family: str | None = None) -> str:
    """What this machine's blocks are checked against: ``readme`` on :data:`README_FAMILY` (or a family with no
    recording), else the family's recording."""
    family = family or int8_family()
    variant = VARIANTS / f"{family}.md"
    return readme if family == README_FAMILY or not variant.is_file() else variant.read_text(encoding="utf-8")


def variant_text(readme: str, fresh: dict[str, str], family: str) -> str:
    """The recording for ``family``: every README block, those in ``fresh`` as made now (on this machine)."""
    head = (f"# README output blocks as printed on a CPU of int8 family `{family}`\n\n"
            "Made by `python docs/readme_blocks.py` on such a machine; `tests/test_readme.py` checks a machine of "
            f"this family against these instead of README.md's (made on `{README_FAMILY}`): onnxruntime's int8 "
            "kernels round differently there, so scores differ in the last digits. See docs/readme_blocks.py.\n\n")
    have = readme_blocks(readme)
    parts = [f"<!-- output:{name} -->\n```{lang}\n{fresh.get(name, text)}```\n" for name, (lang, text) in have.items()]
    return head + "\n".join(parts)


@dataclass(frozen=True)
class Block:
    """``commands`` as the README shows them; ``console``: show each as ``$ command`` before its output."""

    commands: tuple[str, ...]
    console: bool = True
    needs: tuple[str, ...] = ()  # modules the commands need (pymilvus, ray): without them the block is not run


BLOCKS: dict[str, Block] = {
    "ask": Block(('qa ask "tons seized in Safe Mekong"',), console=False),
    "not-found": Block(('qa ask "What is the exchange rate of the yuan?" -k 2',)),
    "json": Block(('qa ask "how many suspects were arrested in Safe Mekong?" -k 1 --context 1 --json',), console=False),
    "list": Block(('qa ask "Apart from ASEAN members, which countries is China open to anti-drug cooperation with?" -k 1',)),
    "milvus": Block(("qa index seeds --milvus qa.db", 'qa ask "tons seized in Safe Mekong" --milvus qa.db -k 1',
                     "qa ask tons --milvus http://127.0.0.1:19530"), needs=("pymilvus",)),
    "serve": Block(("qa serve &", "curl -s 'http://127.0.0.1:8000/ask?q=the&k=1'", "curl -s http://127.0.0.1:8000/healthz")),
    "ray": Block(("qa index seeds --index-dir rayidx --ray --ray-actors 2",
                  "qa index seeds --milvus rm.db --ray --ray-actors 2",
                  "qa index seeds --ray-address 127.0.0.1:1"), needs=("ray", "pymilvus")),
}


def mask(text: str) -> str:
    """``text`` with the parts that vary between runs replaced by placeholders.

    >>> mask("indexed 3 article(s) into index/ in 3.2s (onnx int8) gen-20261123T201307-efdf3b")
    'indexed 3 article(s) into index/ in <seconds>s (onnx int8) gen-<date>-<id>'
    """
    for pattern, placeholder in MASKS:
        text = pattern.sub(placeholder, text)
    return text


def readme_blocks(text: str) -> dict[str, tuple[str, str]]:
    """NAME -> (fence language, block text) of each ``<!-- output:NAME -->`` block of ``text``."""
    return {m.group(1): (m.group(2), m.group(3)) for m in MARK.finditer(text)}


def _shorten(text: str) -> str:
    return text if len(text) <= 40 else " ".join(text.split()[:4]) + " ..."


def _short_texts(obj):
    if isinstance(obj, dict):
        return {k: _shorten(v) if k == "text" and isinstance(v, str) else _short_texts(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_short_texts(v) for v in obj]
    return obj


def _pack(pieces: list[str], first: str, indent: int, width: int) -> list[str]:
    """``pieces`` joined by spaces after ``first``, a new line (indented by ``indent``) whenever one would pass
    ``width``."""
    lines, line, empty = [], first, True
    for p in pieces:
        if not empty and len(line) + 1 + len(p) > width:
            lines.append(line)
            line = " " * indent + p
        else:
            line += ("" if empty else " ") + p
        empty = False
    return lines + [line]


def _pairs(d: dict) -> list[str]:
    """``"key": value,`` pieces of ``d``; a dict value is split into its own pieces (``{"a": 1,`` ``"b": 2}``)."""
    out: list[str] = []
    for i, (k, v) in enumerate(d.items()):
        if isinstance(v, dict) and len(v) > 1:
            inner = _pairs(v)
            inner[0], inner[-1] = f"{json.dumps(k)}: {{" + inner[0], inner[-1] + "}"
            out.extend(inner)
        else:
            out.append(f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}")
        if i < len(d) - 1:
            out[-1] += ","
    return out


def wrap_json(obj: dict, width: int = 116) -> str:
    """One answer object as ``qa ask --json`` prints it, wrapped for reading: top-level fields packed into lines,
    ``short`` on its own line, each hit's fields packed under ``hits``; sentence texts shortened (``_shorten``).

    >>> print(wrap_json({"id": None, "short": None, "hits": [{"text": "a b", "score": 1.5}]}))
    {"id": null,
     "short": null,
     "hits": [{"text": "a b", "score": 1.5}]}
    """
    obj = _short_texts(obj)
    top = {k: v for k, v in obj.items() if k not in ("short", "hits")}
    lines = _pack(_pairs(top), "{", 1, width)
    lines[-1] += ","
    if "short" in obj:
        lines.extend(_pack(_pairs({"short": obj["short"]}), " ", 10, width))
        lines[-1] += ","
    hits, lead = obj.get("hits", []), ' "hits": ['
    if not hits:
        lines.append(lead + "]}")
    for n, h in enumerate(hits):
        packed = _pack(_pairs(h), (lead if n == 0 else " " * len(lead)) + "{", len(lead) + 1, width)
        packed[-1] += "}" + ("," if n < len(hits) - 1 else "]}")
        lines.extend(packed)
    return "\n".join(lines)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Workspace:
    """A fresh folder holding a copy of ``seeds/``, where the README's commands run as a new user runs them."""

    def __init__(self, folder: Path):
        self.folder = folder
        shutil.copytree(ROOT / "seeds", folder / "seeds")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QA_INDEX_DIR", "QA_MILVUS", "PYTEST"))}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", NO_COLOR="1", COLUMNS="120")
        self.env = env

    def argv(self, command: str) -> list[str]:
        words = shlex.split(command)
        assert words[0] == "qa", command
        return [sys.executable, "-m", "qa.cli", *words[1:]]

    def run(self, command: str) -> str:
        """What ``command`` prints to a terminal's reader: stderr then stdout, as the README shows them."""
        r = subprocess.run(self.argv(command), cwd=self.folder, env=self.env, capture_output=True, text=True,
                           timeout=1800)
        return (r.stderr + r.stdout).rstrip("\n")

    def serve(self, commands: tuple[str, ...]) -> list[tuple[str, str]]:
        """``qa serve &`` on a free port, then each ``curl -s URL`` (fetched here; the port shown as 8000)."""
        port = _free_port()
        argv = self.argv(commands[0].rstrip("& ")) + ["--port", str(port)]
        proc = subprocess.Popen(argv, cwd=self.folder, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            first = proc.stderr.readline().rstrip("\n")
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read()  # noqa: S310
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"qa serve did not start: {first} {proc.stderr.read()}") from None
                    time.sleep(0.2)
            out = [(commands[0], first)]
            for c in commands[1:]:
                url = shlex.split(c)[-1].replace(":8000", f":{port}")
                try:
                    body = urllib.request.urlopen(url, timeout=60).read()  # noqa: S310 - loopback
                except urllib.error.HTTPError as e:
                    body = e.read()
                out.append((c, body.decode("utf-8")))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        return [(c, o.replace(f":{port}/", ":8000/")) for c, o in out]


def generate(name: str, ws: Workspace) -> str:
    """Block ``name`` as the code prints it now, run in ``ws`` (blocks run in README order share it)."""
    block = BLOCKS[name]
    if name == "serve":
        shown = ws.serve(block.commands)
    elif name == "json":
        shown = [(c, wrap_json(json.loads(ws.run(c).splitlines()[-1]))) for c in block.commands]
    else:
        shown = [(c, ws.run(c)) for c in block.commands]
    if not block.console:
        return "\n".join(o for _, o in shown) + "\n"
    return "".join(f"$ {c}\n{o}\n" for c, o in shown)


def available(name: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in BLOCKS[name].needs)


def fresh_blocks(names: list[str], folder: Path) -> dict[str, str]:
    """NAME -> generated text for ``names``, run in README order in a new workspace under ``folder`` (the ``ask``
    block always runs first: it builds the index the others use, as the quick start does)."""
    ws = Workspace(folder)
    order = list(BLOCKS)
    out = {"ask": generate("ask", ws)}
    for name in sorted(set(names) - {"ask"}, key=order.index):
        out[name] = generate(name, ws)
    return {n: out[n] for n in names}


def differences(readme: str, fresh: dict[str, str]) -> dict[str, str]:
    """NAME -> unified diff (masked) for each block of ``readme`` that ``fresh`` disagrees with."""
    have = readme_blocks(readme)
    out = {}
    for name, text in fresh.items():
        old = mask(have[name][1]) if name in have else ""
        new = mask(text)
        if old != new:
            out[name] = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "README.md", "fresh"))
    return out


def rewrite(readme: str, fresh: dict[str, str]) -> str:
    """``readme`` with each named block replaced by its fresh text."""

    def sub(m: re.Match) -> str:
        name = m.group(1)
        return m.group(0) if name not in fresh else f"<!-- output:{name} -->\n```{m.group(2)}\n{fresh[name]}```"

    return MARK.sub(sub, readme)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 when a block is out of date")
    ap.add_argument("--only", default="", help="comma-separated block names (default: every block)")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(BLOCKS)
    unknown = [n for n in names if n not in BLOCKS]
    if unknown:
        ap.error(f"unknown block(s) {unknown}; known: {list(BLOCKS)}")
    skipped = [n for n in names if not available(n)]
    names = [n for n in names if n not in skipped]
    if skipped:
        print(f"skipped (module not installed): {', '.join(skipped)}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="qa-readme-") as tmp:
        fresh = fresh_blocks(names, Path(tmp))
    readme = README.read_text(encoding="utf-8")  # read after the (minutes-long) run: edits made meanwhile are kept
    family = int8_family()
    diffs = differences(expected_text(readme, family), fresh)
    if args.check:
        for name, d in diffs.items():
            print(f"== block {name} is out of date (int8 family {family}):\n{d}")
        return 1 if diffs else 0
    if family == README_FAMILY:
        README.write_text(rewrite(readme, fresh), encoding="utf-8")
        print(f"rewrote {len(fresh)} block(s) of README.md ({len(diffs)} changed beyond the masked parts)")
    else:
        out = VARIANTS / f"{family}.md"
        old = readme_blocks(out.read_text(encoding="utf-8")) if out.is_file() else {}
        keep = {n: t for n, (_, t) in old.items() if n not in fresh}  # blocks not run now keep their recording
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(variant_text(readme, {**keep, **fresh}, family), encoding="utf-8")
        print(f"this CPU's int8 family is {family}, README.md's {README_FAMILY}: wrote {len(fresh)} block(s) to "
              f"{out.relative_to(ROOT)} ({len(diffs)} changed beyond the masked parts)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
