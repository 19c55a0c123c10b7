"""camsim: turn animated Blender scenes into sensor-realistic computer-vision datasets."""

__version__ = "0.1.0"
