"""The training launcher: torchrun on the training entry point, under a guard that ends it
when the launching process dies."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil

from resources.training_launcher import TrainingLauncher


def test_launcher_command_is_guarded_torchrun_on_the_training_entry_point(tmp_path):
    cmd = TrainingLauncher(nproc_per_node=2).command(tmp_path / "c.json")
    assert cmd[1:4] == ["-m", "training.runtime.guard", "--"]
    assert cmd[5:7] == ["-m", "torch.distributed.run"]
    assert cmd[cmd.index("--nproc-per-node") + 1] == "2"
    assert cmd[-3:] == ["-m", "training.run", str(tmp_path / "c.json")]
    assert "--standalone" in cmd


def test_a_multi_node_rendezvous_replaces_standalone(tmp_path):
    rdzv = ["--nnodes", "2", "--rdzv-backend", "c10d", "--rdzv_endpoint=host:29500"]
    cmd = TrainingLauncher(nproc_per_node=8, extra_args=rdzv).command(tmp_path / "c.json")
    assert "--standalone" not in cmd
    assert cmd[cmd.index("--nproc-per-node") + 2:-3] == rdzv
    from torch.distributed.run import config_from_args, parse_args

    config, *_ = config_from_args(parse_args(cmd[cmd.index("torch.distributed.run") + 1:]))
    assert (config.min_nodes, config.max_nodes, config.nproc_per_node) == (2, 2, 8)
    assert (config.rdzv_backend, config.rdzv_endpoint) == ("c10d", "host:29500")


def _wait_for(path, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)
    return int(path.read_text())


def test_killing_the_launcher_ends_torchrun_and_its_worker(tmp_path):
    """SIGKILL of the launching process (no chance to clean up) leaves no training behind,
    even though torchrun starts its workers in sessions of their own."""
    worker = tmp_path / "worker.py"
    worker.write_text(textwrap.dedent(f"""
        import os, time
        from training.runtime.guard import die_with_parent
        die_with_parent()
        open({str(tmp_path / 'worker.pid')!r}, 'w').write(str(os.getpid()))
        time.sleep(600)
    """))
    guarded = [sys.executable, "-m", "training.runtime.guard", "--", sys.executable, "-m",
               "torch.distributed.run", "--standalone", "--nproc-per-node", "1", str(worker)]
    launcher = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess; subprocess.Popen({guarded!r}).wait()"],
        cwd=os.getcwd())
    pid = _wait_for(tmp_path / "worker.pid")
    tree = [psutil.Process(launcher.pid), *psutil.Process(launcher.pid).children(recursive=True)]
    assert psutil.pid_exists(pid) and len(tree) >= 3  # launcher, guard, torchrun (+ worker)
    os.kill(launcher.pid, signal.SIGKILL)
    launcher.wait()
    gone, alive = psutil.wait_procs([p for p in tree[1:] if p.is_running()]
                                    + [psutil.Process(pid)], timeout=30)
    assert not alive, [p.cmdline() for p in alive]
