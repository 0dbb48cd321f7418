"""Permission errors for real: as root (CI), a subprocess drops to the unprivileged user `nobody` after importing
qa, so files that only root may read really are unreadable to it. (tests/test_errors.py covers the same paths with
monkeypatched errors, and for real when the suite itself runs unprivileged.)"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="runs only as root (it drops to `nobody`); unprivileged runs use test_errors.py"
)

NOBODY = 65534
DROP = "import os; os.setgroups([]); os.setgid({n}); os.setuid({n})\n".format(n=NOBODY)


# Import everything while still root (the interpreter lives under /root, which nobody may not read), including
# what typer/click import lazily when a command runs.
WARM = (
    "import contextlib, io, qa, qa.corpus, qa.index, qa.errors, qa.cli, qa.store.folder, qa.search, qa.extract\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    try:\n        qa.cli.app(['ask', '--help'], standalone_mode=False)\n    except SystemExit:\n        pass\n"
)


def _as_nobody(code: str) -> subprocess.CompletedProcess:
    prog = WARM + DROP + code
    return subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=120)


@pytest.fixture
def shared_dir():
    d = Path(tempfile.mkdtemp(prefix="qa-perm-"))
    os.chmod(d, 0o755)  # nobody may enter; what it may read inside is decided per file
    yield d
    subprocess.run(["rm", "-rf", str(d)], check=False)


def test_unreadable_file_is_a_corpus_error(shared_dir):
    (shared_dir / "a.txt").write_text("Police seized 3 tons.", encoding="utf-8")
    secret = shared_dir / "secret.txt"
    secret.write_text("Only root reads this.", encoding="utf-8")
    os.chmod(shared_dir / "a.txt", 0o644)
    os.chmod(secret, 0o600)
    r = _as_nobody(
        "from qa.corpus import load_corpus\nfrom qa.errors import CorpusError\n"
        f"try:\n    load_corpus([{str(shared_dir)!r}])\nexcept CorpusError as e:\n    print('CorpusError:', e)\n"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"CorpusError: {secret}: cannot read (Permission denied)"


def test_unreadable_folder_is_a_corpus_error(shared_dir):
    locked = shared_dir / "locked"
    locked.mkdir()
    (locked / "a.txt").write_text("Text.", encoding="utf-8")
    os.chmod(locked, 0o700)
    r = _as_nobody(
        "from qa.corpus import load_corpus\nfrom qa.errors import CorpusError\n"
        f"try:\n    load_corpus([{str(shared_dir)!r}])\nexcept CorpusError as e:\n    print('CorpusError:', e)\n"
    )
    assert r.returncode == 0, r.stderr
    assert "CorpusError:" in r.stdout and "locked: cannot list folder (Permission denied)" in r.stdout


def test_unreadable_index_gives_one_cli_line(shared_dir, copy_index):
    import shutil

    idx = shared_dir / "index"
    shutil.copytree(copy_index, idx)
    for p in [idx, *idx.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    gen = next(idx.glob("gen-*"))
    os.chmod(gen / "manifest.json", 0o600)
    r = _as_nobody(
        "import sys\nfrom qa.cli import app\n"
        f"sys.argv = ['qa', 'ask', 'tons seized', '--mode', 'bm25', '--index-dir', {str(idx)!r}]\napp()\n"
    )
    assert r.returncode == 4, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Permission denied" in lines[0]
    assert "Traceback" not in r.stderr
