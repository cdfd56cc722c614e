"""Which process wrote a file or started a run, and whether it is still running.

A writer stamps what it leaves behind (a temp file's name, a Dagster run's tags) with
`this_process()`: its pid, its host, a machine id and its start time. Later, another
process asks `is_running(...)`: whether that writer is alive. The answer is only ever
"gone" when that is certain; anything unclear counts as alive, so a live writer's file
or run is never taken for a leftover.

The machine id digests the hostname, the kernel's boot id and the pid namespace: two
processes with the same machine id see the same pids, so a pid check between them is
meaningful (containers sharing a volume but not a pid namespace get different ids). The
start time (clock ticks after boot, from /proc) tells a reused pid from the writer.

Example:
    >>> me = this_process()
    >>> is_running(me.pid, me.machine, me.started)
    True
    >>> is_running(me.pid, "0000000000", me.started) is None  # another machine: unknown
    True
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessId:
    pid: int
    host: str  # the hostname, as people read it
    machine: str  # 10 hex digits: same value = same kernel boot and pid namespace
    started: str  # the process's start time ("" where it cannot be read)


@cache
def machine_id() -> str:
    """10 hex digits naming this kernel boot and pid namespace (see the module docstring)."""
    parts = [socket.gethostname()]
    try:
        parts.append((_PROC / "sys/kernel/random/boot_id").read_text().strip())
    except OSError:
        pass
    try:
        parts.append(os.readlink(_PROC / "self/ns/pid"))
    except OSError:
        pass
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:10]


def this_process() -> ProcessId:
    """The current process, as `is_running` checks it later."""
    pid = os.getpid()
    return ProcessId(pid, socket.gethostname(), machine_id(), process_start(pid) or "")


def process_start(pid: int) -> str | None:
    """When `pid` started (clock ticks after boot), or None if that cannot be read."""
    stat = _proc_stat(pid)
    if stat is not None:
        return stat[1]
    try:  # not Linux: psutil when it is installed
        import psutil

        return str(int(psutil.Process(pid).create_time() * 100))
    except Exception:
        return None


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start ticks) of `pid` from /proc/PID/stat; None without /proc or the pid."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # the name, in parentheses, may hold spaces
    return (fields[0], fields[19]) if len(fields) > 19 else None


def is_running(pid: int, machine: str, started: str = "") -> bool | None:
    """Whether process `pid` of machine `machine` (started at `started`, if known) runs.

    False only when certain: same machine, and the pid is gone, a zombie, or now another
    process (a different start time). None when `machine` is another machine's (no pid
    check is possible); True otherwise, including whenever the answer is unclear.
    """
    if machine != machine_id():
        return None
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists, as another user's process
        pass
    if _PROC.is_dir():
        stat = _proc_stat(pid)
        if stat is None:
            return not _gone(pid)
        state, start = stat
        if state in ("Z", "X"):  # killed, not yet reaped by its parent
            return False
        return not (started and start != started)
    now = process_start(pid)
    return not (started and now is not None and now != started)


def _gone(pid: int) -> bool:
    """Whether `pid` has exited (its /proc entry vanished between two looks)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        pass
    return False


# a host name as a file-name part: letters, digits and '-', at most 24 characters
def host_label(host: str | None = None) -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", host or socket.gethostname())[:24] or "host"
