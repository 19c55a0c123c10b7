"""Blender boundary: `service` runs inside Blender; `worker` starts and talks to it from the host."""
