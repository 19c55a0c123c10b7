"""The one progress view of create-datasets counts every frame once, whatever the runner reports on retries."""

from __future__ import annotations

from pathlib import Path

from rich.progress import Progress

from camsim.config import RenderConfig
from camsim.jobs import Event, JobOutcome, SequenceJob
from camsim.progress import RunView


def job(name: str) -> SequenceJob:
    return SequenceJob(Path(f"{name}.blend"), Path(name), RenderConfig(), 1, 3, name, "000001-000003-x1")


def test_a_retry_that_reports_its_kept_frames_again_does_not_count_them_twice():
    with Progress(disable=True) as bar:
        view = RunView(bar, 2, 6)
        a, b = job("a"), job("b")
        for e in [
            Event("start", 0, a, message="worker-1"), Event("total", 0, a, value=3), Event("frames", 0, a, value=2),
            Event("retry", 0, a, message="worker died"),
            Event("start", 0, a, message="worker-1-r1"), Event("total", 0, a, value=3),
            Event("frames", 0, a, value=2),  # the resume reports the 2 frames it kept
            Event("frames", 0, a, value=1),
            Event("finished", -1, a, outcome=JobOutcome(a, "done")),
            Event("finished", -1, b, outcome=JobOutcome(b, "skipped")),
        ]:  # fmt: skip
            view.on_event(e)
        overall = bar.tasks[view.overall]
        assert overall.completed == overall.total == 6
        assert overall.description == "sequences 2/2"
