"""A create-datasets run's manifest, kept up to date as scenes are read and sequences' stages finish.

Only the host process writes DATASETS/dataset.json (camsim.manifest); updates come from the planning thread
and the runner's events, so they are serialised here and written at most once a second (and at the end).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from camsim.fileio import make_output_dir
from camsim.jobs import JobOutcome, SequenceJob
from camsim.manifest import (
    STAGES,
    Manifest,
    SceneRecord,
    SequenceRecord,
    StageState,
    combined,
    sequence_key,
    write_manifest,
)
from camsim.stages import StageOutcome

WRITE_INTERVAL = 1.0
"""Seconds between two writes of dataset.json during a run (each write is the whole file)."""


class Ledger:
    """Nothing is written before `accept` (the run's first sequences passed their checks): a run refused as
    bad input leaves dataset.json as it was. `header` (the run's config, stages, splits, versions) is applied to
    the manifest then."""

    def __init__(self, datasets_dir: Path, manifest: Manifest, header: dict[str, Any] | None = None) -> None:
        self.datasets_dir = datasets_dir
        self.manifest = manifest
        self.header = header or {}
        self.accepted = False
        self._lock = threading.Lock()
        self._written = 0.0
        self._dirty = False

    def accept(self) -> None:
        with self._lock:
            if not self.accepted:
                for key, value in self.header.items():
                    setattr(self.manifest, key, value)
                self.accepted = True
                self._dirty = True

    def scene(self, name: str, record: SceneRecord) -> None:
        with self._lock:
            self.manifest.scenes[name] = record
            self._dirty = True
        self.flush(force=False)

    def planned(self, job: SequenceJob, split: str | None, stages: tuple[str, ...]) -> None:
        """A sequence is planned: its record lists the stages this run asks for (kept ones keep their state); a
        rig's stages after the render, each of its cameras."""
        key = sequence_key(job.scene_name, job.sequence_id)
        assert job.frame_start is not None and job.frame_end is not None
        cameras = tuple(job.settings.cameras)
        with self._lock:
            old = self.manifest.sequences.get(key)
            states = dict(old.stages) if old else {}
            for stage in ("render", *stages):
                states.setdefault(stage, StageState())
                if stage != "render" and cameras:
                    kept = states[stage].cameras
                    states[stage] = combined({c: kept.get(c, StageState()) for c in cameras})
            self.manifest.sequences[key] = SequenceRecord(
                job.scene_name, split, job.frame_start, job.frame_end, _ordered(states)
            )
            self._dirty = True

    def rendered(self, outcome: JobOutcome, settings_hash: str) -> None:
        key = sequence_key(outcome.job.scene_name, outcome.job.sequence_id)
        state = (
            StageState("failed", settings_hash, outcome.error or "failed")
            if outcome.status == "failed"
            else StageState("complete", settings_hash)
        )
        self._set(key, "render", state)

    def staged(self, outcome: StageOutcome) -> None:
        state = (
            StageState("failed", outcome.settings_hash, outcome.error or "failed")
            if outcome.status == "failed"
            else StageState("complete", outcome.settings_hash)
        )
        task = outcome.task
        self._set(task.sequence, task.stage, state, task.camera)

    def _set(self, key: str, stage: str, state: StageState, camera: str | None = None) -> None:
        """Record a stage's state (of one camera of a rig: the stage's is then its cameras' together)."""
        with self._lock:
            record = self.manifest.sequences.get(key)
            if record is None:
                return
            if camera is not None:
                old = record.stages.get(stage) or StageState()
                state = combined({**old.cameras, camera: state})
            record.stages[stage] = state
            record.stages = _ordered(record.stages)
            self._dirty = True
        self.flush(force=False)

    def flush(self, force: bool = True, cache_only: bool = False) -> None:
        """Write dataset.json (`force`: now, else at most once per WRITE_INTERVAL); before `accept` only when
        `cache_only` (a dry run keeps what it read: the scene cache)."""
        with self._lock:
            if not self._dirty or not (self.accepted or cache_only):
                return
            if not force and time.monotonic() - self._written < WRITE_INTERVAL:
                return
            make_output_dir(self.datasets_dir)
            write_manifest(self.datasets_dir, self.manifest)
            self._written = time.monotonic()
            self._dirty = False


def _ordered(states: dict[str, Any]) -> dict[str, Any]:
    return {s: states[s] for s in STAGES if s in states}
