"""Text labels on preview pictures, drawn with OpenCV's built-in Hershey font (no font files, no downloads).

White 1-pixel strokes (no anti-aliasing, so they stay crisp in small tiles) on a band darkened to a third
of the picture's brightness, so labels read on any content.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_PLAIN
TEXT_COLOUR = (255, 255, 255)
MIN_SCALE = 0.7
"""Smallest font scale (about 7 px capitals, 7 px per character)."""
PAD = 2
"""Pixels of darkened band around the text."""


def scale_for(height: int) -> float:
    """Font scale for a picture `height` pixels high: 0.7 for a 128-pixel tile, never below MIN_SCALE."""
    return float(np.clip(height / 180.0, MIN_SCALE, 2.0))


def _thickness(scale: float) -> int:
    return 1 if scale < 1.5 else 2


def text_width(text: str, scale: float) -> int:
    return cv2.getTextSize(text, FONT, scale, _thickness(scale))[0][0]


def line_height(scale: float) -> int:
    """Pixels from one baseline to the next (capitals, descenders and a pixel of space)."""
    (_, h), base = cv2.getTextSize("Ag", FONT, scale, _thickness(scale))
    return h + base + 1


def fit_text(text: str, width: int, scale: float, keep_end: bool = False) -> str:
    """`text`, shortened with '..' (at the start if `keep_end`, else at the end) to fit in `width` pixels."""
    if text_width(text, scale) <= width:
        return text
    for n in range(len(text) - 1, 0, -1):
        cut = ".." + text[-n:] if keep_end else text[:n] + ".."
        if text_width(cut, scale) <= width:
            return cut
    return ""


def draw_label(img: np.ndarray, lines: Sequence[str], scale: float | None = None) -> np.ndarray:
    """A copy of HxWx3 uint8 `img` with `lines` written in its top-left corner.

    Lines go from the most general to the most specific: when the picture is too low for all of them,
    the first ones are left out. Lines too wide are cut at the end with '..'.
    """
    out = np.array(img, dtype=np.uint8, copy=True)
    h, w = out.shape[:2]
    scale = scale_for(h) if scale is None else scale
    step = line_height(scale)
    room = max(0, (h - 2 * PAD) // step)
    lines = [s for s in lines if s][-room:] if room else []
    lines = [fit_text(s, w - 2 * PAD, scale) for s in lines]
    lines = [s for s in lines if s]
    if not lines:
        return out
    band_w = min(w, max(text_width(s, scale) for s in lines) + 2 * PAD)
    band_h = min(h, len(lines) * step + 2 * PAD)
    out[:band_h, :band_w] //= 3
    (_, cap), _ = cv2.getTextSize("A", FONT, scale, _thickness(scale))
    for k, text in enumerate(lines):
        baseline = PAD + k * step + cap
        cv2.putText(out, text, (PAD, baseline), FONT, scale, TEXT_COLOUR, _thickness(scale), cv2.LINE_8)
    return out
