"""`python -m pipeline set-image` end to end: a temp copy of the project, the real
registry, the real CLI. Every failure is exit 1, one stderr line, and no file changed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from pipeline.stacks.edit import unified_diff
from pipeline.stacks.image import ImageSetting
from pipeline.stacks.stackfile import read_image
from tests.pipeline.fake_registry import Script, fake_registry
from tests.registry_fixture import OCI_MANIFEST, PushedImages

pytestmark = pytest.mark.registry

PREFIX = "python -m pipeline set-image: error: "
ROOT = Path(__file__).resolve().parents[2]


def _stack_text(environment: str, repository: str, tag: str, digest: str) -> str:
    return textwrap.dedent(
        f"""\
        secretsprovider: passphrase
        encryptedkey: v1:Zm9vYmFyYmF6cXV4==
        encryptionsalt: v1:c2FsdA==:v1:Qk5Q+Pn3sGa4k7aT:kJ6WmnVbJ1mN0Qf1A2xwRw==
        # {environment}: written by pipeline set-image / promote.
        config:
          cv-platform:environment: {environment}
          cv-platform:kubeContext: kind-cv-platform
          # The image (tag = git sha, digest = what runs).
          cv-platform:image:
            repository: {repository}
            tag: {tag}
            digest: {digest}
          cv-platform:registryPassword:
            secure: v1:8hE3qv0pJ5kXw7xQ:b9uT0yXkzZ7dAGcW2lP6oZbT0lJmV1E=
          cv-platform:mutableTags:
            - latest
            - edge   # moves with main
        """
    )


@dataclass
class Project:
    root: Path
    images: PushedImages

    def stack(self, name: str) -> Path:
        return self.root / f"Pulumi.{name}.yaml"

    def snapshot(self) -> dict[str, bytes]:
        return {
            str(p.relative_to(self.root)): p.read_bytes()
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }


@pytest.fixture
def project(
    tmp_path: Path,
    registry_images: PushedImages,
    monkeypatch: pytest.MonkeyPatch,
) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
    name, v1 = registry_images.name, registry_images.v1.digest
    (root / "Pulumi.staging.yaml").write_text(_stack_text("staging", name, "v1", v1))
    (root / "Pulumi.prod.yaml").write_text(_stack_text("prod", name, "v1", v1))
    # A stack that is prod by its settings, not by its name.
    (root / "Pulumi.live.yaml").write_text(_stack_text("prod", name, "v1", v1))
    docker = registry_images.server.docker_config(tmp_path / "docker")
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    monkeypatch.delenv("PIPELINE_REGISTRY_TIMEOUT", raising=False)
    monkeypatch.delenv("PIPELINE_REGISTRY_RETRIES", raising=False)
    return Project(root, registry_images)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def set_image(project: Project, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    def run(*args: str) -> Result:
        code = main(["--project-dir", str(project.root), "set-image", *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def _assert_refused(result: Result, fragment: str) -> None:
    assert result.code == 1, result
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith(PREFIX)
    assert fragment in lines[0]


# -- what it does ------------------------------------------------------------


def test_tag_is_resolved_and_only_the_image_lines_change(
    project: Project, set_image: Callable[..., Result]
) -> None:
    images = project.images
    before = project.stack("staging").read_text()
    result = set_image("staging", f"{images.name}:v2")
    assert result.code == 0, result.err
    assert result.out == (
        f"staging: {images.name}:v1@{images.v1.digest} -> {images.name}:v2@{images.v2.digest}\n"
    )
    after = project.stack("staging").read_text()
    changed = set(before.splitlines()) ^ set(after.splitlines())
    assert changed == {
        "    tag: v1",
        "    tag: v2",
        f"    digest: {images.v1.digest}",
        f"    digest: {images.v2.digest}",
    }


def test_bare_tag_uses_the_stack_repository(
    project: Project, set_image: Callable[..., Result]
) -> None:
    assert set_image("staging", "v2").code == 0
    images = project.images
    assert read_image(project.stack("staging")) == ImageSetting(images.name, "v2", images.v2.digest)


def test_multi_arch_tag_pins_the_index_digest(
    project: Project, set_image: Callable[..., Result]
) -> None:
    assert set_image("staging", "multi").code == 0
    assert read_image(project.stack("staging")).digest == project.images.multi.digest


def test_digest_only_reference_drops_the_tag(
    project: Project, set_image: Callable[..., Result]
) -> None:
    images = project.images
    assert set_image("staging", f"{images.name}@{images.v2.digest}").code == 0
    assert read_image(project.stack("staging")) == ImageSetting(images.name, None, images.v2.digest)
    assert set_image("staging", images.v1.digest).code == 0  # a bare digest
    assert read_image(project.stack("staging")).digest == images.v1.digest


def test_tag_and_matching_digest_is_accepted(
    project: Project, set_image: Callable[..., Result]
) -> None:
    images = project.images
    assert set_image("staging", f"{images.name}:v2@{images.v2.digest}").code == 0
    assert read_image(project.stack("staging")) == ImageSetting(images.name, "v2", images.v2.digest)


def test_same_image_again_changes_nothing(
    project: Project, set_image: Callable[..., Result]
) -> None:
    before = project.snapshot()
    result = set_image("staging", "v1")
    assert result.code == 0
    assert "nothing to change" in result.out
    assert project.snapshot() == before


def test_dry_run_prints_the_exact_diff_and_writes_nothing(
    project: Project, set_image: Callable[..., Result]
) -> None:
    before = project.snapshot()
    original = project.stack("staging").read_text()
    dry = set_image("staging", "v2", "--dry-run")
    assert dry.code == 0
    assert project.snapshot() == before
    assert dry.out.endswith("(dry run: nothing written)\n")
    assert set_image("staging", "v2").code == 0
    real_diff = unified_diff(
        project.stack("staging"), original, project.stack("staging").read_text()
    )
    assert dry.out.startswith(real_diff)
    assert real_diff.startswith("--- a/Pulumi.staging.yaml\n")


def test_mutable_tag_is_allowed_outside_prod_with_allow_mutable(
    project: Project, set_image: Callable[..., Result]
) -> None:
    result = set_image("staging", "latest", "--allow-mutable")
    assert result.code == 0, result.err
    assert read_image(project.stack("staging")).digest == project.images.v2.digest


def test_compare_and_swap_writes_when_the_digest_matches(
    project: Project, set_image: Callable[..., Result]
) -> None:
    result = set_image("staging", "v2", "--expect-digest", project.images.v1.digest)
    assert result.code == 0, result.err
    assert read_image(project.stack("staging")).digest == project.images.v2.digest


def test_prod_accepts_an_immutable_tag(project: Project, set_image: Callable[..., Result]) -> None:
    assert set_image("prod", "v2").code == 0


# -- refusals and errors: exit 1, one line, nothing changed -------------------

HEX = "ab" * 32


def _refusals(project: Project) -> dict[str, tuple[list[str], str]]:
    images = project.images
    return {
        "unknown stack": (["qa", "v2"], "unknown stack 'qa': no Pulumi.qa.yaml"),
        "invalid grammar": (["staging", f"{images.name}:-bad"], "invalid tag '-bad'"),
        "uppercase repository": (["staging", "R.io/Cv/Model:v1"], "must be lowercase"),
        "wrong digest length": (
            ["staging", f"{images.name}@sha256:abc"],
            "digest sha256:abc has 3 hex digits; sha256 needs 64",
        ),
        "unknown tag": (["staging", "v404"], f"tag v404 not found in {images.name}"),
        "unknown digest": (
            ["staging", f"sha256:{HEX}"],
            f"digest sha256:{HEX} not found in {images.name}",
        ),
        "tag moved away from digest": (
            ["staging", f"v2@{images.v1.digest}"],
            f"tag v2 of {images.name} now points to {images.v2.digest}, not {images.v1.digest}",
        ),
        "mutable tag": (["staging", "latest"], "tag 'latest' is mutable"),
        "second mutable tag": (["staging", "edge"], "--allow-mutable"),
        "prod mutable tag": (
            ["prod", "latest", "--allow-mutable"],
            "--allow-mutable never applies to prod",
        ),
        "prod by environment": (["live", "latest", "--allow-mutable"], "live is a prod stack"),
        "compare-and-swap mismatch": (
            ["staging", "v2", "--expect-digest", images.v2.digest],
            f"expected digest {images.v2.digest} but the stack has {images.v1.digest}",
        ),
        "bad expect digest": (["staging", "v2", "--expect-digest", "sha256:12"], "2 hex digits"),
        "dry run still checks compare-and-swap": (
            ["staging", "v2", "--dry-run", "--expect-digest", f"sha256:{HEX}"],
            "expected digest",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "unknown stack",
        "invalid grammar",
        "uppercase repository",
        "wrong digest length",
        "unknown tag",
        "unknown digest",
        "tag moved away from digest",
        "mutable tag",
        "second mutable tag",
        "prod mutable tag",
        "prod by environment",
        "compare-and-swap mismatch",
        "bad expect digest",
        "dry run still checks compare-and-swap",
    ],
)
def test_refusals_exit_1_with_one_line_and_change_nothing(
    case: str, project: Project, set_image: Callable[..., Result]
) -> None:
    args, fragment = _refusals(project)[case]
    before = project.snapshot()
    _assert_refused(set_image(*args), fragment)
    assert project.snapshot() == before


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("config:\n  cv-platform:image: {repository: [\n", "Pulumi.staging.yaml:3: malformed YAML"),
        ("secretsprovider: passphrase\n", "Pulumi.staging.yaml: no `config:` mapping"),
    ],
)
def test_malformed_stack_file(
    text: str, fragment: str, project: Project, set_image: Callable[..., Result]
) -> None:
    project.stack("staging").write_text(text)
    before = project.snapshot()
    _assert_refused(set_image("staging", "v2"), fragment)
    assert project.snapshot() == before


def test_wrong_registry_password_is_401(
    project: Project,
    set_image: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = project.images.server
    bad = server.docker_config(tmp_path / "bad-docker", password="not-the-password")
    monkeypatch.setenv("DOCKER_CONFIG", str(bad))
    before = project.snapshot()
    result = set_image("staging", "v2")
    _assert_refused(
        result,
        f"authentication failed for {server.host}: check credentials in $DOCKER_CONFIG/config.json",
    )
    assert "not-the-password" not in result.err
    assert project.snapshot() == before


@pytest.mark.parametrize(
    ("script", "env", "fragment"),
    [
        (
            Script(fail_status=500, fail_first=99),
            {"PIPELINE_REGISTRY_RETRIES": "1"},
            "answered 500",
        ),
        (
            Script(fail_status=503, fail_first=99, retry_after="0"),
            {"PIPELINE_REGISTRY_RETRIES": "2"},
            "answered 503 Service Unavailable",
        ),
        (
            Script(delay=1.0),
            {"PIPELINE_REGISTRY_TIMEOUT": "0.2", "PIPELINE_REGISTRY_RETRIES": "0"},
            "did not answer within 0.2 s",
        ),
        (Script(fail_status=404, fail_first=99), {}, "tag v1 not found in 127.0.0.1:"),
    ],
    ids=["500", "503", "timeout", "404"],
)
def test_registry_failures(
    script: Script,
    env: dict[str, str],
    fragment: str,
    project: Project,
    set_image: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    before = project.snapshot()
    with fake_registry(script) as host:
        _assert_refused(set_image("staging", f"{host}/cv/model:v1"), fragment)
    assert project.snapshot() == before


def test_refused_connection(project: Project, set_image: Callable[..., Result]) -> None:
    # Bound but not listening: refused, and no parallel test can take the port.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{holder.getsockname()[1]}"
        before = project.snapshot()
        _assert_refused(
            set_image("staging", f"{host}/cv/model:v1"),
            f"cannot reach registry {host} at http://{host}: connection refused",
        )
    assert project.snapshot() == before


# -- many writers at once (real processes, `python -m pipeline`) --------------


def _spawn(project: Project, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--project-dir", str(project.root), "set-image", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _tag_many(project: Project, count: int) -> list[str]:
    tags = [f"c{i:02d}" for i in range(count)]
    for tag in tags:
        project.images.server.put_manifest(
            project.images.repository, tag, project.images.v2.body, OCI_MANIFEST
        )
    return tags


@pytest.mark.slow
def test_twenty_concurrent_writers_serialise_and_lose_nothing(project: Project) -> None:
    tags = _tag_many(project, 20)
    processes = [_spawn(project, "staging", tag) for tag in tags]
    results = [(p.wait(timeout=60), *p.communicate()) for p in processes]
    assert all(code == 0 for code, _, _ in results), results
    # Each run printed the image it replaced: together they must form one chain
    # from the original to the final image, so every write saw the one before.
    moves = [out.strip().removeprefix("staging: ").split(" -> ") for _, out, _ in results]
    images = project.images
    start = f"{images.name}:v1@{images.v1.digest}"
    successor = dict((old, new) for old, new in moves)
    assert len(successor) == 20  # no two runs replaced the same image
    chain, current = [], start
    while current in successor:
        current = successor[current]
        chain.append(current)
    assert len(chain) == 20
    final = read_image(project.stack("staging"))
    assert str(final) == chain[-1]
    yaml.safe_load(project.stack("staging").read_text())


@pytest.mark.slow
def test_twenty_concurrent_compare_and_swaps_exactly_one_wins(project: Project) -> None:
    tags = _tag_many(project, 20)
    expect = project.images.v1.digest
    processes = [_spawn(project, "staging", tag, "--expect-digest", expect) for tag in tags]
    results = [(p.wait(timeout=60), *p.communicate()) for p in processes]
    winners = [r for r in results if r[0] == 0]
    losers = [r for r in results if r[0] != 0]
    assert len(winners) == 1, results
    for code, out, err in losers:
        assert code == 1
        assert out == ""
        assert err.count("\n") == 1
        assert f"expected digest {expect} but the stack has {project.images.v2.digest}" in err
    assert read_image(project.stack("staging")).digest == project.images.v2.digest


def test_cli_start_up_imports_nothing_heavy() -> None:
    # `python -m pipeline --help` must stay fast: commands import their
    # dependencies when they run, never when the CLI starts or prints help.
    probe = (
        "import contextlib, io, runpy, sys\n"
        "sys.argv = ['pipeline', '--help']\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    runpy.run_module('pipeline', run_name='__main__')\n"
        "heavy = ('pulumi', 'boto3', 'botocore', 'requests', 'yaml', 'matplotlib')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == ""
