"""IMU from camera poses: spline the trajectory, differentiate, add Kalibr-convention noise.

The trajectory is `camsim.trajectory.Spline` (cubic spline positions, rotation spline orientations) through
the IMU poses T_w_imu = T_w_cam @ T_cam_imu. The accelerometer measures specific force
in the IMU frame, f = R_w_imu^T (a_w - g_w) with g_w = (0, 0, -gravity) (world +Z up), so an IMU at rest
reads +gravity along its up axis. The gyroscope measures body rates. Noise follows Kalibr's
continuous-time parameters: white noise of density sigma (discrete std sigma / sqrt(dt)) plus a bias
random walk of density sigma_b (bias step std sigma_b * sqrt(dt)).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from camsim import trajectory
from camsim.emulate import timebase
from camsim.emulate.common import IMU_BLOCK, Progress, check_positive, rng, write_params
from camsim.emulate.light import Sequence, run_emulator
from camsim.errors import ConfigError
from camsim.fileio import atomic_path

log = logging.getLogger(__name__)

MIN_POSES = 3
"""Poses the trajectory fit needs (a cubic spline through fewer has no acceleration)."""

EUROC_IMU_HEADER = (
    "#timestamp [ns],w_RS_S_x [rad s^-1],w_RS_S_y [rad s^-1],w_RS_S_z [rad s^-1],"
    "a_RS_S_x [m s^-2],a_RS_S_y [m s^-2],a_RS_S_z [m s^-2]"
)
EUROC_GT_HEADER = (
    "#timestamp,p_RS_R_x [m],p_RS_R_y [m],p_RS_R_z [m],q_RS_w [],q_RS_x [],q_RS_y [],q_RS_z [],"
    "v_RS_R_x [m s^-1],v_RS_R_y [m s^-1],v_RS_R_z [m s^-1],b_w_RS_S_x [rad s^-1],b_w_RS_S_y [rad s^-1],"
    "b_w_RS_S_z [rad s^-1],b_a_RS_S_x [m s^-2],b_a_RS_S_y [m s^-2],b_a_RS_S_z [m s^-2]"
)


@dataclass
class ImuConfig:
    """IMU parameters (defaults: the ADIS16448 of the EuRoC MAV dataset, Kalibr units)."""

    rate: float = 200.0
    """Sample rate (Hz)."""
    gyroscope_noise_density: float = 1.6968e-04
    """Gyro white noise density (rad/s/sqrt(Hz))."""
    gyroscope_random_walk: float = 1.9393e-05
    """Gyro bias random walk (rad/s^2/sqrt(Hz))."""
    accelerometer_noise_density: float = 2.0000e-3
    """Accelerometer white noise density (m/s^2/sqrt(Hz))."""
    accelerometer_random_walk: float = 3.0000e-3
    """Accelerometer bias random walk (m/s^3/sqrt(Hz))."""
    gravity: float = 9.81
    """Gravity magnitude (m/s^2), along world -Z."""
    t_cam_imu: tuple[float, ...] = (1.0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0, 1.0)
    """Camera-from-IMU transform (4x4 row-major; p_cam = T p_imu), camera in OpenGL axes."""
    noise: bool = True
    """Add white noise and bias random walk (the noiseless signal is written alongside anyway)."""
    seed: int = 0
    """Random seed; same seed and input give bit-identical output."""
    batch_size: int = 20000
    """Samples computed at once (bounds memory; does not change the output)."""

    def validate(self) -> None:
        check_positive("rate", self.rate)
        for name in (
            "gyroscope_noise_density",
            "gyroscope_random_walk",
            "accelerometer_noise_density",
            "accelerometer_random_walk",
            "gravity",
        ):
            check_positive(name, getattr(self, name), allow_zero=True)
        if len(self.t_cam_imu) != 16:
            raise ConfigError(f"t_cam_imu needs 16 numbers, got {len(self.t_cam_imu)}")
        t = np.asarray(self.t_cam_imu, float).reshape(4, 4)
        r = t[:3, :3]
        if not np.allclose(r @ r.T, np.eye(3), atol=1e-6) or not np.allclose(t[3], [0, 0, 0, 1]):
            raise ConfigError("t_cam_imu must be a rigid transform (orthonormal rotation, last row 0 0 0 1)")
        if self.batch_size < 1:
            raise ConfigError("batch_size must be at least 1")


def imu_spline(times: np.ndarray, c2w: np.ndarray, t_cam_imu: np.ndarray | None = None) -> trajectory.Spline:
    """The IMU's trajectory: the `trajectory.Spline` through the IMU poses T_w_imu = T_w_cam @ T_cam_imu."""
    if len(times) < MIN_POSES:
        raise ConfigError(f"need at least {MIN_POSES} poses to fit an IMU trajectory, got {len(times)}")
    return trajectory.Spline(times, c2w @ (np.eye(4) if t_cam_imu is None else t_cam_imu))


def sample(spline: trajectory.Spline, t: np.ndarray, gravity: float = 9.81) -> dict[str, np.ndarray]:
    """Noiseless states at times t: p, v (world), q (w,x,y,z), gyro (body rad/s), accel (body m/s^2)."""
    rot = spline.rotations(t)
    f_w = spline.accelerations(t) - np.array([0.0, 0.0, -gravity])
    f_b = rot.inv().apply(f_w)
    q = rot.as_quat()  # x, y, z, w
    return {
        "p": spline.positions(t),
        "v": spline.velocities(t),
        "q": np.concatenate([q[:, 3:], q[:, :3]], axis=1),
        "gyro": spline.angular_rates(t),
        "accel": f_b,
    }


def _normals(seed: int, start: int, stop: int) -> np.ndarray:
    """Standard normals (stop-start, 12) for sample indices [start, stop), in fixed blocks keyed on index."""
    rows = []
    for b in range(start // IMU_BLOCK, (stop - 1) // IMU_BLOCK + 1):
        block = rng(seed, "imu_block", b).standard_normal((IMU_BLOCK, 12))
        lo = max(start, b * IMU_BLOCK) - b * IMU_BLOCK
        hi = min(stop, (b + 1) * IMU_BLOCK) - b * IMU_BLOCK
        rows.append(block[lo:hi])
    return np.concatenate(rows)


def sample_count(seq: Sequence, cfg: ImuConfig) -> int:
    """Samples from the first to the last frame's time at cfg.rate (sample k at t0 + k / rate)."""
    if seq.n < MIN_POSES:
        raise ConfigError(f"need at least {MIN_POSES} poses to fit an IMU trajectory, got {seq.n}")
    return int(np.floor((float(seq.times[-1]) - float(seq.times[0])) * cfg.rate + 1e-9)) + 1


def progress_total(seq: Sequence, cfg: ImuConfig) -> int:
    """Progress units of a run: samples."""
    return sample_count(seq, cfg)


def emulate_imu(
    input_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    cfg: ImuConfig | None = None,
    overwrite: bool = False,
    progress: Progress = None,
    workers: int = 0,
) -> Path:
    """Emulate an IMU from a sequence's camera poses; write a EuRoC-style folder. Returns it.

    Layout: imu0/data.csv (measured), imu0/data_noiseless.csv, imu0/sensor.yaml (noise parameters),
    state_groundtruth_estimate0/data.csv (pose, velocity, biases), params.json (written last).
    Timestamps are nanoseconds on the source's clock (its frames' `time` x 1e9).
    `progress` is called with the number of samples finished after each batch (`progress_total` in all);
    `workers` is accepted for a uniform interface (one sequence is one thread).
    """
    return run_emulator(
        _run,
        progress_total,
        cfg or ImuConfig(),
        input_dir,
        output_dir,
        overwrite,
        progress,
        workers,
        light="srgb",
    )


def _run(seq: Sequence, out: Path, cfg: ImuConfig, progress: Progress, workers: int = 1) -> Path:
    import yaml

    t_cam_imu = np.asarray(cfg.t_cam_imu, float).reshape(4, 4)
    traj = imu_spline(seq.times, seq.poses, t_cam_imu)
    n = sample_count(seq, cfg)
    dt = 1.0 / cfg.rate
    (out / "imu0").mkdir(exist_ok=True)
    (out / "state_groundtruth_estimate0").mkdir(exist_ok=True)
    sd_white = np.array([cfg.gyroscope_noise_density] * 3 + [cfg.accelerometer_noise_density] * 3) / np.sqrt(
        dt
    )
    sd_walk = np.array([cfg.gyroscope_random_walk] * 3 + [cfg.accelerometer_random_walk] * 3) * np.sqrt(dt)
    bias = np.zeros(6)
    paths = {
        "meas": out / "imu0" / "data.csv",
        "clean": out / "imu0" / "data_noiseless.csv",
        "gt": out / "state_groundtruth_estimate0" / "data.csv",
    }
    ctxs = {k: atomic_path(p) for k, p in paths.items()}
    files = {}
    try:
        for k, ctx in ctxs.items():
            files[k] = open(ctx.__enter__(), "w")  # noqa: SIM115 - closed below
        files["meas"].write(EUROC_IMU_HEADER + "\n")
        files["clean"].write(EUROC_IMU_HEADER + "\n")
        files["gt"].write(EUROC_GT_HEADER + "\n")
        for s0 in range(0, n, cfg.batch_size):
            s1 = min(n, s0 + cfg.batch_size)
            idx = np.arange(s0, s1)
            t = np.minimum(traj.t0 + idx * dt, traj.t1)
            st = sample(traj, t, cfg.gravity)
            clean = np.concatenate([st["gyro"], st["accel"]], axis=1)
            if cfg.noise:
                z = _normals(cfg.seed, s0, s1)
                # bias_k is the bias at sample k: b_0 = 0, b_{k+1} = b_k + sd_walk * z. A sequential
                # accumulate seeded with the carried bias adds in the same order whatever the batch size.
                acc = np.add.accumulate(np.vstack([bias[None], z[:, 6:] * sd_walk]), axis=0)
                biases, bias = acc[:-1], acc[-1]
                meas = clean + biases + z[:, :6] * sd_white
            else:
                biases = np.zeros_like(clean)
                meas = clean
            ts_ns = np.rint(t * 1e9).astype(np.int64)
            _write_rows(files["meas"], ts_ns, meas)
            _write_rows(files["clean"], ts_ns, clean)
            _write_rows(files["gt"], ts_ns, np.concatenate([st["p"], st["q"], st["v"], biases], axis=1))
            if progress:
                progress(s1 - s0)
        for f in files.values():
            f.close()
        for ctx in ctxs.values():
            ctx.__exit__(None, None, None)
    except BaseException as exc:
        for f in files.values():
            f.close()
        for ctx in ctxs.values():
            try:
                ctx.__exit__(type(exc), exc, exc.__traceback__)
            except Exception:  # the original error matters more than a failed cleanup
                log.debug("cleanup failed", exc_info=True)
        raise
    sensor = {
        "sensor_type": "imu",
        "comment": "camsim emulated IMU (Kalibr noise convention); T_BS = camera-from-IMU transform",
        "T_BS": {"cols": 4, "rows": 4, "data": [float(v) for v in cfg.t_cam_imu]},
        "rate_hz": float(cfg.rate),
        "gyroscope_noise_density": cfg.gyroscope_noise_density,
        "gyroscope_random_walk": cfg.gyroscope_random_walk,
        "accelerometer_noise_density": cfg.accelerometer_noise_density,
        "accelerometer_random_walk": cfg.accelerometer_random_walk,
        "update_rate": float(cfg.rate),
        "gravity": cfg.gravity,
        "noise": cfg.noise,
    }
    with atomic_path(out / "imu0" / "sensor.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(sensor, sort_keys=False))
    t_last = min(traj.t0 + (n - 1) * dt, traj.t1)
    write_params(
        out,
        "imu",
        cfg,
        seq,
        samples=n,
        start_time_s=traj.t0,
        end_time_s=traj.t1,
        time_base="timestamps in imu0/*.csv and state_groundtruth_estimate0/data.csv are nanoseconds on the "
        "source's clock (its frames' time x 1e9: since the scene's first frame); sample k is at start_time_s + "
        "k / rate; the source frame_number at a timestamp is linear in time between source frames",
        source_frame_number_at_start=timebase.at(seq.frame_numbers, 0.0),
        source_frame_number_at_last_sample=_number_at(seq, t_last),
    )
    return out


def _number_at(seq: Sequence, t: float) -> float:
    """The source frame_number at time t (linear between source frames)."""
    i = int(np.clip(np.searchsorted(seq.times, t, side="right") - 1, 0, seq.n - 2))
    x = i + (t - seq.times[i]) / (seq.times[i + 1] - seq.times[i])
    return timebase.at(seq.frame_numbers, float(x))


def _write_rows(fh, ts_ns: np.ndarray, values: np.ndarray) -> None:
    """CSV rows `t,v1,...` with every value as "%.9g" (one %-format per row: ~1.4x a join of f-strings)."""
    row = "%d" + ",%.9g" * values.shape[1]
    fh.write("\n".join([row % (t, *r) for t, r in zip(ts_ns.tolist(), values.tolist(), strict=True)]) + "\n")


def read_imu_csv(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps (ns, int64) and values (N x K float) of a EuRoC-style CSV."""
    data = np.loadtxt(path, delimiter=",", comments="#", ndmin=2)
    return data[:, 0].astype(np.int64), data[:, 1:]


def allan_deviation(x: np.ndarray, rate: float, tau: float) -> float:
    """Non-overlapping Allan deviation of a rate signal x sampled at `rate` Hz, at averaging time tau."""
    m = round(tau * rate)
    k = len(x) // m
    if k < 3:
        raise ConfigError("signal too short for this averaging time")
    means = x[: k * m].reshape(k, m).mean(axis=1)
    return float(np.sqrt(0.5 * np.mean(np.diff(means) ** 2)))
