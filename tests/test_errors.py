"""Bad input gets one clear error line (CLI: non-zero exit, no traceback; library: a qa exception) and leaves
existing data intact. Every case runs through the library and through the CLI (typer's CliRunner).

Each CLI case checks: the exit code, that stderr is exactly one ``error: ...`` line saying what is wrong (and what
to do), no traceback, and, for commands that could touch an index, that the live index folder is byte-for-byte
unchanged and still loads (checksums verified) and answers exactly as before.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import qa
from qa.cli import app
from qa.corpus import decode_text, iter_files, load_corpus
from qa.embed import Encoder
from qa.errors import (
    CorpusError,
    IndexCorruptError,
    IndexFormatError,
    IndexNotFoundError,
    IndexWriteError,
    ModelLoadError,
    ModelMismatchError,
    QueryError,
)
from qa.search import MAX_QUESTION_CHARS
from qa.sentences import split_sentences
from qa.tokens import Tokenizer

from .conftest import SEEDS

pytestmark = pytest.mark.slow  # most cases load the real embedding model (once per session)

runner = CliRunner()
# seeds gold questions of the dev split (g011) and a keyword form of one (g045): never the test split
QUESTIONS = ("tons seized in Safe Mekong", "share of international opium production of Afghanistan")
# SEG/: in the generation's (only) segment
GEN_FILES = ("manifest.json", "articles.npy", "sentences.npy", "paths.jsonl", "SEG/articles.jsonl", "SEG/keys.json",
             "SEG/sentences.npy", "SEG/tokens.npy", "SEG/terms.json", "SEG/vectors.npy", "bm25/vocab.json",
             "bm25/indptr.npy", "bm25/docs.npy", "bm25/weights.npy", "bm25/bounds.npy", "bm25/weights32.npy")


def gen_file(index_dir: Path, rel: str) -> Path:
    gen = gen_dir(index_dir)
    if rel.startswith("SEG/"):
        [seg] = (gen / "seg").iterdir()
        return seg / rel[4:]
    return gen / rel


def seg_key(d: dict, name: str) -> str:
    """The manifest's files key of ``name`` in the only segment."""
    return f"seg/{d['segments'][0]['name']}/{name}"


# -- helpers ------------------------------------------------------------------------------------------------------
def cli(*args) -> object:
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(r, code: int, *needles: str) -> str:
    """Assert a clean failure: exit ``code``, exactly one ``error:`` line containing ``needles``, no traceback."""
    assert r.exit_code == code, (r.exit_code, r.output)
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert "Traceback" not in r.output and "unexpected" not in err, err
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    for n in needles:
        assert n in err, (n, err)
    return err


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of an index folder (the `.lock` file's content is the last builder's pid, so it is left out)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
            and p.name != ".lock"}


def answers(folder: Path) -> list[dict]:
    idx = qa.Index.load(folder, verify=True)
    return [idx.ask(q, k=3, mode=m).to_dict() for q in QUESTIONS for m in ("bm25", "hybrid")]


@pytest.fixture
def live(copy_index):
    """A writable index folder plus what it holds and answers now; ``check()`` asserts nothing changed."""

    class Live:
        dir = copy_index
        before = snapshot(copy_index)
        expected = answers(copy_index)

        def check(self):
            assert snapshot(self.dir) == self.before, "the live index folder changed"
            assert answers(self.dir) == self.expected

    return Live()


def gen_dir(index_dir: Path) -> Path:
    return index_dir / (index_dir / "CURRENT").read_text().strip()


# -- no index, wrong index ----------------------------------------------------------------------------------------
def test_no_index_at_dir(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(IndexNotFoundError, match="no index at .*build one with `qa index"):
        qa.Index.load(missing)
    for args in (["ask", "tons seized"], ["info"]):
        one_line_error(cli(*args, "--index-dir", missing), 4, "no index at", "qa index PATHS --index-dir")
    (tmp_path / "empty").mkdir()
    one_line_error(cli("ask", "tons seized", "--index-dir", tmp_path / "empty"), 4, "no index at")
    assert not missing.exists()  # asking never creates anything


def test_index_dir_is_a_file(tmp_path):
    f = tmp_path / "afile"
    f.write_text("not an index")
    with pytest.raises(IndexNotFoundError, match="is a file, not an index folder"):
        qa.Index.load(f)
    one_line_error(cli("ask", "tons seized", "--index-dir", f), 4, "is a file, not an index folder")
    one_line_error(cli("info", "--index-dir", f), 4, "is a file, not an index folder")
    with pytest.raises(IndexWriteError, match="is a file, not an index folder"):
        qa.Index.build([SEEDS], f)
    one_line_error(cli("index", SEEDS, "--index-dir", f, "-q"), 4, "is a file, not an index folder")
    assert f.read_text() == "not an index"


def test_index_dir_cannot_be_created(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    one_line_error(cli("index", SEEDS, "--index-dir", blocker / "sub", "-q"), 4, "cannot create the index folder",
                   "--index-dir a writable folder")


def test_unreadable_index_dir(copy_index, monkeypatch):
    real = Path.is_file

    def denied(self):
        if self.name in ("manifest.json", "CURRENT"):
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "is_file", denied)
    with pytest.raises(IndexNotFoundError, match="cannot read the index .*Permission denied.*permissions"):
        qa.Index.load(copy_index)
    one_line_error(cli("ask", "tons seized", "--index-dir", copy_index), 4, "Permission denied")


@pytest.mark.skipif(os.geteuid() == 0, reason="as root, tests/test_permissions.py checks this for real by dropping to nobody")
def test_unreadable_index_dir_for_real(copy_index):
    gen = gen_dir(copy_index)
    os.chmod(gen / "manifest.json", 0)
    try:
        one_line_error(cli("ask", "tons seized", "--index-dir", copy_index), 4)
    finally:
        os.chmod(gen / "manifest.json", 0o644)


def test_current_names_a_missing_generation(live):
    (live.dir / "CURRENT").write_text("gen-19990101T000000-000000\n")
    with pytest.raises(IndexCorruptError, match="not a complete index; rebuild"):
        qa.Index.load(live.dir)
    one_line_error(cli("ask", "tons seized", "--index-dir", live.dir), 4, "gen-19990101T000000-000000",
                   "not a complete index")
    for garbage in (b"", b"../../etc\n", b"\xff\xfe\x00garbage"):
        (live.dir / "CURRENT").write_bytes(garbage)
        with pytest.raises(IndexCorruptError):
            qa.Index.load(live.dir)
        one_line_error(cli("info", "--index-dir", live.dir), 4, "CURRENT")
    # a rebuild repairs it (with the backend it was built with)
    qa.Index.build([SEEDS], live.dir, backend="torch")
    assert answers(live.dir) == live.expected


# 1: before the pruned BM25 files (bm25/bounds.npy); 2: before segments
@pytest.mark.parametrize("version", [0, 1, 2, 4, "3", None])
def test_incompatible_format_version(live, version):
    m = gen_dir(live.dir) / "manifest.json"
    d = json.loads(m.read_text())
    d["format_version"] = version
    m.write_text(json.dumps(d))
    before = snapshot(live.dir)
    with pytest.raises(IndexFormatError, match=f"index format version {version}, this qa reads version 3; rebuild"):
        qa.Index.load(live.dir)
    one_line_error(cli("ask", "tons seized", "--index-dir", live.dir), 4, f"format version {version}",
                   f"rebuild with `qa index PATHS --index-dir {live.dir}`")
    one_line_error(cli("info", "--index-dir", live.dir), 4, "format version")
    assert snapshot(live.dir) == before  # failing commands change nothing
    del d["format_version"]
    m.write_text(json.dumps(d))
    with pytest.raises(IndexFormatError, match="not a qa index"):
        qa.Index.load(live.dir)


def test_index_built_with_another_model(live):
    with pytest.raises(ModelMismatchError, match="built with model 'sentence-transformers/all-MiniLM-L6-v2', not"):
        qa.Index.load(live.dir, model="no-such/model")
    one_line_error(cli("ask", "tons seized", "--index-dir", live.dir, "--model", "no-such/model"), 4,
                   "'no-such/model'", "rebuild with `qa index --model no-such/model` or omit --model")
    # the same model under another of its names is accepted
    assert qa.Index.load(live.dir, model="all-MiniLM-L6-v2").model_name == "sentence-transformers/all-MiniLM-L6-v2"
    live.check()


@pytest.mark.parametrize("garbage", [b"{not json", b"", b"[1, 2]", b"\xff\xfe\xfa", b'{"format": "qa-index"'])
def test_manifest_garbage(live, garbage):
    m = gen_dir(live.dir) / "manifest.json"
    text = m.read_bytes()
    m.write_bytes(garbage)
    with pytest.raises((IndexCorruptError, IndexFormatError), match="rebuild with `qa index"):
        qa.Index.load(live.dir)
    one_line_error(cli("info", "--index-dir", live.dir), 4, "manifest.json")
    m.write_bytes(text[: len(text) // 2])  # truncated
    with pytest.raises(IndexCorruptError, match="not valid JSON"):
        qa.Index.load(live.dir)


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.pop("files"),
        lambda d: d.__setitem__("files", ["articles.npy"]),
        lambda d: d["files"].pop(seg_key(d, "vectors.npy")),  # an unlisted file would escape checksum verification
        lambda d: d["files"]["sentences.npy"].pop("sha256"),
        lambda d: d["files"].__setitem__("../../outside", {"bytes": 1, "sha256": "0"}),
        lambda d: d.__setitem__("model", "minilm"),
        lambda d: d["counts"].__setitem__("sentences", "many"),
        lambda d: d.__setitem__("bm25", {"method": "lucene", "nonsense": 1}),
    ],
    ids=["no-files", "files-list", "unlisted-file", "no-sha", "outside-path", "model-str", "count-str", "bm25-key"],
)
def test_manifest_with_wrong_fields(live, edit):
    m = gen_dir(live.dir) / "manifest.json"
    d = json.loads(m.read_text())
    edit(d)
    m.write_text(json.dumps(d))
    with pytest.raises(IndexCorruptError, match="lacks required fields or has wrong ones; rebuild"):
        qa.Index.load(live.dir)
    one_line_error(cli("ask", "tons seized", "--index-dir", live.dir, "--mode", "bm25"), 4, "manifest.json")


@pytest.mark.parametrize("rel", GEN_FILES[1:])
def test_truncated_file(live, rel):
    p = gen_file(live.dir, rel)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorruptError, match=r"truncated\?\); rebuild"):
        qa.Index.load(live.dir)
    with pytest.raises(IndexCorruptError):  # size is checked even without checksums
        qa.Index.load(live.dir, verify=False)
    one_line_error(cli("ask", "tons seized", "--index-dir", live.dir), 4, rel.split("/")[-1], "truncated")
    p.write_bytes(data)
    live.check()


@pytest.mark.parametrize("rel", GEN_FILES[1:])
def test_altered_byte_fails_the_checksum(live, rel):
    p = gen_file(live.dir, rel)
    data = bytearray(p.read_bytes())
    data[-3] ^= 0x01  # same size, one bit different
    p.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="checksum does not match the manifest"):
        qa.Index.load(live.dir)
    one_line_error(cli("ask", "tons seized", "--index-dir", live.dir), 4, rel.split("/")[-1], "checksum")
    one_line_error(cli("info", "--index-dir", live.dir), 4, "checksum")


def test_missing_file(live):
    os.remove(gen_dir(live.dir) / "bm25" / "weights.npy")
    with pytest.raises(IndexCorruptError, match="files are missing; rebuild"):
        qa.Index.load(live.dir)
    one_line_error(cli("ask", "tons seized", "--index-dir", live.dir), 4, "files are missing")


def test_rebuild_never_reuses_damaged_vectors(copy_index, seeds_index, encoder):
    """Altered vectors in the live index must be re-embedded, not copied into the next generation."""
    p = gen_file(copy_index, "SEG/vectors.npy")
    v = np.load(p)
    v[5] = -v[5]
    np.save(p, v)  # same size, wrong content
    idx = qa.Index.build([SEEDS], copy_index, encoder=encoder)
    assert idx.build_stats["reused"] == 0 and idx.build_stats["embedded"] == len(seeds_index)
    assert idx.build_stats["segments"] == 1
    np.testing.assert_allclose(np.asarray(idx.vectors), np.asarray(seeds_index.vectors), atol=1e-5)
    qa.Index.load(copy_index, verify=True)


# -- bad corpus input ---------------------------------------------------------------------------------------------
def _corpus(tmp_path: Path, files: dict[str, bytes]) -> Path:
    d = tmp_path / "corpus"
    d.mkdir()
    for name, data in files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
    return d


GOOD = b"Good article. It has two sentences.\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"


@pytest.mark.parametrize(
    "files, needles",
    [
        ({}, ["the corpus is empty", "corpus", "point qa"]),
        ({"notes.csv": b"a,b\n", ".hidden.txt": GOOD, ".git/x.txt": GOOD}, ["the corpus is empty"]),
        ({"a.txt": GOOD, "empty.txt": b""}, ["empty.txt: file is empty or only whitespace"]),
        ({"a.txt": GOOD, "blank.md": b"  \n\t\r\n  \n"}, ["blank.md: file is empty or only whitespace"]),
        ({"a.txt": GOOD, "bom.txt": b"\xef\xbb\xbf \n"}, ["bom.txt: file is empty or only whitespace"]),
        ({"a.txt": GOOD, "image.txt": PNG}, ["image.txt: looks like a binary file, not text", "remove it"]),
        ({"a.txt": GOOD, "late.txt": b"fine text. " * 2000 + b"\x00\x01rest"}, ["late.txt: looks like a binary",
                                                                               "offset 22000"]),
        ({"a.txt": GOOD, "latin1.txt": "Café au lait.\nCrème brûlée.".encode("latin-1")},
         ["latin1.txt: not valid UTF-8 (byte 0xe9 at offset 3, line 1)", "iconv"]),
        ({"a.txt": GOOD, "wide.txt": "Hello there.".encode("utf-16")}, ["wide.txt: is UTF-16 text", "iconv -f UTF-16"]),
        ({"a.jsonl": b'{"id": "x", "text": "ok."}\n{"id": "y", "text": "oops"\n'}, ["a.jsonl:2: not valid JSON"]),
        ({"a.jsonl": b'{"id": "x"}\n'}, ['a.jsonl:1: each line needs an object with "id" and "text"']),
        ({"a.jsonl": b'{"id": "x", "text": "  "}\n'}, ["a.jsonl:1: article 'x' has no text"]),
        ({"a.jsonl": b'{"id": "x", "text": 42}\n'}, ["a.jsonl:1: article 'x' has no text"]),
        ({"a.jsonl": b'{"id": "x", "text": "bad \\ud800 escape."}\n'}, ["a.jsonl:1: article 'x'", "surrogate"]),
        ({"a.txt": GOOD, "sub/a.md": GOOD}, ["duplicate article id 'a'", "rename one"]),
    ],
    ids=["empty-folder", "nothing-readable", "empty-file", "whitespace-file", "bom-only", "png", "nul-after-8k",
         "latin1", "utf16", "jsonl-bad-json", "jsonl-no-text", "jsonl-blank-text", "jsonl-text-not-str",
         "jsonl-surrogate", "duplicate-id"],
)
def test_bad_corpus(tmp_path, live, files, needles):
    corpus = _corpus(tmp_path, files)
    with pytest.raises(CorpusError) as e:
        qa.Index.build([corpus], live.dir)
    for n in needles:
        assert n in str(e.value)
    one_line_error(cli("index", corpus, "--index-dir", live.dir, "-q"), 3, *needles)
    one_line_error(cli("index", corpus, "--index-dir", live.dir), 3, *needles)  # with progress/summary on
    live.check()  # failed before touching the live index


def test_path_that_does_not_exist(tmp_path, live):
    with pytest.raises(CorpusError, match="no such file or folder"):
        load_corpus([tmp_path / "nope"])
    one_line_error(cli("index", tmp_path / "nope", "--index-dir", live.dir, "-q"), 3, "nope: no such file or folder")
    live.check()


def test_file_that_cannot_be_read(tmp_path, live, monkeypatch):
    corpus = _corpus(tmp_path, {"a.txt": GOOD, "secret.txt": GOOD})
    real = Path.read_bytes

    def denied(self):
        if self.name == "secret.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(CorpusError, match="secret.txt: cannot read \\(Permission denied\\)"):
        load_corpus([corpus])
    one_line_error(cli("index", corpus, "--index-dir", live.dir, "-q"), 3, "secret.txt: cannot read")
    monkeypatch.undo()
    live.check()


def test_folder_that_cannot_be_listed(tmp_path, live, monkeypatch):
    corpus = _corpus(tmp_path, {"a.txt": GOOD, "locked/b.txt": GOOD})
    real = os.scandir

    def denied(path="."):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", denied)
    with pytest.raises(CorpusError, match="locked: cannot list folder \\(Permission denied\\)"):
        list(iter_files([corpus]))
    one_line_error(cli("index", corpus, "--index-dir", live.dir, "-q"), 3, "cannot list folder")
    monkeypatch.undo()
    live.check()


@pytest.mark.skipif(os.geteuid() == 0, reason="as root, tests/test_permissions.py checks this for real by dropping to nobody")
def test_unreadable_file_for_real(tmp_path, live):
    corpus = _corpus(tmp_path, {"a.txt": GOOD, "secret.txt": GOOD})
    os.chmod(corpus / "secret.txt", 0)
    one_line_error(cli("index", corpus, "--index-dir", live.dir, "-q"), 3, "secret.txt: cannot read")
    live.check()


def test_special_file_is_refused(tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    with pytest.raises(CorpusError, match="not a regular file or folder"):
        load_corpus([fifo])
    one_line_error(cli("index", fifo, "--index-dir", tmp_path / "i", "-q"), 3, "not a regular file")


def test_symlink_loop_terminates(tmp_path):
    corpus = _corpus(tmp_path, {"a.txt": GOOD})
    (corpus / "loop").symlink_to(corpus)
    assert [a.id for a in load_corpus([corpus])] == ["a"]


# -- big input ----------------------------------------------------------------------------------------------------
def _no_newline_text(n_chars: int) -> str:
    words = ["police", "seized", "tons", "of", "heroin", "near", "the", "Mekong", "river", "in", "2011", "raid"]
    out, size, i = [], 0, 0
    while size < n_chars:
        w = words[(i * 7 + i // 13) % len(words)]
        out.append(w)
        size += len(w) + 1
        i += 1
    return " ".join(out)[:n_chars]


def test_10mb_file_without_newline_splits_and_tokenizes(tmp_path):
    """Corpus -> sentences -> tokens on a 10 MB single-line file: every piece at most 2,000 characters, nothing lost,
    every piece tokenised. (Behaviour only: how split and tokenise time grows with size is benchmarks/bench.py's
    build section, benchmarks/RESULTS.md; the embedding stage is tested on a smaller file below.)"""
    big = _no_newline_text(10_000_000)
    (tmp_path / "big.txt").write_text(big, encoding="utf-8")
    for n in (1_000_000, 10_000_000):
        art = load_corpus([tmp_path / "big.txt"])[0] if n == 10_000_000 else qa.Article("s", big[:n])
        sents = split_sentences(art)
        toks = [Tokenizer().tokenize(s.text) for s in sents]
        assert all(len(s.text) <= 2000 for s in sents) and all(toks)
        assert "".join(s.text for s in sents).replace(" ", "") == art.text.replace(" ", "")
        assert len(sents) >= n // 2000


def test_no_newline_file_builds_and_answers(tmp_path, encoder):
    text = _no_newline_text(60_000) + " The unique quokka sentence appears only here"
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "long.txt").write_text(text, encoding="utf-8")
    idx = qa.Index.build([tmp_path / "c"], tmp_path / "i", encoder=encoder)
    assert idx.build_stats["sentences"] >= 30
    top = idx.ask("unique quokka sentence", k=1, mode="bm25").top
    assert "quokka" in top.text and text[top.start:top.end] == top.text


def _many_files(folder: Path, n: int, body: str = "Headline {i}\nArticle {i} reports {t} tons. It ends here.\n") -> Path:
    folder.mkdir()
    for i in range(n):
        (folder / f"doc{i:05d}.txt").write_text(body.format(i=i, t=i * 7), encoding="utf-8")
    return folder


def test_thousands_of_files_are_each_read_once(tmp_path):
    """3,000 files: every one read, in order, its progress tick once, three sentences each. (Behaviour only: build
    throughput by corpus size is benchmarks/bench.py's build section, benchmarks/RESULTS.md.)"""
    n = 3000
    d = _many_files(tmp_path / "c", n)
    ticks = []
    arts = load_corpus([d], progress=ticks.append)
    sents = [s for a in arts for s in split_sentences(a)]
    assert [a.id for a in arts] == [f"doc{i:05d}" for i in range(n)]
    assert len(ticks) == n and sum(ticks) == n  # progress advances once per file
    assert len(sents) == 3 * n


def test_thousands_of_files_full_build_reports_progress_per_file(tmp_path, monkeypatch):
    """`qa index` on 2,000 one-sentence files: the CLI's progress bar advances once per file read."""
    import qa.cli

    d = _many_files(tmp_path / "c", 2000, body="Article {i} reports {t} tons.\n")
    seen: dict[str, list[tuple[int, int]]] = {}

    class Recorder(qa.cli._Progress):
        def __call__(self, stage, advance, total):
            seen.setdefault(stage, []).append((advance, total))

    monkeypatch.setattr(qa.cli, "_Progress", Recorder)
    r = cli("index", d, "--index-dir", tmp_path / "i")
    assert r.exit_code == 0 and "2000 article(s), 2000 sentence(s)" in r.stdout, r.output
    assert len(seen["read"]) == 2000 and all(x == (1, 2000) for x in seen["read"])
    assert sum(a for a, _ in seen["embed"]) == 2000 and seen["write"] == [(1, 1)]
    idx = qa.Index.load(tmp_path / "i")
    assert idx.ask("Article 1234 reports", k=1, mode="bm25").top.article == "doc01234"
    r = cli("index", d, "--index-dir", tmp_path / "i")  # nothing changed: nothing re-embedded
    assert r.exit_code == 0 and "embedded 0, reused 2000" in r.stdout


# -- bad questions and options ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "question, needle",
    [
        ("", "the question is empty"),
        ("   \n\t ", "the question is empty"),
        ("the of and is was", "no searchable words (only stopwords or punctuation)"),
        ("?!... ,;: -- ()", "no searchable words"),
        ("a" * (MAX_QUESTION_CHARS + 1), "10,001 characters long; the limit is 10,000"),
        ("caf\udce9 tons", "not valid text"),
    ],
    ids=["empty", "whitespace", "stopwords", "punctuation", "10001-chars", "undecodable-byte"],
)
def test_bad_questions(copy_index, seeds_index, question, needle):
    for mode in ("bm25", "dense", "hybrid"):
        with pytest.raises(QueryError, match=needle.replace("(", r"\(").replace(")", r"\)")):
            seeds_index.ask(question, mode=mode)
    one_line_error(cli("ask", question, "--index-dir", copy_index), 2, needle)


def test_question_at_the_length_limit_is_answered(copy_index, seeds_index):
    q = ("tons of heroin seized " * 500)[:MAX_QUESTION_CHARS]
    assert len(q) == MAX_QUESTION_CHARS
    for mode in ("bm25", "dense", "hybrid"):
        ans = seeds_index.ask(q, k=3, mode=mode)
        assert len(ans.hits) == 3 and all(np.isfinite(h.score) for h in ans.hits)
    r = cli("ask", q, "--index-dir", copy_index, "--json", "-k", "2")
    assert r.exit_code == 0 and len(json.loads(r.stdout)["hits"]) == 2


@pytest.mark.parametrize("question", ["警方在湄公河缴获了多少吨毒品？", "كم طنا من المخدرات تم ضبطها؟", "Сколько тонн наркотиков изъяли?"])
def test_questions_in_other_scripts(copy_index, seeds_index, question):
    dense = seeds_index.ask(question, k=3, mode="dense")
    hybrid = seeds_index.ask(question, k=3, mode="hybrid")
    assert len(dense.hits) == 3 and len(hybrid.hits) == 3  # the dense side always answers
    assert all(np.isfinite(h.score) for h in hybrid.hits)
    assert seeds_index.ask(question, k=3, mode="bm25").hits == ()  # no word in common with the English seeds
    r = cli("ask", question, "--index-dir", copy_index, "-k", "2")
    assert r.exit_code == 0 and r.stdout.count("[0") == 2, r.output
    r = cli("ask", question, "--index-dir", copy_index, "--mode", "bm25")
    assert r.exit_code == 0 and "(no hits)" in r.stdout


@pytest.mark.parametrize("k", [0, -3])
def test_k_not_positive(copy_index, seeds_index, k):
    with pytest.raises(QueryError, match="k must be a positive whole number"):
        seeds_index.ask("tons seized", k=k)
    # one message for one bad value, whichever surface was given it (qa.options.AskOptions)
    one_line_error(cli("ask", "tons seized", "-k", k, "--index-dir", copy_index), 2,
                   f"k must be a positive whole number, got {k}")


def test_huge_k_is_clipped(copy_index, seeds_index):
    for mode in ("dense", "hybrid"):
        ans = seeds_index.ask("tons seized", k=10**9, mode=mode)
        assert len(ans.hits) == len(seeds_index)
        assert len({(h.article, h.sentence) for h in ans.hits}) == len(seeds_index)
    bm = seeds_index.ask("tons seized", k=10**9, mode="bm25")
    assert 0 < len(bm.hits) == len(seeds_index.bm25.matched(seeds_index.tokenizer.tokenize("tons seized")))
    r = cli("ask", "tons seized", "-k", 10**9, "--index-dir", copy_index, "--json", "--mode", "dense")
    assert r.exit_code == 0 and len(json.loads(r.stdout)["hits"]) == len(seeds_index)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--mode", "sparse"], "unknown mode 'sparse': use one of bm25, dense, hybrid"),
        (["--mode", ""], "unknown mode ''"),
        (["--fusion", "max"], "unknown fusion 'max': use rrf or convex"),
        (["--fusion", "convex", "--alpha", "1.5"], "alpha must be between 0 and 1 (the weight on BM25), got 1.5"),
        (["--alpha", "-0.1"], "alpha must be between 0 and 1 (the weight on BM25), got -0.1"),
        (["--alpha", "nan"], "alpha must be between 0 and 1 (the weight on BM25), got nan"),
        (["--context", "-1"], "context must be 0 or more, got -1"),
    ],
)
def test_bad_options(tmp_path, args, needle):
    # checked before any index is opened: the folder does not even exist
    one_line_error(cli("ask", "tons seized", *args, "--index-dir", tmp_path / "none"), 2, needle)


def test_bad_options_library(seeds_index):
    with pytest.raises(QueryError, match="unknown mode"):
        seeds_index.ask("tons", mode="sparse")
    with pytest.raises(QueryError, match="unknown fusion"):
        seeds_index.ask("tons", fusion="max")
    with pytest.raises(QueryError, match="alpha must be between 0 and 1"):
        seeds_index.ask("tons", fusion="convex", alpha=2.0)
    with pytest.raises(QueryError, match="k must be a positive whole number"):
        seeds_index.ask("tons", k=2.5)
    assert seeds_index.ask("tons seized", k=np.int64(2), mode="bm25").hits == seeds_index.ask(
        "tons seized", k=2, mode="bm25").hits


def test_batch_with_bad_lines(tmp_path, copy_index):
    qs = tmp_path / "q.jsonl"
    qs.write_text("\n".join([
        json.dumps({"id": "ok1", "question": "tons seized in Safe Mekong"}),
        json.dumps({"id": "empty", "question": "  "}),
        json.dumps({"id": "stop", "question": "the of and"}),
        json.dumps({"id": "long", "question": "x" * (MAX_QUESTION_CHARS + 1)}),
        json.dumps({"id": "ok2", "question": "opium production of Afghanistan"}),
    ]) + "\n", encoding="utf-8")
    r = cli("ask", "--questions", qs, "--json", "-k", "1", "--index-dir", copy_index)
    assert r.exit_code == 2, r.output
    assert [json.loads(x)["id"] for x in r.stdout.splitlines()] == ["ok1", "ok2"]  # the good ones are answered
    errs = sorted(r.stderr.strip().splitlines())
    assert len(errs) == 3 and all(e.startswith("error: question ") for e in errs), errs
    assert errs[0].startswith("error: question empty: the question is empty")
    assert errs[1].startswith("error: question long: the question is 10,001 characters long")
    assert errs[2].startswith("error: question stop: the question 'the of and' has no searchable words")
    # a line that is not a question object stops the batch before anything runs
    qs.write_text('{"id": "a", "question": "tons"}\n{"id": 3\n', encoding="utf-8")
    one_line_error(cli("ask", "--questions", qs, "--index-dir", copy_index), 2, "q.jsonl:2: expected")
    one_line_error(cli("ask", "--questions", tmp_path / "none.txt", "--index-dir", copy_index), 2, "cannot read")
    (tmp_path / "latin.txt").write_bytes("caf\xe9?\n".encode("latin-1"))
    one_line_error(cli("ask", "--questions", tmp_path / "latin.txt", "--index-dir", copy_index), 2, "cannot read")
    (tmp_path / "blank.txt").write_text("\n \n")
    one_line_error(cli("ask", "--questions", tmp_path / "blank.txt", "--index-dir", copy_index), 2, "no questions")


# -- models that cannot be loaded ---------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["no-such/model", "/nonexistent/model/folder", "EMPTY_DIR"])
def test_model_that_cannot_be_loaded(tmp_path, live, model):
    if model == "EMPTY_DIR":
        model = str(tmp_path / "not-a-model")
        Path(model).mkdir()
    with pytest.raises(ModelLoadError, match="cannot load embedding model .* offline .*pass --model PATH to a local"):
        Encoder(model).model
    corpus = _corpus(tmp_path, {"a.txt": GOOD})
    err = one_line_error(cli("index", corpus, "--index-dir", live.dir, "--model", model, "-q"), 6,
                         "cannot load embedding model", "--model PATH to a local sentence-transformers folder")
    assert repr(str(Path(model).resolve()) if Path(model).exists() else model) in err  # names the model
    assert len(err) < 600
    live.check()
    new = tmp_path / "fresh"
    one_line_error(cli("index", corpus, "--index-dir", new, "--model", model, "-q"), 6, "cannot load embedding model")
    with pytest.raises(IndexNotFoundError):  # no half-built index left behind
        qa.Index.load(new)


def test_unicode_everywhere_round_trips(tmp_path, encoder):
    """Non-ASCII file names, astral characters and CRLF line ends build, cite exact offsets and answer."""
    text = "Überschrift 🚀 Ünïcödé\r\n\r\nDie Polizei 警方 beschlagnahmte 9,8 Tonnen 𝕏. Zweiter Satz 😀.\r\n"
    corpus = _corpus(tmp_path, {"nachrichten-ü.txt": text.encode("utf-8")})
    idx = qa.Index.build([corpus], tmp_path / "i", encoder=encoder)
    for h in idx.ask("Polizei Tonnen", k=5, mode="hybrid").hits:
        assert text[h.start:h.end] == h.text
    r = cli("ask", "Polizei Tonnen 警方", "--index-dir", tmp_path / "i", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["hits"]


def test_decode_text_decision_is_an_error_not_a_fallback():
    """Non-UTF-8 text is refused (no Latin-1 fallback that would index mojibake), naming file, byte and line."""
    with pytest.raises(CorpusError, match=r"x.txt: not valid UTF-8 \(byte 0xe9 at offset 9, line 2\)"):
        decode_text("line one\n\xe9".encode("latin-1"), "x.txt")
    assert decode_text("\ufeffok".encode("utf-8"), "x") == "ok"  # a UTF-8 byte-order mark is dropped
    assert decode_text(b"tab\tand\x0cform feed\r\n", "x") == "tab\tand\x0cform feed\r\n"  # text controls are fine

