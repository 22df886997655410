"""Stack files and stack names a user, a pull request or a broken editor may hand the
pipeline: each is refused in one line, quickly, with no file changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.project import Project
from pipeline.stacks.config import load_stack_config
from pipeline.stacks.image import ImageSetting
from pipeline.stacks.stackfile import read_image, write_image
from tests.pipeline.hostile import (
    DIGEST,
    REPOSITORY,
    STAGING,
    assert_refused,
    cli,
    make_project,
    snapshot,
)

OTHER = "sha256:" + "fedcba9876543210" * 4


@pytest.mark.parametrize("name", ["staging\n", "staging\r", "stag\ning", "../staging", ""])
def test_a_stack_name_with_a_line_break_or_a_path_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="invalid stack name"):
        Project(Path("/nonexistent")).stack_file(name)


def test_set_image_refuses_a_stack_name_with_a_newline_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project(tmp_path / "p")
    before = snapshot(root)
    result = cli(capsys, "--project-dir", str(root), "set-image", "staging\n", DIGEST)
    assert_refused(result, "invalid stack name 'staging\\n'")
    assert snapshot(root) == before


def _laughs(levels: int = 9) -> str:
    """A 'billion laughs': each level an alias list nine times the one before (9**levels)."""
    lines = [
        "config:",
        '  x:l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
    ]
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"  x:l{level}: &l{level} [{refs}]")
    lines.append(f"  cv-platform:bomb: *l{levels - 1}")
    return STAGING + "\n".join(lines[1:]) + "\n"


BOMB = _laughs()


@pytest.mark.parametrize(
    "argv",
    [
        ["set-image", "bomb", DIGEST, "--dry-run"],
        ["render", "bomb", "--out", "{tmp}/out"],
        ["promote", "--from", "bomb", "--to", "staging", "--dry-run"],
    ],
    ids=["set-image", "render", "promote"],
)
def test_a_billion_laughs_stack_file_is_refused_before_it_expands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    root = make_project(tmp_path / "p", {"staging": STAGING, "bomb": BOMB})
    before = snapshot(root)
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    result = cli(capsys, "--project-dir", str(root), *args)
    assert_refused(result, "YAML aliases expand to more than 100,000 values")
    assert snapshot(root) == before
    assert not (tmp_path / "out").exists()


def test_the_project_file_is_bounded_too(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    (root / "Pulumi.yaml").write_text(
        (root / "Pulumi.yaml").read_text() + "\n" + "\n".join(BOMB.splitlines()[7:]) + "\n"
    )
    with pytest.raises(ConfigError, match="expand to more than"):
        load_stack_config(Project(root), "staging")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  x:loop: &loop [*loop]\n", "refers to the value that contains it"),
        ("  x:deep: " + "[" * 70 + "]" * 70 + "\n", "nested more than 64 levels deep"),
        ("  x:big: " + "y" * (1 << 20) + "\n", "more than a Pulumi YAML file can"),
        ("  x:bad: [unclosed\n", "malformed YAML"),
    ],
    ids=["recursive", "deep", "huge", "malformed"],
)
def test_hostile_yaml_shapes_are_one_line_config_errors(
    tmp_path: Path, extra: str, message: str
) -> None:
    root = make_project(tmp_path / "p", {"staging": STAGING + extra})
    with pytest.raises(ConfigError, match=message) as caught:
        load_stack_config(Project(root), "staging")
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match=message):
        read_image(root / "Pulumi.staging.yaml")


ANCHORED = STAGING.replace("  cv-platform:image:\n", "  cv-platform:image: &img\n") + (
    "  x:copy: *img\n"
)
ALIASED = (
    "config:\n  x:base: &img\n    repository: "
    + REPOSITORY
    + "\n    tag: v1\n  cv-platform:environment: staging\n  cv-platform:image: *img\n"
)
FIELD_ALIAS = STAGING.replace("    tag: v1\n", "    tag: &t v1\n") + "  x:tag: *t\n"


@pytest.mark.parametrize(
    ("text", "how"),
    [
        (ALIASED, "is a YAML alias of a value written elsewhere"),
        (ANCHORED, "shares a YAML anchor with other keys"),
        (FIELD_ALIAS, "shares a YAML anchor with other keys"),
    ],
    ids=["image-is-alias", "image-is-anchored", "field-is-anchored"],
)
def test_an_image_written_through_yaml_aliases_is_refused_not_edited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, how: str
) -> None:
    root = make_project(tmp_path / "p", {"staging": text})
    before = snapshot(root)
    with pytest.raises(ConfigError, match=how):
        write_image(root / "Pulumi.staging.yaml", ImageSetting(REPOSITORY, "v2", OTHER))
    result = cli(capsys, "--project-dir", str(root), "set-image", "staging", OTHER, "--dry-run")
    assert_refused(result, how)
    assert snapshot(root) == before


def test_a_byte_order_mark_is_read_past_and_kept(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", {"staging": ("\ufeff" + STAGING).encode()})
    path = root / "Pulumi.staging.yaml"
    assert read_image(path) == ImageSetting(REPOSITORY, "v1", DIGEST)
    assert load_stack_config(Project(root), "staging").get("environment") == "staging"
    edit = write_image(path, ImageSetting(REPOSITORY, "v2", OTHER))
    assert edit.written
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.decode("utf-8") == "\ufeff" + STAGING.replace("v1", "v2").replace(DIGEST, OTHER)
