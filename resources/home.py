"""Where rlfoundry keeps its state on disk: one folder, `RLFOUNDRY_HOME`."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def rlfoundry_home() -> Path:
    """`$RLFOUNDRY_HOME`, or `.rlfoundry` under the current directory."""
    return Path(os.environ.get("RLFOUNDRY_HOME", ".rlfoundry")).absolute()


@contextmanager
def file_lock(path: Path) -> Iterator[Path]:
    """Hold an exclusive `fcntl.flock` on `path` (created if missing) for the block.

    Blocks until it is free; released when the block exits or the process dies. Works
    across processes on one machine's local filesystem.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        os.close(fd)  # closing the last descriptor releases the lock
