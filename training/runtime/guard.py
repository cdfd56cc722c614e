"""Training never outlives the process that launched it.

The launcher runs ``python -m training.runtime.guard -- torchrun ... -m training.run CONFIG``.
The guard starts the command in a process group of its own and ends it (SIGTERM, then
SIGKILL after a grace period) when:

* the guard's parent dies, even by SIGKILL (Linux's parent-death signal, and a poll of the
  parent pid as a fallback where that signal is not available);
* the guard itself is asked to stop (SIGTERM, SIGINT, SIGHUP).

torchrun ends its workers when it gets SIGTERM (each worker is in a session of its own, so a
group signal would miss them); each worker also asks for SIGTERM when torchrun dies
(:func:`die_with_parent`). The guard exits with the command's exit code (128 + N when a
signal N ended it), so Pipes reports the training's own failure.

Run by hand::

    python -m training.runtime.guard -- python -m training.run out/train_config.json
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
GRACE_S = 20.0
POLL_S = 0.5


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux only).

    Returns False where that is not available; a caller that must not outlive its parent
    then polls ``os.getppid()``.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def stop_group(proc: subprocess.Popen, grace_s: float = GRACE_S) -> None:
    """SIGTERM the command's process group, then SIGKILL whatever is left after `grace_s`."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def run_guarded(cmd: list[str], grace_s: float = GRACE_S) -> int:
    """Run `cmd` in its own process group until it exits, or until the parent dies or this
    process is told to stop; returns the exit code to pass on."""
    parent = os.getppid()
    stop = {"reason": ""}

    def on_signal(signum, _frame) -> None:
        stop["reason"] = signal.Signals(signum).name

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    die_with_parent(signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the death signal was armed
        return 128 + signal.SIGTERM
    proc = subprocess.Popen(cmd, start_new_session=True)
    while proc.poll() is None:
        if os.getppid() != parent and not stop["reason"]:
            stop["reason"] = "launcher died"
        if stop["reason"]:
            print(f"training guard: {stop['reason']}: stopping {' '.join(cmd[:3])} ...",
                  file=sys.stderr, flush=True)
            stop_group(proc, grace_s)
            break
        time.sleep(POLL_S)
    code = proc.wait()
    return 128 - code if code < 0 else code


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: python -m training.runtime.guard -- COMMAND ...", file=sys.stderr)
        return 2
    return run_guarded(args)


if __name__ == "__main__":
    sys.exit(main())
