"""available_cpus: the CPUs this process may use (affinity, cgroup quota, SLURM), not the machine's cores."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from camsim.cpus import cgroup_dirs, cgroup_v1_limit, cgroup_v2_limit, fewest, slurm_limit


def _in_child(code: str, env: dict[str, str] | None = None) -> str:
    """Run `code` in a fresh Python (SLURM variables of the test's own environment removed)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    out = subprocess.run(
        [sys.executable, "-c", code], env={**base, **(env or {})}, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_cgroup_v2_cpu_max_is_read_as_whole_cpus_rounded_up() -> None:
    assert cgroup_v2_limit("max 100000\n") is None
    assert cgroup_v2_limit("200000 100000\n") == 2
    assert cgroup_v2_limit("150000 100000") == 2
    assert cgroup_v2_limit("50000 100000") == 1
    assert cgroup_v2_limit("800000 100000") == 8
    assert cgroup_v2_limit("") is None
    assert cgroup_v2_limit("garbage 100000") is None


def test_cgroup_v1_quota_over_period_and_minus_one_means_no_limit() -> None:
    assert cgroup_v1_limit("-1\n", "100000\n") is None
    assert cgroup_v1_limit("250000\n", "100000\n") == 3
    assert cgroup_v1_limit("100000", "100000") == 1
    assert cgroup_v1_limit("x", "100000") is None


def test_slurm_cpus_per_task_counts_only_inside_a_job() -> None:
    assert slurm_limit({"SLURM_CPUS_PER_TASK": "4"}) is None  # left over from a login shell
    assert slurm_limit({"SLURM_JOB_ID": "17", "SLURM_CPUS_PER_TASK": "4"}) == 4
    assert slurm_limit({"SLURM_JOB_ID": "17"}) is None
    assert slurm_limit({"SLURM_JOB_ID": "17", "SLURM_CPUS_PER_TASK": "many"}) is None


def test_fewest_takes_the_tightest_known_limit_and_at_least_one() -> None:
    assert fewest(64, None, 8, None) == 8
    assert fewest(None, None) == 1
    assert fewest(0) == 1


V2_HOST = "30 1 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
V1_DOCKER = (
    "40 30 0:35 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid master:18 - cgroup cgroup rw,cpu,cpuacct\n"
    "41 30 0:36 /docker/abc /sys/fs/cgroup/memory ro,nosuid master:19 - cgroup cgroup rw,memory\n"
)


def test_cgroup_folders_run_from_the_process_cgroup_up_to_the_mount() -> None:
    v2, v1 = cgroup_dirs(V2_HOST, "0::/system.slice/slurmstepd.scope/job_7\n")
    root = Path("/sys/fs/cgroup")
    assert v2 == [root / "system.slice/slurmstepd.scope/job_7", root / "system.slice/slurmstepd.scope",
                  root / "system.slice", root]  # fmt: skip
    assert v1 == []
    # a container's cgroup is the root of its mount
    v2, v1 = cgroup_dirs(V1_DOCKER, "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n")
    assert v2 == [] and v1 == [Path("/sys/fs/cgroup/cpu,cpuacct")]


def test_affinity_restricted_to_one_cpu_gives_one() -> None:
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no sched_setaffinity on this platform")
    cpu = min(os.sched_getaffinity(0))
    code = (
        f"import os; os.sched_setaffinity(0, {{{cpu}}})\n"
        "from camsim.cpus import available_cpus\n"
        "from camsim.config import ExecutionConfig\n"
        "from camsim.derive import cpu_workers\n"
        "print(available_cpus(), ExecutionConfig().threads_for(1), cpu_workers(0))"
    )
    assert _in_child(code) == "1 1 1"


def test_all_allowed_cpus_are_counted_without_other_limits() -> None:
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no sched_getaffinity on this platform")
    from camsim.cpus import _cgroup_limits

    allowed = len(os.sched_getaffinity(0))
    expected = min([allowed, *_cgroup_limits()])
    assert _in_child("from camsim.cpus import available_cpus; print(available_cpus())") == str(expected)


def test_slurm_job_with_one_cpu_per_task_gives_one() -> None:
    code = "from camsim.cpus import available_cpus; print(available_cpus())"
    assert _in_child(code, {"SLURM_JOB_ID": "1", "SLURM_CPUS_PER_TASK": "1"}) == "1"


def test_cgroup_v1_cpu_quota_of_one_cpu_gives_one() -> None:
    """A real cgroup (v1 `cpu` controller) with a quota of one CPU; needs root and a writable mount."""
    mount = Path("/sys/fs/cgroup/cpu")
    if os.geteuid() != 0 or not (mount / "cpu.cfs_quota_us").exists() or not os.access(mount, os.W_OK):
        pytest.skip("needs root and a writable cgroup v1 cpu controller at /sys/fs/cgroup/cpu")
    group = mount / f"camsim-test-{uuid.uuid4().hex[:8]}"
    try:
        group.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a cgroup: {exc}")
    try:
        (group / "cpu.cfs_period_us").write_text("100000")
        (group / "cpu.cfs_quota_us").write_text("100000")
        code = (
            f"import os; open({str(group / 'cgroup.procs')!r}, 'w').write(str(os.getpid()))\n"
            "from camsim.cpus import available_cpus; print(available_cpus())"
        )
        assert _in_child(code) == "1"
    finally:
        group.rmdir()
