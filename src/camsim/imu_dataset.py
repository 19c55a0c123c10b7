"""IMU outputs (`camsim emulate imu`, the `imu` stage of create-datasets) as an indexable dataset of samples.

An IMU output has no transforms.json: params.json (written last, `derived.samples` = rows) and the EuRoC CSV
`imu0/data.csv` (timestamp in ns on the source's clock, gyro rad/s, accel m/s^2, in the IMU frame). Items
are one sample each, the sequences end to end; each sequence's CSV is parsed once per process on first use
(pickling drops the parsed arrays, so DataLoader workers parse their own).
"""

from __future__ import annotations

import bisect
import json
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from camsim.errors import DatasetError
from camsim.indexing import Crop
from camsim.loader import Dataset

DATA = "imu0/data.csv"
ROW = np.dtype([("t", np.int64), ("v", np.float64, (6,))])
"""One row of a EuRoC IMU CSV: the timestamp (ns, exact as an integer) and gyro x y z, accel x y z."""


def is_imu_output(folder: str | os.PathLike[str]) -> bool:
    """A folder holding an IMU output: params.json naming the imu sensor."""
    try:
        params = json.loads((Path(folder) / "params.json").read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(params, dict) and params.get("sensor") == "imu"


def _samples(folder: Path) -> int:
    path = folder / "params.json"
    try:
        params = json.loads(path.read_bytes())
        n = params["derived"]["samples"]
    except FileNotFoundError:
        raise DatasetError(f"{folder}: no params.json (an unfinished IMU output?)") from None
    except (OSError, ValueError, RecursionError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: cannot read derived.samples ({exc})") from None
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise DatasetError(f"{path}: derived.samples must be a count, got {n!r}")
    return n


class ImuDataset(Dataset):
    """IMU samples of one or more IMU outputs, end to end. Item keys: index (in the dataset), sample (in its
    sequence), sequence, timestamp_ns (int), time (s on the source's clock: the frames' `time`), gyro (3,)
    rad/s and accel (3,) m/s^2 (float64, measured: with noise and bias, imu0/data.csv)."""

    def __init__(self, folders: Iterable[tuple[str | os.PathLike[str], str]]) -> None:
        """`folders`: (IMU output folder, sequence name) pairs, in order."""
        self.folders = [(Path(f), name) for f, name in folders]
        if not self.folders:
            raise DatasetError("no IMU outputs to read")
        lengths = [_samples(f) for f, _ in self.folders]
        self.offsets = np.cumsum([0, *lengths]).tolist()
        self._data: dict[int, np.ndarray] = {}

    @classmethod
    def from_folder(cls, folder: str | os.PathLike[str], name: str | None = None) -> ImuDataset:
        return cls([(folder, name if name is not None else Path(folder).name)])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_data"] = {}
        return state

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def sequence(self, k: int) -> np.ndarray:
        """Sequence k's imu0/data.csv as a structured array (`t`: timestamp ns int64, `v`: gyro then accel,
        6 float64), parsed once per process."""
        data = self._data.get(k)
        if data is None:
            folder, _ = self.folders[k]
            path = folder / DATA
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # an empty file: its count is checked below
                    data = np.loadtxt(path, delimiter=",", comments="#", ndmin=1, dtype=ROW)
            except FileNotFoundError:
                raise DatasetError(f"missing {path}") from None
            except (OSError, ValueError) as exc:
                raise DatasetError(f"cannot read {path}: {exc}") from None
            expected = self.offsets[k + 1] - self.offsets[k]
            if data.shape != (expected,):
                raise DatasetError(f"{path}: {data.shape[0]} samples, params.json records {expected}")
            self._data[k] = data
        return data

    def item(self, index: int, crop: Crop | None = None) -> dict[str, Any]:
        if crop is not None:
            raise DatasetError("IMU samples have no rows and columns to crop")
        k = bisect.bisect_right(self.offsets, index) - 1
        local = index - self.offsets[k]
        row = self.sequence(k)[local]
        stamp = int(row["t"])
        return {
            "index": index,
            "sample": local,
            "sequence": self.folders[k][1],
            "timestamp_ns": stamp,
            "time": stamp * 1e-9,
            "gyro": np.array(row["v"][:3]),
            "accel": np.array(row["v"][3:]),
        }
