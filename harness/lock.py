"""One writer per job folder: an exclusive lock held by the worker for the whole run or fine-tune.

Why fcntl.flock on FOLDER/.lock rather than an O_CREAT|O_EXCL lock file: the kernel drops a flock
when its holder dies, however it dies (SIGKILL, OOM killer, a removed container), so a stale lock
cannot block anyone and needs no guess about whether a pid is alive. A pid check could not work
for containers anyway: the worker there has a pid of its own namespace and a hostname that never
comes back. flock covers processes on one host, containers on a bind mount of the folder (same
kernel, same inode), and on Linux NFS clients it is carried by POSIX locks to the server, so
cluster nodes sharing a results folder over NFS see each other's locks (unless the folder is
mounted with `local_lock=flock|all`, which makes locks per node).

The file holds who took the lock (pid, host, since when) so a refused writer can say who holds it
(a worker in a container names its own pid and the container's hostname).
It is removed on a normal exit; a killed holder leaves it behind, unlocked, and the next writer
takes it over with one log line. It is a dotfile inside the folder: the leaderboard and every
reader look for spec.json, samples.jsonl, result.json or training.json and never see it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import HarnessError
from harness.progress import log
from harness.records.base import utc_now

__all__ = ["LOCK_NAME", "folder_lock", "lock_holder"]

LOCK_NAME = ".lock"


def lock_holder(folder: str | Path) -> dict | None:
    """Who the lock file in `folder` names (pid, host, since, what), or None when there is none."""
    try:
        return _parse((Path(folder) / LOCK_NAME).read_bytes())
    except FileNotFoundError:
        return None


def _parse(raw: bytes) -> dict | None:
    try:
        holder = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _describe(holder: dict | None) -> str:
    if not holder:  # the holder has the lock but has not written its name yet
        return "a process that has not written its name yet"
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} since {holder.get('since', '?')}"
            f" ({holder.get('what', '?')})")


def _read_fd(fd: int) -> bytes:
    return os.pread(fd, 64 * 1024, 0)


def _open_locked(path: Path, what: str) -> int:
    """An fd on `path` holding its exclusive flock; HarnessError when another writer holds it."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise HarnessError(f"{path}: cannot create the lock file ({exc.strerror}); the folder must be "
                               "writable") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _parse(_read_fd(fd))
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise HarnessError(
                    f"{path.parent}: in use by another writer, {_describe(holder)}; wait for it to end, "
                    f"or stop it and rerun this {what}") from None
            raise HarnessError(f"{path}: cannot lock ({exc.strerror}); this filesystem does not support flock, "
                               "put results and checkpoints on one that does") from None
        # The previous holder may have removed the file between our open and our flock: then we
        # hold a lock on a file nobody else can see. Only a lock on the file at the path counts.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextmanager
def folder_lock(folder: str | Path, what: str) -> Iterator[Path]:
    """Hold FOLDER/.lock exclusively while the block runs (`what` names the job in messages).

    A second writer gets a one-line HarnessError naming the holder; a lock file left by a killed
    holder is taken over (one log line). The file is removed when the block ends.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = _open_locked(path, what)
    try:
        left = _read_fd(fd)
        if left.strip():  # nobody holds the flock, yet a holder wrote its name: it died without cleaning up
            log(f"{folder}: taking over the lock left by {_describe(_parse(left))}, which no longer holds it")
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": utc_now(), "what": what}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me, sort_keys=True) + "\n").encode("utf-8"), 0)
        try:
            yield path
        finally:
            # Unlink while still holding the flock: a writer waiting on this inode re-checks the path.
            try:
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    path.unlink()
            except FileNotFoundError:
                pass
    finally:
        os.close(fd)  # closing the last fd releases the flock
