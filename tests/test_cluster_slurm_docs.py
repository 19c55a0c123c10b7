"""docs/CLUSTER.md's SLURM examples: they parse, clean up after themselves, start no unauthenticated
scheduler, and, where a SLURM controller answers (Debian's `slurm-wlm` on one node will do), they run:
jobs submitted, workers joined over TLS, dataset complete, scheduler stopped and its files gone."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

DOC = Path(__file__).parents[1] / "docs" / "CLUSTER.md"
VENV = Path(sys.prefix)
TINY = ("--sequences-per-scene", "1", "--num-frames", "2", "--render-config.width", "32",
        "--render-config.height", "24", "--render-config.max-samples", "2")  # fmt: skip


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)


def _batch_scripts() -> list[str]:
    return [b for b in _blocks("bash") if "#SBATCH" in b]


def _cpu_script() -> str:
    (script,) = [b for b in _batch_scripts() if "--gres" not in b]
    return script


def _gpu_script() -> str:
    (script,) = [b for b in _batch_scripts() if "--gres" in b]
    return script


def _jobqueue_example() -> str:
    (example,) = [b for b in _blocks("python") if "SLURMCluster" in b]
    return example


def _commands(script: str, program: str) -> list[str]:
    """The command lines (continuations joined, bash arrays `"${NAME[@]}"` spelled out) that run `program`
    (e.g. `dask scheduler`)."""
    joined = script.replace("\\\n", " ")
    for name, items in re.findall(r"^(\w+)=\((.*)\)$", joined, re.M):
        joined = joined.replace(f'"${{{name}[@]}}"', items)
    return [line for line in joined.splitlines() if re.search(rf"(^|\s){program}(\s|$)", line)]


# ------------------------------------------------------------------------- everywhere (no SLURM)


def test_the_docs_have_a_gpu_and_a_cpu_only_batch_script() -> None:
    assert len(_batch_scripts()) == 2
    cpu = _cpu_script()
    assert "gpu" not in cpu.lower()  # no --gres=gpu (a CPU partition rejects it), no GPU resource
    assert "--render-config.device-type cpu" in cpu
    assert "--gres=gpu" in _gpu_script() and "--resources GPU=1" in _gpu_script()


@pytest.mark.parametrize("which", ["gpu", "cpu"])
def test_each_batch_script_parses(which: str, tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text(_gpu_script() if which == "gpu" else _cpu_script())
    out = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("which", ["gpu", "cpu"])
def test_each_batch_script_stops_its_scheduler_and_removes_its_files_on_exit(which: str) -> None:
    script = _gpu_script() if which == "gpu" else _cpu_script()
    trap = re.search(r"^trap (\w+) EXIT$", script, re.M)
    assert trap, "no EXIT trap"
    body = re.search(rf"^{trap.group(1)}\(\) {{(.*)}}", script, re.M)
    assert body, f"no function {trap.group(1)}"
    background = re.findall(r"^(\w+)=\$!$", script, re.M)  # the pid of each process started with `&`
    assert len(background) == len(re.findall(r" &$", script.replace("\\\n", " "), re.M)) == 2
    assert all(f'"${pid}"' in body.group(1) for pid in background), body.group(1)
    assert 'rm -rf "$RUN"' in body.group(1)
    (scheduler,) = _commands(script, "dask scheduler")
    assert '--scheduler-file "$RUN/scheduler.json"' in scheduler  # inside the folder the trap removes
    assert re.search(r"^trap .*exit.* TERM", script, re.M), "scancel / wall time would skip the cleanup"


def _authenticated(command: str) -> bool:
    tls = "--protocol tls" in command and all(f"--tls-{k}" in command for k in ("ca-file", "cert", "key"))
    loopback = re.search(r"--host (127\.0\.0\.1|localhost)\b", command) is not None
    return tls or loopback


def test_no_example_starts_an_unauthenticated_scheduler_on_every_interface() -> None:
    text = DOC.read_text()
    assert "0.0.0.0" not in text
    for script in _blocks("bash"):
        for command in _commands(script, "dask scheduler"):
            assert _authenticated(command), command
            assert re.search(r"--dashboard-address (localhost|127\.0\.0\.1):", command) or (
                "--no-dashboard" in command
            ), command
        for command in _commands(script, "dask worker"):  # a worker runs whatever it is sent, too
            assert all(f"--tls-{k}" in command for k in ("ca-file", "cert", "key")), command
    example = _jobqueue_example()
    assert 'protocol="tls://"' in example and "security=security" in example
    assert 'dashboard_address": "localhost:' in example
    for block in _blocks("yaml"):  # Kubernetes: the pods that run Dask accept only each other
        docs = [d for d in yaml.safe_load_all(block) if d]
        dask_pods = [d for d in docs if "dask" in str(d.get("spec", {}).get("template", ""))]
        if dask_pods:
            policies = [d for d in docs if d.get("kind") == "NetworkPolicy"]
            assert policies, "a Dask scheduler reachable by every pod"
            selector = policies[0]["spec"]["podSelector"]["matchLabels"]
            for pod in dask_pods:
                labels = pod["spec"]["template"].get("metadata", {}).get("labels", {})
                assert selector.items() <= labels.items(), pod["metadata"]


def test_the_jobqueue_example_compiles_and_adapts_from_zero() -> None:
    example = _jobqueue_example()
    compile(example, "run_camsim.py", "exec")
    assert "cluster.adapt(minimum=0" in example


def test_a_batch_script_outside_slurm_cleans_up_when_camsim_fails(tmp_path: Path) -> None:
    """The CPU script under plain bash, its one `srun` task started directly: real scheduler and worker
    over TLS, camsim refusing an empty scenes folder; afterwards no scheduler runs and no file is left."""
    if not shutil.which("openssl"):
        pytest.skip("openssl not on PATH")
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "srun").write_text('#!/bin/sh\nexec "$@"\n')  # one task on this machine
    (shim / "srun").chmod(0o755)
    (tmp_path / "scenes").mkdir()
    script = tmp_path / "job.sh"
    script.write_text(_cpu_script())
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}", "SHARED": str(tmp_path), "VENV": str(VENV),
           "SLURM_JOB_ID": "4242", "CAMSIM_LOG": "WARNING"}  # fmt: skip
    out = subprocess.run(["bash", str(script), *TINY], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stdout + out.stderr  # camsim's exit code: no scenes
    assert "camsim: error:" in out.stderr
    assert list((tmp_path / "dask").iterdir()) == []  # scheduler file and certificate removed
    assert not _processes_mentioning(str(tmp_path))


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{proc.name}: {cmdline}")
    return found


# ------------------------------------------------------------------------------ on a real SLURM


def _require_slurm() -> None:
    if not shutil.which("sbatch"):
        pytest.skip("no SLURM here: sbatch not on PATH")
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"no SLURM here: `scontrol ping` failed ({exc})")
    if ping.returncode != 0 or "UP" not in ping.stdout:
        said = " ".join((ping.stdout + ping.stderr).replace("*", "").split())
        pytest.skip(f"no SLURM here: no slurmctld answers `scontrol ping` ({said})")


@pytest.fixture(scope="session")
def slurm() -> None:
    """Skips unless a SLURM controller answers; session-scoped so it runs before `demo_scenes` starts Blender."""
    _require_slurm()


@pytest.fixture(scope="session")
def gpu_slurm(slurm: None) -> None:
    gres = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True).stdout
    if "gpu" not in gres:
        pytest.skip(f"this SLURM has no GPU gres (sinfo %G: {gres.strip() or 'none'})")


@pytest.fixture(scope="session")
def jobqueue(slurm: None) -> None:
    pytest.importorskip("dask_jobqueue", reason="dask-jobqueue not installed")


def _shared(tmp_path: Path, demo_scenes: list[Path]) -> Path:
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / demo_scenes[0].name).symlink_to(demo_scenes[0])
    return tmp_path


def _sbatch(script: Path, shared: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Submit on one node with small resources (the flags override the script's #SBATCH lines) and wait."""
    cmd = ["sbatch", "--wait", "--parsable", "--nodes=1", "--ntasks-per-node=1", "--cpus-per-task=1",
           "--mem=1G", "--time=00:10:00", f"--output={shared / 'job.out'}",
           f"--export=ALL,SHARED={shared},VENV={VENV},CAMSIM_LOG=WARNING", str(script), *extra]  # fmt: skip
    try:
        return subprocess.run(cmd, cwd=shared, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        subprocess.run(["scancel", "--name=camsim"], check=False)
        raise


def _assert_done(shared: Path) -> None:
    assert len(list((shared / "datasets").glob("renders/*/*/transforms.json"))) == 1
    assert list((shared / "dask").iterdir()) == []  # the scheduler file and certificate are gone
    deadline = time.monotonic() + 30
    while _processes_mentioning(str(shared)) and time.monotonic() < deadline:
        time.sleep(1)
    assert not _processes_mentioning(str(shared))  # scheduler and workers stopped


@pytest.mark.blender
def test_cpu_batch_script_renders_a_dataset_on_slurm(
    slurm: None, tmp_path: Path, demo_scenes: list[Path]
) -> None:
    shared = _shared(tmp_path, demo_scenes)
    script = shared / "camsim-cpu.sh"
    script.write_text(_cpu_script())
    done = _sbatch(script, shared, *TINY)
    log = (shared / "job.out").read_text() if (shared / "job.out").exists() else ""
    assert done.returncode == 0, done.stderr + log
    assert "1 done" in log and "tls://" in log, log
    _assert_done(shared)


@pytest.mark.blender
def test_gpu_batch_script_renders_a_dataset_on_slurm(
    gpu_slurm: None, tmp_path: Path, demo_scenes: list[Path]
) -> None:
    shared = _shared(tmp_path, demo_scenes)
    script = shared / "camsim-gpu.sh"
    script.write_text(_gpu_script())
    done = _sbatch(script, shared, *TINY)
    log = (shared / "job.out").read_text() if (shared / "job.out").exists() else ""
    assert done.returncode == 0, done.stderr + log
    _assert_done(shared)


@pytest.mark.blender
def test_jobqueue_example_scales_from_zero_on_slurm(
    jobqueue: None, tmp_path: Path, demo_scenes: list[Path]
) -> None:
    """`cluster.adapt(minimum=0)`: no worker until camsim's tasks wait; then a SLURM job starts one."""
    shared = _shared(tmp_path, demo_scenes)
    script = shared / "run_camsim.py"
    script.write_text(_jobqueue_example())
    env = {**os.environ, "SHARED": str(shared), "VENV": str(VENV), "CORES_PER_JOB": "1", "GPUS_PER_JOB": "0",
           "MAX_JOBS": "1", "CAMSIM_LOG": "WARNING"}  # fmt: skip
    done = subprocess.run([sys.executable, str(script), *TINY], cwd=shared, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 done" in done.stderr + done.stdout
    _assert_done(shared)
