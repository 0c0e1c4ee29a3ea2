"""Putting a run's artifacts into `--out`: all of them and the manifest that describes them, or none.

A run exports into a staging folder beside DIR (same file system). Publishing then, under a lock on
DIR's parent (concurrent exports into one DIR take turns, and each merges the manifest it finds then),
builds DIR's next contents in another folder beside it: hard links to every file DIR has that the run
does not replace, the new files, and the merged manifest. That folder and DIR are exchanged in one
rename (Linux's renameat2 RENAME_EXCHANGE), so at every instant DIR holds either its old or its new
complete contents. Elsewhere the exchange is two renames, with a moment where DIR does not exist.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

PREFIX = ".actexport-"  # staging folders beside DIR; the forkserver of a run removes its own (lifecycle.py)


def staging_dir(out_dir: Path) -> Path:
    """A fresh hidden folder beside `out_dir`, removed when the run ends however it ends."""
    from actexport.lifecycle import remove_at_exit
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{out_dir.name}-", dir=out_dir.parent))
    remove_at_exit(path)
    return path


@contextlib.contextmanager
def locked(folder: Path):
    """An exclusive lock on `folder` (flock on the directory itself: nothing is written to take it)."""
    try:
        import fcntl
    except ImportError:  # NOTE: Windows: no lock; concurrent exports into one DIR may lose entries
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # NOTE: closing releases the lock


def publish(out_dir: Path, staged: Path, entries: list[dict], manifest_name: str, versions: dict) -> None:
    """Makes `out_dir` hold what it held, with the files of `entries` (paths relative to `staged`, where
    they are) replaced or added and its manifest listing them; never a mix (see the module's doc).

    Entries of the old manifest whose file is gone or replaced are dropped; files the old manifest
    did not list (a README, say) are kept as they are.
    """
    from actexport.manifest import SCHEMA, read_manifest
    from actexport.catalog import UsageError
    with locked(out_dir.parent):
        new_paths = {e["path"] for e in entries} | {manifest_name}
        old: list[dict] = []
        if (out_dir / manifest_name).is_file():
            try:
                old = read_manifest(out_dir)["artifacts"]
            except UsageError:
                old = []  # NOTE: an unreadable old manifest is replaced, not merged
        tree = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{out_dir.name}-next-", dir=out_dir.parent))
        try:
            if out_dir.is_dir():
                _link_tree(out_dir, tree, skip=new_paths)
                os.chmod(tree, stat.S_IMODE(os.stat(out_dir).st_mode))
            else:
                os.chmod(tree, 0o777 & ~_umask())
            for e in entries:
                (tree / e["path"]).parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged / e["path"], tree / e["path"])
            keep = [e for e in old if e.get("path") not in new_paths and (tree / str(e.get("path"))).is_file()]
            doc = {"schema": SCHEMA, "versions": versions, "artifacts": keep + entries}
            with open(tree / manifest_name, "w") as f:
                f.write(json.dumps(doc, indent=2) + "\n")
                f.flush()
                os.fsync(f.fileno())
            if out_dir.exists():
                _exchange(tree, out_dir)  # NOTE: `tree` now holds the old contents
            else:
                os.rename(tree, out_dir)
        finally:
            shutil.rmtree(tree, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _link_tree(src: Path, dst: Path, skip: set[str]) -> None:
    """Hard links (copies where links cannot be made) of every file under `src` into `dst`, except the
    relative paths in `skip`; symbolic links are recreated as links, never followed."""
    for root, dirs, files in os.walk(src):
        rel_root = Path(root).relative_to(src)
        for d in dirs:
            target = dst / rel_root / d
            if os.path.islink(os.path.join(root, d)):
                os.symlink(os.readlink(os.path.join(root, d)), target)
            else:
                target.mkdir()
                os.chmod(target, stat.S_IMODE(os.stat(os.path.join(root, d)).st_mode))
        for name in files:
            rel = (rel_root / name).as_posix()
            if rel in skip:
                continue
            source = os.path.join(root, name)
            if os.path.islink(source):
                os.symlink(os.readlink(source), dst / rel)
                continue
            try:
                os.link(source, dst / rel)
            except OSError:
                shutil.copy2(source, dst / rel)
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]


def _exchange(a: Path, b: Path) -> None:
    """Swaps the paths `a` and `b` atomically where the system can (Linux), else in two renames."""
    if sys.platform.startswith("linux"):
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = getattr(libc, "renameat2", None)
        if renameat2 is not None:
            at_fdcwd, rename_exchange = -100, 2
            if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
                return
            err = ctypes.get_errno()
            if err not in (errno.ENOSYS, errno.EINVAL):  # NOTE: those two: the file system cannot; fall back
                raise OSError(err, f"cannot exchange {a} and {b}: {os.strerror(err)}")
    aside = Path(tempfile.mkdtemp(prefix=f"{PREFIX}old-", dir=b.parent))
    os.rmdir(aside)
    os.rename(b, aside)
    os.rename(a, b)
    os.rename(aside, a)
