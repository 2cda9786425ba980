"""Atomic file writing: readers see either the old file, nothing, or the complete new file.

Temporary files live beside their destination (``.<stem>.tmp-<host>-<pid>-<id><suffix>``), so the
final ``os.replace`` never crosses a filesystem (a temp file in ``$TMPDIR`` on tmpfs would be copied,
and a kill during the copy would leave a torn file). ``durable=True`` also fsyncs the file and its
folder, so the rename survives a power loss. A process killed with SIGKILL mid-write cannot remove
its temp file; :func:`remove_stale_temps` deletes those of dead processes of this host.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:32] or "host"
_TEMP = re.compile(r"^\..+\.tmp-(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-[0-9a-f]+(\.[^.]*)?$")


def temp_path_for(path: str | os.PathLike) -> Path:
    """A fresh hidden temporary path in ``path``'s folder, keeping its suffix (writers pick formats by it)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.tmp-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


def _temp_folder_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps the suffix (so writers that pick a format from it still work) and
    starts with a dot, so globbing for finished files never sees it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_folder(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temp files that :func:`atomic_path` writers of this host left when they were killed.

    Only files whose writer process no longer runs are removed (temps of other hosts sharing the
    folder are left alone). Returns what was removed.
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = _TEMP.match(entry.name)
        if match and match["host"] == _HOST and not _alive(int(match["pid"])):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, durable: bool = False) -> Iterator[Path]:
    """Yield a hidden temporary folder beside ``path``; it becomes ``path`` only if the block succeeds.

    Readers see no folder, or the complete one: a kill mid-write leaves only the hidden temp folder
    (removed later by :func:`remove_stale_temps`). An existing ``path`` is replaced as a whole (moved
    aside, then deleted). ``durable=True`` fsyncs every file and the parent folder first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_folder_for(path)
    tmp.mkdir()
    try:
        yield tmp
        if durable:
            for child in tmp.rglob("*"):
                if child.is_file():
                    with open(child, "rb+") as f:
                        os.fsync(f.fileno())
            fsync_folder(tmp)
        if path.exists():
            old = _temp_folder_for(path)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
        if durable:
            fsync_folder(path.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
