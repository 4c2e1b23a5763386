"""Device and memory helpers: the cgroup limit wins over physical memory when it is lower."""

from __future__ import annotations

import pytest

from breastlib.device import memory_limit_gib, resolve_device


def test_auto_device_is_cpu_without_cuda():
    import torch

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_memory_limit_reads_the_container_limit(tmp_path):
    physical = memory_limit_gib(cgroup_files=())
    assert physical > 0.5
    binder = tmp_path / "memory.max"
    binder.write_text(f"{2 * 2**30}\n")
    assert memory_limit_gib(cgroup_files=(str(binder),)) == pytest.approx(min(2.0, physical))
    unlimited = tmp_path / "unlimited"
    unlimited.write_text("max\n")
    assert memory_limit_gib(cgroup_files=(str(tmp_path / "absent"), str(unlimited))) == physical
    huge = tmp_path / "v1"
    huge.write_text(str(2**63 - 4096))
    assert memory_limit_gib(cgroup_files=(str(huge),)) == physical
