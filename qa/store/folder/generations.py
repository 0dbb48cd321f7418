"""Generations of a folder index: the ``CURRENT`` pointer, the build lock, and the atomic switch to a new generation.

Layout of an index folder (``index/`` by default; ``QA_INDEX_DIR`` or ``--index-dir`` overrides)::

    index/
      CURRENT              name of the live generation, replaced atomically (os.replace) after a build
      .lock                held (flock) by a running build
      gen-<time>-<rand>/   one complete index: readable files plus a manifest, no pickle (see qa.store.folder)

A build writes a new generation in a temporary folder, renames it, then swaps ``CURRENT``: readers see the old
index or the new one, never a mix, and a build killed at any point leaves the previous index usable. The previous
generation is kept until the next build so that readers that opened it keep working.

>>> index_exists("/nonexistent")
False
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import os
import secrets
import shutil
from pathlib import Path
from typing import Iterator

from ..._faults import pause
from ...errors import IndexCorruptError, IndexLockedError, IndexNotFoundError, IndexWriteError, QAError

DEFAULT_INDEX_DIR = "index"


def default_index_dir() -> Path:
    return Path(os.environ.get("QA_INDEX_DIR") or DEFAULT_INDEX_DIR)


def fsync_tree(folder: Path) -> None:
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    for d in [folder, *[p for p in folder.rglob("*") if p.is_dir()]]:
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Exclusive lock on ``index_dir/.lock``; a second builder fails at once with :class:`IndexLockedError`.

    The lock is an ``flock``: the kernel releases it when the holder exits or is killed, so a stale ``.lock`` file
    never blocks the next build.
    """
    if index_dir.exists() and not index_dir.is_dir():
        raise IndexWriteError(f"{index_dir} is a file, not an index folder; pass --index-dir a folder")
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(index_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise IndexWriteError(
            f"cannot create the index folder {index_dir} ({e.strerror or e}); pass --index-dir a writable folder"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise IndexLockedError(
                f"{index_dir}: another `qa index` (pid {holder}) is building this index; wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def resolve_generation(index_dir: Path) -> Path:
    """The folder holding ``manifest.json``: ``index_dir`` itself, or the generation named by ``CURRENT``."""
    build = f"build one with `qa index PATHS --index-dir {index_dir}`"
    try:
        if index_dir.exists() and not index_dir.is_dir():
            raise IndexNotFoundError(f"{index_dir} is a file, not an index folder; pass --index-dir the folder")
        if (index_dir / "manifest.json").is_file():
            return index_dir
        cur = index_dir / "CURRENT"
        if not cur.is_file():
            raise IndexNotFoundError(f"no index at {index_dir}: {build}")
        name = cur.read_text(encoding="utf-8").strip()
        gen = index_dir / name
        if not name.startswith("gen-") or "/" in name or not (gen / "manifest.json").is_file():
            raise IndexCorruptError(
                f"{cur} names {name[:80]!r}, which is not a complete index; rebuild with `qa index PATHS "
                f"--index-dir {index_dir}`"
            )
        return gen
    except OSError as e:
        raise IndexNotFoundError(f"cannot read the index at {index_dir} ({e.strerror or e}); check its permissions") from None
    except UnicodeDecodeError:
        raise IndexCorruptError(f"{index_dir / 'CURRENT'} is not text; rebuild with `qa index PATHS --index-dir {index_dir}`") from None


def index_exists(index_dir: str | os.PathLike[str]) -> bool:
    try:
        resolve_generation(Path(index_dir))
        return True
    except QAError:
        return False


def new_name(kind: str) -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{kind}-{stamp}-{secrets.token_hex(3)}"


def commit_generation(index_dir: Path, tmp: Path, name: str) -> Path:
    """Rename the finished ``tmp`` to ``name`` and atomically point ``CURRENT`` at it."""
    gen = index_dir / name
    cur = index_dir / "CURRENT"
    tmp_cur = index_dir / f".CURRENT.{os.getpid()}"
    try:
        old = cur.read_text(encoding="utf-8", errors="replace").strip() if cur.is_file() else None
        pause("rename")
        os.rename(tmp, gen)
        with open(tmp_cur, "w", encoding="utf-8") as f:
            f.write(name + "\n")
            f.flush()
            os.fsync(f.fileno())
        pause("swap")
        os.replace(tmp_cur, cur)  # the commit point: before it the old index is live, after it the new one
    except OSError as e:
        for leftover in (tmp, gen):
            shutil.rmtree(leftover, ignore_errors=True)
        with contextlib.suppress(OSError):
            tmp_cur.unlink()
        raise IndexWriteError(
            f"cannot switch {index_dir} to the new index ({e.strerror or e}); the previous index is unchanged"
        ) from None
    with contextlib.suppress(OSError):  # durability of the rename; the swap itself is already atomic
        fd = os.open(index_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    pause("cleanup")
    # keep the generation just replaced (readers may hold it); drop older ones and leftovers of killed builds.
    # Their segment files live on where a kept generation links them.
    for g in index_dir.glob("gen-*"):
        if g.name not in (name, old):
            shutil.rmtree(g, ignore_errors=True)
    return gen

