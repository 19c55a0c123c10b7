"""Warm Blenders that planning's scene readers hand over to the render slots."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable


class Spares(queue.Queue):
    """A queue of warm workers, and how many more are coming: a scene reader that takes the last scene to
    read says so (`expect`) and hands its Blender over (`put`) or gives up (`settle`) when that read ends.

    A render slot with no worker waits for one that is coming (`wait`) instead of starting a Blender of its
    own: the wait is at most one scene read, which the slot's own Blender would spend starting and opening
    a scene too, without a second Blender competing for the cores (with `jobs=1` the run then starts one
    Blender in all, as a bare loop does)."""

    def __init__(self) -> None:
        super().__init__()
        self.coming = 0

    def expect(self) -> None:
        with self.mutex:
            self.coming += 1

    def settle(self) -> None:
        """A reader that said it would hand a worker over has done so, or will not."""
        with self.mutex:
            self.coming = max(0, self.coming - 1)
            self.not_empty.notify_all()

    def wait(self, seconds: float, done: Callable[[], bool] = lambda: False) -> None:
        """Return when a worker is there, none is coming, `done()` turns true (checked every 0.2 s), or after
        `seconds`."""
        end = time.monotonic() + seconds
        with self.not_empty:
            while not self._qsize() and self.coming > 0 and not done():
                left = end - time.monotonic()
                if left <= 0:
                    return
                self.not_empty.wait(min(left, 0.2))
