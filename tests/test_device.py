"""Device and memory helpers: the cgroup limit wins over physical memory when it is lower."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from breastlib.device import memory_limit_gib, resolve_device
from breastlib.errors import BreastlibError


@pytest.mark.parametrize(("cuda", "expected"), [(False, "cpu"), (True, "cuda")])
def test_auto_device_follows_cuda_availability(monkeypatch, cuda, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device("cpu") == torch.device("cpu")  # explicit choices pass through
    given = torch.device("cuda", 1)
    assert resolve_device(given) is given


def test_cuda_without_cuda_is_a_user_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BreastlibError, match="'cuda:1' requested but CUDA is not available"):
        resolve_device("cuda:1")


def test_memory_limit_reads_the_container_limit(tmp_path, monkeypatch):
    # A machine of 2**20 pages of 4 KiB: 4 GiB of physical memory.
    sizes = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 2**20}
    monkeypatch.setattr(os, "sysconf", lambda name: sizes[name])
    assert memory_limit_gib(cgroup_files=()) == 4.0
    low = tmp_path / "memory.max"
    low.write_text(f"{3 * 2**29}\n")  # cgroup v2: 1.5 GiB
    assert memory_limit_gib(cgroup_files=(str(low),)) == 1.5
    high = tmp_path / "high"
    high.write_text(f"{8 * 2**30}\n")  # above physical memory: physical wins
    assert memory_limit_gib(cgroup_files=(str(high),)) == 4.0
    unlimited = tmp_path / "unlimited"
    unlimited.write_text("max\n")
    # The first file that exists wins: "max" means no limit, even before a lower limit.
    assert memory_limit_gib(cgroup_files=(str(tmp_path / "absent"), str(unlimited),
                                          str(low))) == 4.0
    assert memory_limit_gib(cgroup_files=(str(tmp_path / "absent"), str(low),
                                          str(unlimited))) == 1.5
    huge = tmp_path / "v1"
    huge.write_text(str(2**63 - 4096))  # cgroup v1's "no limit"
    assert memory_limit_gib(cgroup_files=(str(huge),)) == 4.0
    assert memory_limit_gib(cgroup_files=(str(tmp_path / "absent"),)) == 4.0


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="Linux /proc only")
def test_peak_memory_of_a_worker_is_its_own_not_its_parents():
    """ru_maxrss survives fork and exec, so a worker started by a large process reports the
    parent's size; peak_rss_mib is the worker's own high-water mark."""
    import subprocess
    import sys

    import numpy as np

    ballast = np.ones(160 * 2**20 // 8)  # 160 MiB held by this process while it forks
    probe = ("import resource; from breastlib.device import peak_rss_mib; "
             "print(peak_rss_mib(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    own, inherited = map(float, subprocess.run([sys.executable, "-c", probe], check=True,
                                               capture_output=True, text=True).stdout.split())
    assert ballast.sum() > 0
    assert inherited >= 160 and own < inherited - 100, (own, inherited)
