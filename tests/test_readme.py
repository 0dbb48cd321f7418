"""The README stays true: its Python quickstart runs as written, and .ci/run runs its test command."""

from __future__ import annotations

import re
import shutil

import pytest

from .conftest import ROOT, SEEDS

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command():
    test_cmd = next(b.strip() for b in _blocks("bash") if "pytest" in b)
    ci_lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_cmd in ci_lines


def test_setup_command_asks_the_safe_mekong_question():
    setup = _blocks("bash")[0].strip()
    assert "torch==2.13.0" in setup and setup.endswith('qa ask "tons seized in Safe Mekong"')


@pytest.mark.slow
def test_python_quickstart_runs_as_written(tmp_path, monkeypatch, capsys, encoder):
    shutil.copytree(SEEDS, tmp_path / "seeds")
    monkeypatch.chdir(tmp_path)
    code = _blocks("python")[0]
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("[000_8a6680b996ccc773 §7]")
    assert out.splitlines()[-1] == "2,534 drug crime suspects number True"


# -- the README's output blocks (docs/readme_blocks.py) ---------------------------------------------------------------
def _readme_blocks_module():
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("readme_blocks", ROOT / "docs" / "readme_blocks.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("readme_blocks", mod)
    spec.loader.exec_module(mod)
    return mod


def test_every_output_block_has_its_commands_and_back():
    rb = _readme_blocks_module()
    assert set(rb.readme_blocks(README)) == set(rb.BLOCKS)
    for name, (lang, text) in rb.readme_blocks(README).items():  # console blocks show the commands that made them
        if rb.BLOCKS[name].console:
            assert [ln[2:] for ln in text.splitlines() if ln.startswith("$ ")] == list(rb.BLOCKS[name].commands), name


def test_masks_hide_only_timings_generation_names():
    rb = _readme_blocks_module()
    line = "indexed 3 article(s), 47 sentence(s) into index/ (embedded 47, reused 0) in 55.6s (onnx int8)"
    assert rb.mask(line) == line.replace("55.6s", "<seconds>s")
    assert rb.mask(line.replace("55.6s", "3.2s")) == rb.mask(line)
    assert rb.mask("score 3.2655  bm25 10.29 (#1)") == "score 3.2655  bm25 10.29 (#1)"  # scores are not masked
    assert rb.mask('"generation":"gen-20261123T201307-efdf3b"') == '"generation":"gen-<date>-<id>"'


def test_each_cpu_family_recording_holds_the_readmes_blocks_and_commands():
    """docs/readme-blocks/FAMILY.md (the blocks as printed where onnxruntime's int8 kernels round differently) has
    README.md's blocks, the same commands, and differs from them only in numbers; README.md is its own family's."""
    rb = _readme_blocks_module()
    assert rb.expected_text(README, rb.README_FAMILY) == README
    mine = rb.readme_blocks(README)
    variants = sorted(rb.VARIANTS.glob("*.md"))
    assert variants  # at least the AVX-512 VNNI recording
    for path in variants:
        text = path.read_text(encoding="utf-8")
        assert rb.expected_text(README, path.stem) == text
        theirs = rb.readme_blocks(text)
        assert set(theirs) == set(mine), path
        for name, (lang, body) in theirs.items():
            assert lang == mine[name][0]
            assert [ln for ln in body.splitlines() if ln.startswith("$ ")] == \
                [ln for ln in mine[name][1].splitlines() if ln.startswith("$ ")], (path, name)
            digits = re.compile(r"-?\d+(?:\.\d+)?")
            assert digits.sub("#", rb.mask(body)) == digits.sub("#", rb.mask(mine[name][1])), (path, name)


def test_readme_commands_name_no_folder_a_clone_lacks():
    """Every `--index-dir DIR` of a README command is built by an earlier command of the same block, or is in the
    repository (issue 21: `qa serve --index-dir benchmarks/data/index-seeds`, a git-ignored benchmark folder)."""
    import shlex
    import subprocess

    bad = []
    for block in _blocks("console") + _blocks("bash") + _blocks("text"):
        built: set[str] = set()
        for line in block.splitlines():
            if not line.startswith(("$ qa ", "qa ")):
                continue
            words = shlex.split(line.lstrip("$ ").split(" #")[0].rstrip("&"))
            dirs = [words[i + 1] for i, w in enumerate(words[:-1]) if w == "--index-dir"]
            for d in dirs:
                if words[1] == "index":
                    built.add(d)
                elif d not in built and d[0] not in "[<" and (
                        not (ROOT / d).exists() or
                        subprocess.run(["git", "check-ignore", "-q", d], cwd=ROOT).returncode == 0):
                    bad.append(line)
    assert not bad, bad


@pytest.mark.slow
def test_readme_output_blocks_are_what_the_code_prints(tmp_path):
    """`python docs/readme_blocks.py --check`: the quick start, not-found, JSON and `qa serve` blocks, run as a new
    user runs them (a fresh folder with seeds/ only), equal the README's but for timings, generation names and the
    port."""
    rb = _readme_blocks_module()
    fresh = rb.fresh_blocks(["ask", "not-found", "json", "serve"], tmp_path)
    diffs = rb.differences(rb.expected_text(README), fresh)  # this CPU's int8 family's recording
    assert not diffs, "\n".join(diffs.values()) + "\nrun: python docs/readme_blocks.py"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["milvus", "ray"])
def test_readme_milvus_and_ray_blocks_are_what_the_code_prints(tmp_path, name):
    rb = _readme_blocks_module()
    if not rb.available(name):
        pytest.skip(f"{name}: needs {', '.join(rb.BLOCKS[name].needs)} (pip install -e '.[{name}]')")
    diffs = rb.differences(rb.expected_text(README), rb.fresh_blocks([name], tmp_path))
    assert not diffs, "\n".join(diffs.values()) + "\nrun: python docs/readme_blocks.py"
