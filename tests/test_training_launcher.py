"""The training launcher: torchrun on the training entry point."""

from resources.training_launcher import TrainingLauncher


def test_launcher_command_is_torchrun_on_the_training_entry_point(tmp_path):
    cmd = TrainingLauncher(nproc_per_node=2).command(tmp_path / "c.json")
    assert cmd[1:3] == ["-m", "torch.distributed.run"]
    assert cmd[cmd.index("--nproc-per-node") + 1] == "2"
    assert cmd[-3:] == ["-m", "training.run", str(tmp_path / "c.json")]
