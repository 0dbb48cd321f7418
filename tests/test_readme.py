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
