"""How many CPUs this process may use: what sizes render threads and CPU worker pools.

`os.cpu_count()` counts the machine's cores; a SLURM job or container given 8 of 64 cores still sees 64.
The CPUs a process may actually use are the fewest of: its CPU affinity (SLURM's and cgroup cpusets land
here), the CPU quota of its cgroup (v2 `cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, the
process's own cgroup and every ancestor's), and `SLURM_CPUS_PER_TASK` inside a SLURM job.

The parsers are pure (text in, count out) so each source can be checked on its own; `available_cpus`
reads the files and the environment.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path


def cgroup_v2_limit(cpu_max: str) -> int | None:
    """CPUs allowed by a cgroup v2 `cpu.max` ("QUOTA PERIOD", "max PERIOD": no limit), rounded up."""
    parts = cpu_max.split()
    if not parts or parts[0] == "max":
        return None
    try:
        quota = int(parts[0])
        period = int(parts[1]) if len(parts) > 1 else 100_000
    except ValueError:
        return None
    return math.ceil(quota / period) if quota > 0 and period > 0 else None


def cgroup_v1_limit(quota_us: str, period_us: str) -> int | None:
    """CPUs allowed by cgroup v1 `cpu.cfs_quota_us` (-1: no limit) over `cpu.cfs_period_us`, rounded up."""
    try:
        quota, period = int(quota_us.strip()), int(period_us.strip())
    except ValueError:
        return None
    return math.ceil(quota / period) if quota > 0 and period > 0 else None


def slurm_limit(environ: Mapping[str, str]) -> int | None:
    """`SLURM_CPUS_PER_TASK` inside a SLURM job (`SLURM_JOB_ID` set); None outside one or when unset."""
    if not environ.get("SLURM_JOB_ID"):
        return None
    try:
        n = int(environ.get("SLURM_CPUS_PER_TASK", "").strip())
    except ValueError:
        return None
    return n if n > 0 else None


def cgroup_dirs(mountinfo: str, proc_cgroup: str) -> tuple[list[Path], list[Path]]:
    """The cgroup folders whose CPU quota bounds this process, innermost first: (v2 folders, v1 `cpu`
    folders), from the text of /proc/self/mountinfo and /proc/self/cgroup. Each list runs from the
    process's own cgroup up to the mount point (a container sees its own cgroup as the mount's root)."""
    v2_path = v1_path = None
    for line in proc_cgroup.splitlines():
        hid, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hid == "0" and controllers == "":
            v2_path = path
        elif "cpu" in controllers.split(","):
            v1_path = path
    v2: list[Path] = []
    v1: list[Path] = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        after = line.split(" - ", 1)[1].split()
        fstype, options = (after[0], after[2]) if len(after) >= 3 else (after[0] if after else "", "")
        root, mount = _unescape(fields[3]), Path(_unescape(fields[4]))
        if fstype == "cgroup2" and v2_path is not None and not v2:
            v2 = _up_to(mount, root, v2_path)
        elif fstype == "cgroup" and "cpu" in options.split(",") and v1_path is not None and not v1:
            v1 = _up_to(mount, root, v1_path)
    return v2, v1


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _up_to(mount: Path, root: str, path: str) -> list[Path]:
    """mount/(path below root), then each parent up to `mount`."""
    rel = os.path.relpath(path, root) if path.startswith(root) else "."
    here = mount if rel in (".", "") or rel.startswith("..") else mount / rel
    out = [here]
    while here != mount and mount in here.parents:
        here = here.parent
        out.append(here)
    return out


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _affinity() -> int | None:
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is None:
        return None
    try:
        return len(getaffinity(0)) or None
    except OSError:
        return None


def _cgroup_limits() -> list[int]:
    mountinfo, proc_cgroup = _read(Path("/proc/self/mountinfo")), _read(Path("/proc/self/cgroup"))
    if mountinfo is None or proc_cgroup is None:
        return []
    v2, v1 = cgroup_dirs(mountinfo, proc_cgroup)
    limits: list[int | None] = []
    for folder in v2:
        text = _read(folder / "cpu.max")
        limits.append(cgroup_v2_limit(text) if text is not None else None)
    for folder in v1:
        quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        limits.append(cgroup_v1_limit(quota, period) if quota is not None and period is not None else None)
    return [n for n in limits if n is not None]


def fewest(*limits: int | None) -> int:
    """The smallest of the known limits (None: that source sets none), at least 1."""
    known = [n for n in limits if n is not None]
    return max(1, min(known)) if known else 1


def available_cpus() -> int:
    """The CPUs this process may use: the fewest of its affinity, its cgroup quota (v2 or v1) and
    `SLURM_CPUS_PER_TASK` (inside a SLURM job), else `os.cpu_count()`; at least 1."""
    return fewest(os.cpu_count(), _affinity(), *_cgroup_limits(), slurm_limit(os.environ))
