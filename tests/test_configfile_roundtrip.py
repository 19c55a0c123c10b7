"""--config FILE / --print-config: a command's full configuration as YAML, read back to the same command;
flags on the command line override the file; a bad file is one line and exit code 2."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import tyro
import yaml
from clirun import exit_code
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from camsim.commands.create_datasets import CreateDatasets
from camsim.configfile import args_from_file, to_plain, to_yaml
from camsim.errors import UserInputError


@dataclass(frozen=True)
class Optics:
    focal: float = 35.0
    """Focal length."""
    lens: Literal["pinhole", "fisheye"] = "pinhole"
    """Lens model."""
    vignette: bool = True
    """Darken the corners."""
    cache: Path | None = None
    """A cache folder."""


@dataclass(frozen=True)
class Noise:
    sigma: float = 0.1
    """Noise level."""
    bits: Literal[8, 16] = 8
    """Bits per sample."""


@dataclass
class Command:
    """A command like create-datasets: required paths, nested configs (one without flag prefixes)."""

    inputs: Path
    """Input folder."""
    outputs: Path
    """Output folder."""
    optics: Optics = field(default_factory=Optics)
    """Optics."""
    noise: tyro.conf.OmitArgPrefixes[Noise] = field(default_factory=Noise)
    """Noise (its flags have no prefix)."""
    count: int = 1
    """How many."""
    frames: int | None = None
    """Frames."""
    motion_blur: bool | None = None
    """Tri-state."""
    dry_run: bool = False
    """Plan only."""
    splits: tuple[float, float, float] | None = None
    """Fractions."""
    stages: tuple[Literal["spad", "rgb", "events"], ...] = ()
    """Stages."""
    weights: tuple[float, ...] = (1.0, 0.5)
    """Weights."""
    name: str | None = None
    """A name."""
    config: Path | None = None
    """The file."""
    print_config: bool = False
    """Print it."""


def _read_back(text: str, folder: Path, cls: type = Command, extra: tuple[str, ...] = ()) -> object:
    path = folder / "config.yaml"
    path.write_text(text)
    return tyro.cli(cls, args=[*args_from_file(path, cls), *extra])


finite = st.floats(allow_nan=False, width=64)
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12).filter(
    lambda s: s != "None"  # tyro spells None as the string "None": `name: None` means no name
)


@st.composite
def commands(draw: st.DrawFn, folder: Path) -> Command:
    return Command(
        inputs=folder / draw(st.sampled_from(["scenes", "a b", "é"])),
        outputs=Path("/abs") / draw(st.sampled_from(["out", "x/y"])),
        optics=Optics(
            focal=draw(finite),
            lens=draw(st.sampled_from(["pinhole", "fisheye"])),
            vignette=draw(st.booleans()),
            cache=draw(st.none() | st.just(folder / "cache")),
        ),
        noise=Noise(sigma=draw(finite), bits=draw(st.sampled_from([8, 16]))),
        count=draw(st.integers(-(2**40), 2**40)),
        frames=draw(st.none() | st.integers(-5, 10**6)),
        motion_blur=draw(st.none() | st.booleans()),
        dry_run=draw(st.booleans()),
        splits=draw(st.none() | st.tuples(finite, finite, finite)),
        stages=tuple(draw(st.lists(st.sampled_from(["spad", "rgb", "events"]), max_size=4))),
        weights=tuple(draw(st.lists(finite, max_size=4))),
        name=draw(st.none() | names),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_configuration_reads_back_to_the_same_command(tmp_path: Path, data: st.DataObject) -> None:
    command = data.draw(commands(tmp_path))
    text = to_yaml(command)
    assert _read_back(text, tmp_path) == command
    assert yaml.safe_load(text) == json.loads(json.dumps(to_plain(command)))  # the manifest's form


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    width=st.none() | st.integers(1, 65536),
    flux=st.floats(1e-3, 1e12),
    emulate=st.lists(st.sampled_from(["spad", "rgb", "events", "imu"]), unique=True),
    depths=st.booleans(),
    motion_blur=st.none() | st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_create_datasets_configuration_reads_back_to_the_same_command(
    tmp_path: Path, width, flux, emulate, depths, motion_blur, seed
) -> None:
    base = tyro.cli(CreateDatasets, args=["--scenes-dir", str(tmp_path / "s"), "--datasets-dir", "/data/d"])
    command = dataclasses.replace(
        base,
        render_config=dataclasses.replace(
            base.render_config,
            width=width,
            depths=depths,
            use_motion_blur=motion_blur,
            log_dir=tmp_path / "logs",
        ),
        spad=dataclasses.replace(base.spad, flux=flux),
        emulate=tuple(emulate),
        seed=seed,
    )
    text = to_yaml(command)
    assert "print_config" not in yaml.safe_load(text) and "config" not in yaml.safe_load(text)
    assert _read_back(text, tmp_path, CreateDatasets) == command


def test_relative_paths_are_relative_to_the_files_folder(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    text = "inputs: scenes\noutputs: /abs/out\noptics: {cache: ../cache}\n"
    command = _read_back(text, folder)
    assert command.inputs == folder / "scenes"
    assert command.outputs == Path("/abs/out")
    assert command.optics.cache == folder / "../cache"


def test_flags_after_the_file_override_it(tmp_path: Path) -> None:
    text = to_yaml(Command(inputs=tmp_path / "a", outputs=tmp_path / "b", count=3, optics=Optics(focal=50.0)))
    command = _read_back(text, tmp_path, extra=("--count", "7", "--optics.no-vignette", "--sigma", "0.5"))
    assert (command.count, command.optics.vignette, command.noise.sigma) == (7, False, 0.5)
    assert command.optics.focal == 50.0  # what the flags leave alone comes from the file


def test_groups_and_keys_may_be_written_with_hyphens(tmp_path: Path) -> None:
    command = _read_back("inputs: /a\noutputs: /b\nmotion-blur: true\noptics: {vignette: false}\n", tmp_path)
    assert command.motion_blur is True and command.optics.vignette is False


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("optics: {focl: 3}\n", ["optics.focl", "did you mean optics.focal"]),
        ("focal: 3\n", ["focal", "did you mean optics.focal"]),
        ("optics: 3\n", ["optics", "mapping"]),
        ("count: [1, 2]\n", ["count", "one value"]),
        ("dry_run: 3\n", ["dry_run", "true or false"]),
        ("config: other.yaml\n", ["config", "inside a config file"]),
        ("inputs: null\n", ["inputs", "null"]),
    ],
)
def test_a_bad_key_or_value_names_the_key_and_the_file(tmp_path: Path, text: str, words: list[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserInputError) as info:
        args_from_file(path, Command)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    for w in words:
        assert w in message


# -------------------------------------------------------------------------------- the command line


def _camsim(*argv: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = exit_code(*argv)
    return code, out.getvalue(), err.getvalue()


def test_print_config_then_config_gives_the_same_configuration(tmp_path: Path) -> None:
    code, first, err = _camsim(
        "create-datasets", "--scenes-dir", tmp_path / "scenes", "--datasets-dir", tmp_path / "data",
        "--render-config.width", "320", "--render-config.log-dir", tmp_path / "logs",
        "--emulate", "spad", "events", "--spad.flux", "2e6", "--print-config",
    )  # fmt: skip
    assert code == 0, err
    assert yaml.safe_load(first)["render_config"]["width"] == 320
    (tmp_path / "dataset.yaml").write_text(first)
    code, second, err = _camsim("create-datasets", "--config", tmp_path / "dataset.yaml", "--print-config")
    assert code == 0, err
    assert yaml.safe_load(second) == yaml.safe_load(first)


def test_flags_on_the_command_line_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "dataset.yaml"
    path.write_text(
        "scenes_dir: scenes\ndatasets_dir: data\nrender_config: {width: 320, depths: false}\nseed: 4\n"
    )
    code, out, err = _camsim(
        "create-datasets", f"--config={path}", "--render-config.width", "64", "--print-config"
    )
    assert code == 0, err
    config = yaml.safe_load(out)
    assert config["render_config"]["width"] == 64  # the flag
    assert config["render_config"]["depths"] is False and config["seed"] == 4  # the file
    assert config["scenes_dir"] == str(tmp_path / "scenes")  # relative to the file's folder


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "scenes_dir: s\nrender_config:\n  widht: 3\n",
            ["render_config.widht", "did you mean render_config.width"],
        ),
        ("scenes_dir: [s\n", ["not valid YAML", "line 2"]),
        ("- scenes_dir\n- s\n", ["mapping"]),
    ],
)
def test_a_bad_config_file_is_one_line_and_exit_code_2(tmp_path: Path, text: str, words: list[str]) -> None:
    path = tmp_path / "dataset.yaml"
    path.write_text(text)
    code, _, err = _camsim("create-datasets", "--config", path, "--datasets-dir", tmp_path / "d")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("camsim: error:") and str(path) in lines[0], err
    for w in words:
        assert w in lines[0]
