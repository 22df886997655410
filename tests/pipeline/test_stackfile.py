"""The stack file editor: exact edits, byte-exact Pulumi keys, CAS, locking, crashes."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from pipeline.errors import ConfigError, PipelineError
from pipeline.stacks.edit import render_image_edit
from pipeline.stacks.image import ImageSetting
from pipeline.stacks.stackfile import NO_DIGEST, read_image, write_image

OLD = "sha256:" + "1" * 64
NEW = "sha256:" + "2" * 64
REPO = "registry.example.internal/cv-platform/model-server"

STACK = textwrap.dedent(
    f"""\
    secretsprovider: passphrase
    encryptedkey: v1:Zm9vYmFyYmF6cXV4==
    encryptionsalt: v1:c2FsdA==:v1:Qk5Q+Pn3sGa4k7aT:kJ6WmnVbJ1mN0Qf1A2xwRw==
    # Staging: the first environment every image reaches.
    config:
      cv-platform:environment: staging   # rules to apply
      # The image under test.
      cv-platform:image:
        repository: {REPO}  # CI pushes here
        tag: 9f3c2ab
        digest: {OLD}
      cv-platform:registryPassword:
        secure: v1:8hE3qv0pJ5kXw7xQ:b9uT0yXkzZ7dAGcW2lP6oZbT0lJmV1E=
      cv-platform:allowedIngressNamespaces:
        - ci   # Jenkins agents
      cv-platform:cpuLimit: "1"
    """
)


@pytest.fixture
def stack_file(tmp_path: Path) -> Path:
    path = tmp_path / "Pulumi.staging.yaml"
    path.write_text(STACK)
    return path


def _changed_lines(before: str, after: str) -> set[str]:
    a, b = before.splitlines(), after.splitlines()
    return (set(a) ^ set(b)) - {""}


def test_read_image_returns_the_three_fields(stack_file: Path) -> None:
    assert read_image(stack_file) == ImageSetting(REPO, "9f3c2ab", OLD)


def test_edit_changes_only_the_image_lines(stack_file: Path) -> None:
    edit = write_image(stack_file, ImageSetting(REPO, "4e1d07c", NEW))
    after = stack_file.read_text()
    assert edit.written
    assert _changed_lines(STACK, after) == {
        "    tag: 9f3c2ab",
        "    tag: 4e1d07c",
        f"    digest: {OLD}",
        f"    digest: {NEW}",
    }
    assert edit.old == ImageSetting(REPO, "9f3c2ab", OLD)
    assert read_image(stack_file) == ImageSetting(REPO, "4e1d07c", NEW)


def test_pulumi_owned_keys_and_secure_values_stay_byte_exact(stack_file: Path) -> None:
    write_image(stack_file, ImageSetting(REPO, "4e1d07c", NEW))
    after = stack_file.read_text()
    for line in STACK.splitlines():
        if line.startswith(("secretsprovider", "encryptedkey", "encryptionsalt")) or (
            "secure:" in line
        ):
            assert line in after.splitlines()
    assert after.count("# ") == STACK.count("# ")


def test_the_diff_is_the_unified_diff_of_the_file(stack_file: Path) -> None:
    edit = write_image(stack_file, ImageSetting(REPO, None, NEW), dry_run=True)
    assert edit.diff.startswith("--- a/Pulumi.staging.yaml\n+++ b/Pulumi.staging.yaml\n")
    assert "-    tag: 9f3c2ab\n" in edit.diff
    assert f"+    digest: {NEW}\n" in edit.diff
    assert not edit.written
    assert stack_file.read_text() == STACK


def test_a_tag_that_yaml_would_read_as_a_number_is_quoted(stack_file: Path) -> None:
    write_image(stack_file, ImageSetting(REPO, "1234567", NEW))
    assert '    tag: "1234567"' in stack_file.read_text().splitlines()
    data = yaml.safe_load(stack_file.read_text())
    assert data["config"]["cv-platform:image"]["tag"] == "1234567"


def test_removing_the_tag_removes_its_line(stack_file: Path) -> None:
    write_image(stack_file, ImageSetting(REPO, None, NEW))
    assert "tag:" not in stack_file.read_text()
    assert read_image(stack_file) == ImageSetting(REPO, None, NEW)


@pytest.mark.parametrize(
    "variant",
    [
        "no image key",
        "null image",
        "flow image",
        "missing tag",
        "crlf line ends",
        "quoted values",
    ],
)
def test_other_layouts_are_edited_in_place(variant: str, tmp_path: Path) -> None:
    image_block = (
        f"  cv-platform:image:\n    repository: {REPO}  # CI pushes here\n"
        f"    tag: 9f3c2ab\n    digest: {OLD}\n"
    )
    text = STACK.replace("  # The image under test.\n", "")
    if variant == "no image key":
        text = text.replace(image_block, "")
    elif variant == "null image":
        text = text.replace(image_block, "  cv-platform:image:\n")
    elif variant == "flow image":
        text = text.replace(image_block, f"  cv-platform:image: {{repository: {REPO}}}\n")
    elif variant == "missing tag":
        text = text.replace("    tag: 9f3c2ab\n", "")
    elif variant == "crlf line ends":
        text = text.replace("\n", "\r\n")
    elif variant == "quoted values":
        text = text.replace(f"digest: {OLD}", f"digest: '{OLD}'").replace(
            "tag: 9f3c2ab", 'tag: "9f3c2ab"'
        )
    path = tmp_path / "Pulumi.staging.yaml"
    path.write_bytes(text.encode())
    new = ImageSetting(REPO, "4e1d07c", NEW)
    write_image(path, new)
    after = path.read_bytes().decode()
    assert read_image(path) == new
    before_data = yaml.safe_load(text)
    after_data = yaml.safe_load(after)
    after_data["config"].pop("cv-platform:image")
    before_data["config"].pop("cv-platform:image", None)
    assert after_data == before_data
    # Every line outside the image is still there, byte for byte.
    for line in text.splitlines(keepends=True):
        if "repository" in line or "tag:" in line or "digest" in line or "image" in line:
            continue
        assert line in after.splitlines(keepends=True)
    if variant == "quoted values":
        assert f"digest: '{NEW}'" in after
        assert 'tag: "4e1d07c"' in after


def test_compare_and_swap_mismatch_names_both_digests_and_writes_nothing(
    stack_file: Path,
) -> None:
    with pytest.raises(PipelineError) as caught:
        write_image(stack_file, ImageSetting(REPO, "x", NEW), expect_digest=NEW)
    assert f"expected digest {NEW} but the stack has {OLD}" in str(caught.value)
    assert stack_file.read_text() == STACK


def test_compare_and_swap_match_writes(stack_file: Path) -> None:
    edit = write_image(stack_file, ImageSetting(REPO, "x", NEW), expect_digest=OLD)
    assert edit.written
    assert read_image(stack_file).digest == NEW


def test_expecting_no_digest_refuses_a_stack_that_has_one(stack_file: Path) -> None:
    with pytest.raises(PipelineError) as caught:
        write_image(stack_file, ImageSetting(REPO, "x", NEW), expect_digest=NO_DIGEST)
    assert f"expected no digest but the stack has {OLD}" in str(caught.value)
    assert stack_file.read_text() == STACK


def test_expecting_no_digest_writes_the_first_one(stack_file: Path) -> None:
    unpinned = STACK.replace(f"    digest: {OLD}\n", "")
    stack_file.write_text(unpinned)
    with pytest.raises(PipelineError, match=f"expected digest {OLD} but the stack has no digest"):
        write_image(stack_file, ImageSetting(REPO, "x", NEW), expect_digest=OLD)
    assert stack_file.read_text() == unpinned
    assert write_image(stack_file, ImageSetting(REPO, "x", NEW), expect_digest=NO_DIGEST).written
    assert read_image(stack_file).digest == NEW


def test_unchanged_image_writes_nothing(stack_file: Path) -> None:
    before = stack_file.stat().st_mtime_ns
    edit = write_image(stack_file, ImageSetting(REPO, "9f3c2ab", OLD))
    assert not edit.written
    assert edit.diff == ""
    assert stack_file.stat().st_mtime_ns == before


def test_a_symlinked_stack_file_stays_a_symlink(stack_file: Path) -> None:
    link = stack_file.parent / "Pulumi.link.yaml"
    link.symlink_to(stack_file.name)
    write_image(link, ImageSetting(REPO, "x", NEW))
    assert link.is_symlink()
    assert read_image(stack_file).digest == NEW


def test_file_mode_is_kept(stack_file: Path) -> None:
    stack_file.chmod(0o640)
    write_image(stack_file, ImageSetting(REPO, "x", NEW))
    assert stack_file.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("config:\n  cv-platform:image: [\n", "Pulumi.staging.yaml:3: malformed YAML"),
        ("config:\n  a: 1\n   b: 2\n", "Pulumi.staging.yaml:3: malformed YAML"),
        ("secretsprovider: passphrase\n", "no `config:` mapping"),
        ("- a\n- b\n", "no `config:` mapping"),
        ("config: [1, 2]\n", "Pulumi.staging.yaml:1: `config:` must be a mapping"),
        ("config:\n  cv-platform:image: registry/x:v1\n", "cv-platform:image must be an object"),
        ("config:\n  a: 1\n  a: 2\n", "Pulumi.staging.yaml:3: duplicate key 'a'"),
        (
            "config:\n  cv-platform:image:\n    tag: [a]\n",
            "Pulumi.staging.yaml:3: cv-platform:image.tag must be a string",
        ),
    ],
)
def test_bad_stack_files_are_config_errors_and_stay_untouched(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "Pulumi.staging.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        write_image(path, ImageSetting(REPO, "x", NEW))
    assert message in str(caught.value)
    assert path.read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Pulumi.staging.yaml"]


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such stack file"):
        write_image(tmp_path / "Pulumi.nope.yaml", ImageSetting(REPO, "x", NEW))


@pytest.mark.parametrize("dry_run", [False, True], ids=["write", "dry run"])
def test_a_stack_path_that_is_not_a_file_is_one_config_error(tmp_path: Path, dry_run: bool) -> None:
    # Not an OSError's "[Errno 21] ..." with a path: the same words stackconfig uses.
    path = tmp_path / "Pulumi.staging.yaml"
    path.mkdir()
    where = re.escape(str(path))
    with pytest.raises(ConfigError, match=f"^(cannot read {where}: |{where} is not a file)"):
        write_image(path, ImageSetting(REPO, "x", NEW), dry_run=dry_run)
    with pytest.raises(ConfigError, match=f"^cannot read {where}: Is a directory$"):
        read_image(path)
    assert list(path.iterdir()) == []


def test_write_needs_repository_and_digest(stack_file: Path) -> None:
    with pytest.raises(ConfigError, match="needs a repository and a digest"):
        write_image(stack_file, ImageSetting(REPO, "v1", None))
    assert stack_file.read_text() == STACK


def test_render_is_pure_and_verifies_itself(stack_file: Path) -> None:
    old, new_text = render_image_edit(stack_file, STACK, ImageSetting(REPO, "v9", NEW))
    assert old.digest == OLD
    assert f"digest: {NEW}" in new_text
    assert stack_file.read_text() == STACK


# -- concurrency and crashes (real processes) --------------------------------

_WRITER = """
import sys
from pipeline.stacks.image import ImageSetting
from pipeline.stacks.stackfile import write_image
path, repo, a, b = sys.argv[1:5]
digests = [a, b]
i = 0
print("ready", flush=True)
while True:
    write_image(path, ImageSetting(repo, f"t{i % 2}", digests[i % 2]))
    i += 1
"""


_ONE_WRITE = """
import sys
from pipeline.stacks.image import ImageSetting
from pipeline.stacks.stackfile import write_image
path, repo, digest = sys.argv[1:4]
print("ready", flush=True)
write_image(path, ImageSetting(repo, "waited", digest))
"""


def _start_one_write(stack_file: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen(
        [sys.executable, "-c", _ONE_WRITE, str(stack_file), REPO, NEW],
        stdout=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    return process


def _hold_lock(path: Path) -> int:
    import fcntl

    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_a_writer_waits_while_another_holds_the_lock(stack_file: Path) -> None:
    fd = _hold_lock(stack_file)
    try:
        writer = _start_one_write(stack_file)
        time.sleep(0.5)  # far longer than one write takes once the module is imported
        assert writer.poll() is None, "the writer did not wait for the lock"
        assert stack_file.read_text() == STACK
    finally:
        os.close(fd)  # releases the lock
    assert writer.wait(timeout=30) == 0
    assert read_image(stack_file) == ImageSetting(REPO, "waited", NEW)


def test_a_writer_that_waited_on_a_replaced_file_edits_the_new_one(stack_file: Path) -> None:
    # The lock holder replaces the file (as a writer does) and only then lets go:
    # the waiting writer must edit that new file, not the old inode it locked.
    fd = _hold_lock(stack_file)
    try:
        writer = _start_one_write(stack_file)
        time.sleep(0.3)
        theirs = STACK.replace('cv-platform:cpuLimit: "1"', 'cv-platform:cpuLimit: "2"')
        replacement = stack_file.with_name("replacement.tmp")
        replacement.write_text(theirs)
        os.replace(replacement, stack_file)
    finally:
        os.close(fd)
    assert writer.wait(timeout=30) == 0
    after = stack_file.read_text()
    assert 'cv-platform:cpuLimit: "2"' in after  # their change survived
    assert read_image(stack_file) == ImageSetting(REPO, "waited", NEW)


def test_killing_a_writer_mid_write_leaves_the_old_or_the_new_file(stack_file: Path) -> None:
    expected = {
        render_image_edit(stack_file, STACK, ImageSetting(REPO, f"t{i}", d))[1].encode()
        for i, d in enumerate((OLD, NEW))
    } | {STACK.encode()}
    rng = random.Random(4)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    writes_seen = set()
    for _ in range(12):
        process = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(stack_file), REPO, OLD, NEW],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert process.stdout is not None
        assert process.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.005, 0.06))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        process.stdout.close()
        content = stack_file.read_bytes()
        assert content in expected
        writes_seen.add(content)
    assert len(writes_seen) >= 2  # the writer really was writing when killed
    # A later write cleans up any temp file a killed writer left behind.
    write_image(stack_file, ImageSetting(REPO, "final", NEW))
    assert sorted(p.name for p in stack_file.parent.iterdir()) == ["Pulumi.staging.yaml"]
