"""IMU emulator: a circular trajectory gives centripetal acceleration plus gravity and a constant body rate;
noise matches its Kalibr parameters in Allan deviation."""

from __future__ import annotations

import numpy as np
import yaml
from scipy.spatial.transform import Rotation
from synthetic_sensors import circle_poses, write_sequence

from camsim.emulate.imu import ImuConfig, allan_deviation, emulate_imu, read_imu_csv

R0 = Rotation.from_euler("x", 90, degrees=True)


def _posed(tmp_path, times, poses, name="seq"):
    frame = np.zeros((2, 2, 3), np.float32)
    return write_sequence(tmp_path / name, [frame] * len(times), times, poses, linear=False)


def test_emulate_imu_circle_gives_centripetal_acceleration_and_body_rate_within_1_percent(tmp_path):
    radius, omega, g = 2.0, 2 * np.pi / 4.0, 9.81
    times = np.arange(0, 8.0 + 1e-9, 1 / 30)
    seq = _posed(tmp_path, times, circle_poses(times, radius, omega))
    out = emulate_imu(seq, tmp_path / "out", ImuConfig(rate=200.0, noise=False))
    ts, vals = read_imu_csv(out / "imu0" / "data.csv")
    t = ts * 1e-9
    inner = (t > 1.0) & (t < 7.0)  # splines are least accurate at the two ends (not-a-knot)
    gyro, acc = vals[inner, :3], vals[inner, 3:]
    rot = Rotation.from_euler("z", omega * t[inner][:, None]) * R0
    a_w = (
        -(omega**2) * radius * np.stack([np.cos(omega * t[inner]), np.sin(omega * t[inner]), 0 * t[inner]], 1)
    )
    want_acc = rot.inv().apply(a_w + np.array([0.0, 0.0, g]))
    want_gyro = R0.inv().apply([0, 0, omega])
    assert np.max(np.linalg.norm(acc - want_acc, axis=1) / np.linalg.norm(want_acc, axis=1)) < 0.01
    assert np.max(np.linalg.norm(gyro - want_gyro, axis=1)) / omega < 0.01
    # noiseless file alongside equals the measurement when noise is off
    _, clean = read_imu_csv(out / "imu0" / "data_noiseless.csv")
    assert np.allclose(clean, vals)
    gt = np.loadtxt(out / "state_groundtruth_estimate0" / "data.csv", delimiter=",", comments="#")
    assert gt.shape[1] == 17 and np.allclose(np.linalg.norm(gt[:, 4:8], axis=1), 1.0)


def test_emulate_imu_at_rest_reads_gravity_up_and_honours_the_camera_to_imu_transform(tmp_path):
    times = np.arange(0, 2.0 + 1e-9, 0.1)
    poses = np.tile(np.eye(4), (len(times), 1, 1))
    poses[:, :3, :3] = R0.as_matrix()  # camera looks horizontally, its +Y along world up (+Z)
    seq = _posed(tmp_path, times, poses)
    t_cam_imu = np.eye(4)
    t_cam_imu[:3, :3] = Rotation.from_euler("x", -90, degrees=True).as_matrix()  # IMU z along camera +Y
    cfg = ImuConfig(noise=False, t_cam_imu=tuple(t_cam_imu.ravel()))
    _, vals = read_imu_csv(emulate_imu(seq, tmp_path / "out", cfg) / "imu0" / "data.csv")
    assert np.allclose(vals[:, 3:], [0, 0, 9.81], atol=1e-9) and np.allclose(vals[:, :3], 0, atol=1e-12)


def test_emulate_imu_noise_matches_kalibr_parameters_in_allan_deviation_at_1s(tmp_path):
    times = np.array([0.0, 1000.0, 2000.0])
    seq = _posed(tmp_path, times, np.tile(np.eye(4), (3, 1, 1)))
    nd, rw, rate = 2e-3, 4e-3, 100.0
    cfg = ImuConfig(
        rate=rate,
        gyroscope_noise_density=nd,
        gyroscope_random_walk=0.0,
        accelerometer_noise_density=0.0,
        accelerometer_random_walk=rw,
        seed=7,
    )
    out = emulate_imu(seq, tmp_path / "out", cfg)
    _, meas = read_imu_csv(out / "imu0" / "data.csv")
    _, clean = read_imu_csv(out / "imu0" / "data_noiseless.csv")
    noise = meas - clean
    for axis in range(3):
        white = allan_deviation(noise[:, axis], rate, 1.0)
        walk = allan_deviation(noise[:, 3 + axis], rate, 1.0)
        assert abs(white / nd - 1) < 0.10, white  # white noise: sigma(tau) = N / sqrt(tau)
        assert abs(walk / (rw / np.sqrt(3)) - 1) < 0.10, walk  # random walk: sigma(tau) = K sqrt(tau / 3)
    sensor = yaml.safe_load((out / "imu0" / "sensor.yaml").read_text())
    assert sensor["gyroscope_noise_density"] == nd and sensor["accelerometer_random_walk"] == rw


def test_emulate_imu_is_identical_for_any_batch_size(tmp_path):
    times = np.arange(0, 30.0, 1 / 10)
    seq = _posed(tmp_path, times, circle_poses(times, 1.0, 0.5))
    a = emulate_imu(seq, tmp_path / "a", ImuConfig(seed=1, batch_size=333))
    b = emulate_imu(seq, tmp_path / "b", ImuConfig(seed=1, batch_size=5000))
    for rel in ("imu0/data.csv", "state_groundtruth_estimate0/data.csv"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
