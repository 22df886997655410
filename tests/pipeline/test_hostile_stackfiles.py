"""Stack files and stack names a user, a pull request or a broken editor may hand the
pipeline: each is refused in one line, quickly, with no file changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.project import Project
from tests.pipeline.hostile import DIGEST, assert_refused, cli, make_project, snapshot


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
