"""A metrics directory is cleared of dead processes' files when a process starts, never of a
live process's (project/metrics_files.py)."""

import os
import subprocess
import sys

from project.metrics_files import reset_multiproc_dir


def test_files_of_dead_processes_go_and_those_of_live_ones_stay(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead_pid = int(dead.stdout)
    for name in (f"counter_{dead_pid}.db", f"histogram_{dead_pid}.db", f"counter_{os.getpid()}.db",
                 f"gauge_livesum_{os.getpid()}.db"):
        (tmp_path / name).write_bytes(b"x")

    reset_multiproc_dir(tmp_path)

    assert sorted(p.name for p in tmp_path.iterdir()) == [f"counter_{os.getpid()}.db",
                                                          f"gauge_livesum_{os.getpid()}.db"]


def test_a_missing_directory_is_created(tmp_path):
    assert reset_multiproc_dir(tmp_path / "web").is_dir()
