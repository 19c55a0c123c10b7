"""Dataclass configs. Field docstrings are the `--help` text (tyro reads them)."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from camsim.errors import ConfigError

DeviceType = Literal["auto", "cpu", "cuda", "optix", "hip", "metal", "oneapi"]
GPU_BACKENDS: tuple[str, ...] = ("optix", "cuda", "hip", "metal", "oneapi")


def _jsonable(v: object) -> object:
    return str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v


@dataclass(frozen=True)
class RenderSettings:
    """What is rendered: every setting that changes the files a render writes. It is the `render` block of
    transforms.json, the settings hash that resume compares, the Dask task key and the message to Blender."""

    height: int | None = None
    """Frame height in pixels. Default: the scene's own (times its resolution percentage)."""
    width: int | None = None
    """Frame width in pixels. Default: the scene's own (times its resolution percentage)."""
    bit_depth: Literal[8, 16] = 8
    """Bits per channel of the RGB frames (PNG only)."""
    file_format: Literal["PNG", "JPEG"] = "PNG"
    """Image format of the RGB frames."""
    exr_codec: Literal["auto", "none", "rle", "zips", "zip", "piz", "htj2k", "zstd"] = "auto"
    """Lossless compression of the ground-truth EXR files. `auto`: per kind, the codec that writes the fewest
    bytes among those every OpenEXR reader decodes (ZIP; PIZ for float32 flow and linear RGB: BENCHMARKS.md,
    "Ground-truth bytes"). `htj2k` (lossless HTJ2K) and `zstd` write less float32 flow than PIZ but need OpenEXR
    3.4 / 3.5 to read (Blender 4.x cannot), and are refused where this Python's OpenEXR lacks them."""
    flow_grid: int = 2048
    """Store flow rounded to multiples of 1/N pixel (N a power of two up to 2^20), still float32: at most
    1/(2N) px from the computed flow. 2048: 1/4096 px at most, below the RMS of Cycles' own per-pixel flow noise
    (BENCHMARKS.md), in a quarter of the bytes. 0: float32 exactly as computed. transforms.json `encodings`
    states the bound."""
    normal_precision: Literal["float32", "half"] = "float32"
    """Store normals as float32 exactly as computed, or as half floats (each component within 2^-12 of it,
    unit length within 4.3e-4; under half the bytes). camsim's readers return float32 either way."""
    depths: bool = True
    """Write planar z-depth maps (depths/depth_NNNNNN.exr)."""
    normals: bool = True
    """Write camera-frame surface normals (normals/normal_NNNNNN.exr)."""
    flows: bool = True
    """Write forward and backward optical flow (flows/flow_NNNNNN.exr). Needs motion blur off."""
    segmentations: bool = True
    """Write object-id segmentation (segmentations/segmentation_NNNNNN.exr)."""
    semantics: bool = False
    """Write category-id (semantic) maps (semantics/semantic_NNNNNN.exr): each object's category (its custom
    property `category`, else its first collection) through transforms.json `categories`. Needs
    segmentations."""
    annotations: bool = True
    """Write per-object annotations per frame into objects.json: camera-frame pose, 3-D box, visible and
    amodal 2-D boxes, pixel counts, visibility, truncation. Needs segmentations (none are written without)."""
    amodal_masks: bool = False
    """Also write each annotated object's amodal silhouette per frame (amodal/amodal_NNNNNN.npz: the pixels its
    geometry covers with nothing in front of it, bit-packed; what `export bop` writes as mask/). Needs
    annotations and segmentations."""
    scene_flows: bool = False
    """Write scene flow (scene_flows/scene_flow_NNNNNN.exr): the 3-D motion in metres of the surface point at
    each pixel to the next and from the previous frame, in the camera frame; NaN on objects that do not move
    rigidly with a matrix of their own (deforming, instanced). Needs motion blur off."""
    linear: bool = False
    """Also keep the scene-linear RGB of each frame (linear/linear_NNNNNN.exr), for sensor emulation."""
    albedo: bool = False
    """Write the scene-linear diffuse albedo of each frame (albedo/albedo_NNNNNN.exr, Cycles' Diffuse Color
    pass): the reflectance active sensors (iToF, LiDAR) need."""
    debug: bool = True
    """Write colorized PNGs of each ground truth under debug/."""
    keyframe_multiplier: float = 1.0
    """Stretch every animation in time by this factor: m times as many frames cover the same motion
    (the frame range is scaled too)."""
    autoexec: bool = False
    """Let Python scripts embedded in .blend files run. Off by default: a scene is untrusted code."""
    device_type: DeviceType = "auto"
    """Cycles device: `auto` uses a GPU when Blender finds one (OptiX, CUDA, HIP, Metal, oneAPI, in that
    order) and the CPU otherwise; a named GPU backend falls back to the CPU, with a warning, when absent."""
    adaptive_threshold: float = 0.05
    """Cycles adaptive sampling noise threshold (0 disables adaptive sampling)."""
    max_samples: int = 128
    """Cycles samples per pixel (the maximum when adaptive sampling is on)."""
    use_denoising: bool = True
    """Denoise the RGB frame (OpenImageDenoise). Ground-truth passes are never denoised."""
    unbind_camera: bool = False
    """Free the camera from its parent, constraints and animation (it keeps its first-frame pose)."""
    use_animations: bool = True
    """Play the scene's animations. Off: objects stay at the first frame; the camera still moves."""
    use_motion_blur: bool | None = None
    """Force motion blur on or off. Default: the scene's setting, turned off when flows are asked for."""
    scene: str | None = None
    """Scene of the .blend to render (a file can hold several). Default: the file's active scene."""
    cameras: tuple[str, ...] = ()
    """Render the same frames through several camera objects (a rig), or `all`: every camera object of the scene,
    sorted by name. Each camera gets a complete sequence in SEQUENCE/CAMERA/ (one time base) and SEQUENCE/rig.json
    records their extrinsics (to the first camera) and stereo pairs; timeline markers then switch no camera and
    cut no sequence. Default: the scene camera into SEQUENCE/ (markers switch it)."""
    disparities: bool = True
    """Write stereo disparity (disparities/disparity_NNNNNN.exr) in the left camera's folder of each rectified
    stereo pair of --render-config.cameras (nothing without one)."""
    depth_of_field: bool = False
    """Keep the cameras' depth of field in the RGB frames. Ground truth stays pinhole-exact: each frame is
    rendered a second time without depth of field for the passes (about twice the render time). Off: depth
    of field is turned off and the frames are pinhole too."""
    distortion: tuple[float, float, float, float, float] | None = None
    """OpenCV radial-tangential lens distortion K1 K2 K3 P1 P2 (OpenCV's model on normalized image coordinates).
    A larger pinhole image is rendered and resampled into the distorted frame: RGB and linear bilinearly, the
    other ground truth from the nearest pinhole sample (never a blend), flow recomputed for the distorted
    camera. transforms.json: camera_model OPENCV with these k1 k2 k3 p1 p2. Default: none (a pinhole)."""
    lens: Literal["perspective", "fisheye-equidistant", "fisheye-equisolid", "fisheye-polynomial"] = (
        "perspective"
    )
    """The cameras' projection: `perspective` (the scene's, with --render-config.distortion when given) or a
    Cycles fisheye seeing --render-config.fisheye-fov: `fisheye-equidistant` (image radius proportional to the
    angle, the image circle as wide as the frame; camera_model OPENCV_FISHEYE, k1..k4 = 0) or
    `fisheye-equisolid` (radius 2 f sin(angle/2) with the camera's focal length; camera_model
    FISHEYE_EQUISOLID) or `fisheye-polynomial` (Cycles' polynomial lens with --render-config.fisheye-polynomial;
    camera_model FISHEYE_POLYNOMIAL). Fisheye depth maps hold the distance along the ray, not planar z."""
    fisheye_fov: float = 180.0
    """Field of view of a fisheye --render-config.lens (its image circle), degrees, at most 360."""
    fisheye_polynomial: tuple[float, float, float, float, float] | None = None
    """K0 K1 K2 K3 K4 of --render-config.lens fisheye-polynomial (Cycles' FISHEYE_LENS_POLYNOMIAL): a pixel at
    image radius r millimetres on the camera's sensor sees the ray at angle -(K0 + K1 r + K2 r^2 + K3 r^3 +
    K4 r^4) radians from the axis (K0 <= 0, K1 < 0; refused where it folds back within the frame, and flow where
    Cycles' motion vectors cannot invert it). transforms.json: camera_model FISHEYE_POLYNOMIAL with k0..k4."""
    strict: bool = False
    """Fail a scene that has warnings (missing files or libraries, a newer file version, an engine other
    than Cycles) instead of rendering it with the warnings recorded."""
    addons: tuple[str, ...] = ()
    """Blender add-ons to enable in each worker (module names)."""

    @property
    def ground_truth(self) -> tuple[str, ...]:
        """Flags of the ground-truth kinds asked for (camsim.passes.RENDERED), in output order."""
        from camsim.passes import RENDERED  # the registry; imported here to keep this module light

        return tuple(str(p.flag) for p in RENDERED if getattr(self, str(p.flag)))

    def to_json(self) -> dict[str, object]:
        """The settings as written into transforms.json (paths as strings, tuples as lists)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(RenderSettings)}


@dataclass(frozen=True)
class ExecutionConfig:
    """How a run executes: which Blender, how many workers and threads, timeouts, logs, recycling. None of it
    changes a file: the same render through another pool, cluster or machine gives the same files."""

    executable: Path | None = None
    """An installed Blender executable (3.4+) to run the workers with. Default: the `bpy` module in this
    Python environment."""
    timeout: float = 600.0
    """Seconds a worker may take for one step (start, scene load, one frame) before it is killed. -1: no
    limit."""
    log_dir: Path = Path("logs")
    """Folder for one log file per Blender worker."""
    allow_skips: bool = False
    """Resume: the same as the command's --allow-skips (kept for VisionSim's command lines)."""
    jobs: int = 1
    """Number of warm Blender workers rendering in parallel."""
    threads: int | None = None
    """Cycles CPU threads per worker. Default: the CPUs this process may use (its affinity, cgroup quota and
    SLURM_CPUS_PER_TASK) divided among the workers, at least 2 (one render thread wastes about half its CPU
    in Cycles)."""
    max_sequences_per_worker: int = 0
    """Restart a worker after this many sequences (0: never), to bound Blender's memory growth."""
    max_worker_memory: float = 0.0
    """Restart a worker between sequences once its resident memory passes this many GiB (0: never)."""

    def threads_for(self, jobs: int) -> int:
        """Render threads per worker: the user's value, else the cores split evenly among `jobs` workers but
        never fewer than 2 on a machine with 2 cores or more.

        Cycles on one render thread has a second thread busy-wait for it (strace: 262,404 `sched_yield`
        calls for two 256x256 frames against 10,649 with two threads): 1.85x the CPU-seconds for the same
        frames on bpy 5.0.1, a third of it system time. Two workers of one thread each on two cores so run
        at about 0.6x the speed of one worker; two workers of two threads each share the cores at the speed
        of one (BENCHMARKS.md, "Threads per worker")."""
        if self.threads is not None:
            return self.threads
        from camsim.cpus import available_cpus

        cores = available_cpus()
        return max(min(2, cores), cores // max(1, jobs))


def _check_cameras(config: RenderConfig) -> None:
    """A rig's camera names: `all` alone, no repeats, each usable as a folder name (camsim.rig)."""
    from camsim.rig import folder_problem  # imported here to keep this module light

    names = config.cameras
    if "all" in names and len(names) > 1:
        raise ConfigError("--render-config.cameras all stands alone (it is every camera of the scene)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"--render-config.cameras names {', '.join(repeated)} more than once")
    for name in names:
        why = folder_problem(name)
        if why:
            raise ConfigError(f"--render-config.cameras {name!r}: {why}")
    if names and config.unbind_camera:
        raise ConfigError("--render-config.unbind-camera frees one camera; it cannot go with a rig (cameras)")


@dataclass(frozen=True)
class RenderConfig(ExecutionConfig, RenderSettings):
    """How each frame is rendered, which ground truth is written beside it, and how the run executes
    (`--render-config.*`: VisionSim's flags, kept as they are). Inside, `settings` and `execution` part them."""

    def validate(self) -> RenderConfig:
        """Check ranges and combinations; raise ConfigError with the flag name."""

        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"--render-config.{name.replace('_', '-')} {why}")

        for name in ("height", "width"):
            v = getattr(self, name)
            if v is not None and not 1 <= v <= 65536:
                raise bad(name, f"must be between 1 and 65536, got {v}")
        if not (math.isfinite(self.keyframe_multiplier) and self.keyframe_multiplier > 0):
            raise bad("keyframe_multiplier", f"must be a positive number, got {self.keyframe_multiplier}")
        if not 1 / 900 <= self.keyframe_multiplier <= 900:  # Blender's time remapping: old/new in 1..900
            raise bad("keyframe_multiplier", f"must be between 1/900 and 900, got {self.keyframe_multiplier}")
        if not (self.timeout == -1 or (math.isfinite(self.timeout) and self.timeout > 0)):
            raise bad("timeout", f"must be positive seconds or -1, got {self.timeout}")
        if not 0 <= self.adaptive_threshold < 1:
            raise bad("adaptive_threshold", f"must be in [0, 1), got {self.adaptive_threshold}")
        if self.max_samples < 1:
            raise bad("max_samples", f"must be at least 1, got {self.max_samples}")
        if self.jobs < 1:
            raise bad("jobs", f"must be at least 1, got {self.jobs}")
        if self.threads is not None and self.threads < 1:
            raise bad("threads", f"must be at least 1, got {self.threads}")
        if self.max_sequences_per_worker < 0:
            raise bad("max_sequences_per_worker", "must be 0 or more")
        if self.max_worker_memory < 0:
            raise bad("max_worker_memory", "must be 0 or more")
        if self.flows and self.use_motion_blur:
            raise ConfigError(
                "flows need motion blur off: drop --render-config.use-motion-blur or pass "
                "--render-config.no-flows"
            )
        if self.scene_flows and self.use_motion_blur:
            raise ConfigError(
                "scene flows need motion blur off: drop --render-config.use-motion-blur or pass "
                "--render-config.no-scene-flows"
            )
        _check_cameras(self)
        from camsim.lens_render import settings_problem  # imported here to keep this module light

        lens_problem = settings_problem(self)
        if lens_problem:
            raise ConfigError(lens_problem)
        if self.semantics and not self.segmentations:
            raise ConfigError(
                "semantic maps are made from the segmentation: drop --render-config.no-segmentations or "
                "--render-config.semantics"
            )
        if self.amodal_masks and not (self.annotations and self.segmentations):
            raise ConfigError(
                "amodal masks come with the per-object annotations: drop --render-config.amodal-masks or pass "
                "--render-config.annotations (and keep the segmentation)"
            )
        if self.file_format == "JPEG" and self.bit_depth != 8:
            raise bad("bit_depth", "must be 8 for JPEG frames")
        from camsim.encoding import codec_problem, flow_grid_problem  # imported here: this module stays light

        why = codec_problem(self.exr_codec)
        if why:
            raise bad("exr_codec", why)
        why = flow_grid_problem(self.flow_grid)
        if why:
            raise bad("flow_grid", why)
        if self.executable is not None and not (
            self.executable.is_file() and os.access(self.executable, os.X_OK)
        ):
            raise bad("executable", f"is not an executable file: {self.executable}")
        return self

    @property
    def settings(self) -> RenderSettings:
        """What changes the files (jobs carry this)."""
        return RenderSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(RenderSettings)})

    @property
    def execution(self) -> ExecutionConfig:
        """How the run executes (runners and workers use this)."""
        return ExecutionConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ExecutionConfig)})

    def replace(self, **changes: object) -> RenderConfig:
        return dataclasses.replace(self, **changes)

    def render_settings(self) -> dict[str, object]:
        """The `render` block of transforms.json: `settings.to_json()`."""
        return self.settings.to_json()

    def to_json(self) -> dict[str, object]:
        """Every field (paths as strings), settings and execution."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}
