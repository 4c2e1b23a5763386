"""Device selection shared by every compute function."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` into CUDA when available, else CPU.

    Parameters
    ----------
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a :class:`torch.device`.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        from breastlib.errors import BreastlibError

        raise BreastlibError(f"device '{device}' requested but CUDA is not available")
    return resolved


# cgroup files that cap a container's memory (v2, then v1): Binder, Docker, Kubernetes.
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def memory_limit_gib(cgroup_files: tuple[str, ...] = _CGROUP_LIMITS) -> float:
    """Memory this process may use, in GiB: the container's cgroup limit when there is one
    (Binder gives 1-2 GB on a large host), else the machine's physical memory.

    Parameters
    ----------
    cgroup_files
        Limit files to read, first found wins (for tests).
    """
    import os

    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    for name in cgroup_files:
        try:
            text = Path(name).read_text().strip()
        except OSError:
            continue
        if text.isdigit():  # "max" (v2) or a huge number (v1) mean no limit
            return min(physical, int(text) / 2**30)
        return physical
    return physical


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB.

    On Linux this is ``VmHWM`` of ``/proc/self/status``, the high-water mark of this
    program's own memory, which starts again at ``exec``. ``ru_maxrss`` does not: it keeps
    the parent's resident size at the fork, so a worker started by a large process (a
    study runner, a notebook) would report the parent's memory as its own peak.
    Elsewhere ``ru_maxrss`` is all there is.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
