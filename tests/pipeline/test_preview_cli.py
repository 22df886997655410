"""`python -m pipeline preview`: saved JSON, online through a fake pulumi, and bad input."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from pipeline.cli import build_parser, main
from pipeline.commands import preview
from pipeline.commands.adapters import Adapters
from pipeline.io.process import Completed

FIXTURES = Path(__file__).parent / "fixtures" / "preview"
OWN = ("replace.json", "deletes.json", "diagnostics.json", "secrets.json")
SECRET_VALUES = (
    "old-registry-pw-7Hq2",
    "new-registry-pw-9Zk4",
    "sig-wrapped-token-Lm55",
    "plain-db-pw-Qx81",
    "url-embedded-pw-Vb20",
    "config-plaintext-pw-Rt66",
    "diag-token-value-Pp03",
)
HEADING = re.compile(
    r"^### `(?P<stack>[^`]+)`: (?P<create>\d+) to create · (?P<update>\d+) to update · "
    r"(?P<replace>\d+) to replace · (?P<delete>\d+) to delete · (?P<same>\d+) unchanged",
    re.M,
)


def _counts(body: str) -> dict[str, int]:
    match = HEADING.search(body)
    assert match is not None, body[:500]
    return {k: int(v) for k, v in match.groupdict().items() if k != "stack"}


def _expected(path: Path) -> dict[str, int]:
    summary = json.loads(path.read_text(encoding="utf-8"))["changeSummary"]
    return {op: summary.get(op, 0) for op in ("create", "update", "replace", "delete", "same")}


def _run(
    project_root: Path, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    code = main(["--project-dir", str(project_root), "preview", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    "name",
    ["sample-preview-creates.json", "sample-preview-update.json", "sample-preview-deletes.json"],
)
def test_saved_real_preview_prints_its_change_summary(
    name: str, shared_fixtures: Path, project_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = shared_fixtures / "pulumi-preview" / name
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    code, out, _ = _run(project_root, capsys, "--preview-json", str(path), "--stack", "staging")
    assert code == 0
    assert HEADING.search(out)["stack"] == "staging"  # type: ignore[index]
    assert _counts(out) == _expected(path)
    # The samples come from a stack named dev: the comment says so rather than hide it.
    assert "> The saved preview's resources belong to stack `dev`, shown as `staging`." in out


@pytest.mark.parametrize("name", OWN)
def test_saved_own_preview_prints_its_change_summary(
    name: str, project_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = FIXTURES / name
    code, out, err = _run(project_root, capsys, "--preview-json", str(path), "--stack", "staging")
    assert _counts(out) == _expected(path)
    for value in SECRET_VALUES:
        assert value not in out
        assert value not in err
    # diagnostics.json has an error, secrets.json breaks the env rule: exit 1 after printing.
    assert code == (1 if name in ("diagnostics.json", "secrets.json") else 0)


def test_saved_preview_too_large_for_github_is_shortened_not_its_summary(
    tmp_path: Path, project_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.preview.comment import GITHUB_LIMIT
    from tests.pipeline.previewkit import huge_preview

    path = tmp_path / "huge.json"
    path.write_text(json.dumps(huge_preview(150, 40, 60, stack="staging")), encoding="utf-8")
    assert path.stat().st_size > 3 * GITHUB_LIMIT
    code, out, _ = _run(project_root, capsys, "--preview-json", str(path), "--stack", "staging")
    assert code == 0
    assert len(out) < GITHUB_LIMIT
    assert _counts(out) == _expected(path)
    assert "| `staging` | 0 | 150 | 0 | 0 | 4 | ok |" in out
    assert (
        len(re.findall(r"^\| `kubernetes:core/v1:ConfigMap` \| `settings-\d{4}` \|", out, re.M))
        == 150
    )
    note = re.search(
        r"Shortened to stay under GitHub's 65,536-character limit: (\d+) detail section\(s\) "
        r"truncated, (\d+) omitted\. The counts and tables above are complete",
        out,
    )
    assert note is not None
    assert int(note[1]) + int(note[2]) > 0


def test_stack_defaults_to_the_one_in_the_urns(
    project_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(project_root, capsys, "--preview-json", str(FIXTURES / "replace.json"))
    assert code == 0
    assert "### `prod`:" in out
    assert "**prod** (production): 1 to replace, 0 to delete" in out
    assert "belong to stack" not in out


class FakePulumi:
    """Answers `pulumi preview` and `pulumi config` like the CLI, from fixture files."""

    def __init__(self, previews: dict[str, str], config: dict[str, dict[str, object]]) -> None:
        self.previews = previews
        self.config = config
        self.calls: list[list[str]] = []

    def __call__(self, cmd: Sequence[str], cwd: str | None = None, **options: object) -> Completed:
        self.calls.append(list(cmd))
        stack = cmd[cmd.index("--stack") + 1]
        if cmd[1] == "config":
            return Completed(0, json.dumps(self.config.get(stack, {})), "")
        if stack not in self.previews:
            return Completed(255, "", f"error: no stack named '{stack}' found\n")
        return Completed(0, (FIXTURES / self.previews[stack]).read_text(), "")


def _online(project_root: Path, fake: FakePulumi, *argv: str) -> int:
    args = build_parser().parse_args(["--project-dir", str(project_root), "preview", *argv])
    return preview.run(args, Adapters(run=fake))


def test_online_previews_every_stack_and_scrubs_secret_config(
    project_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakePulumi(
        {"prod": "replace.json", "staging": "secrets.json"},
        {
            "staging": {
                "cv-platform:registryPassword": {
                    "value": "config-plaintext-pw-Rt66",
                    "secret": True,
                },
                "cv-platform:replicas": {"value": "1", "secret": False},
                "cv-platform:ciToken": {"value": "Wq58-only-config-knows", "secret": True},
                "cv-platform:registry": {
                    "value": '{"password":"Kd72-only-config-knows","username":"puller"}',
                    "objectValue": {"password": "Kd72-only-config-knows", "username": "puller"},
                    "secret": True,
                },
            }
        },
    )
    code = _online(project_root, fake)
    out = capsys.readouterr().out
    # Only the stack's secret config knows these two (no pattern would catch them).
    assert "Wq58-only-config-knows" in (FIXTURES / "secrets.json").read_text()
    assert "Wq58-only-config-knows" not in out
    assert "Kd72-only-config-knows" not in out
    assert "robot login used [secret] and [secret]" in out
    previews = [c for c in fake.calls if c[1] == "preview"]
    assert [c[c.index("--stack") + 1] for c in previews] == ["prod", "staging"]
    for call in previews:
        assert call[:4] == ["pulumi", "preview", "--json", "--diff"]
        assert "--policy-pack" in call
    assert re.findall(r"^### `(\w+)`", out, re.M) == ["prod", "staging"]
    for value in SECRET_VALUES:
        assert value not in out
    assert code == 1  # staging's preview breaks the env rule


def test_online_failure_without_json_is_one_line(
    project_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakePulumi({}, {})
    args = build_parser().parse_args(
        ["--project-dir", str(project_root), "preview", "--stack", "prod"]
    )
    from pipeline.errors import PipelineError

    with pytest.raises(
        PipelineError,
        match=r"pulumi preview --stack prod failed \(exit 255\): "
        r"error: no stack named 'prod' found",
    ):
        preview.run(args, Adapters(run=fake))
    assert capsys.readouterr().out == ""


def test_missing_pulumi_cli_suggests_offline(
    project_root: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code, out, err = _run(project_root, capsys, "--stack", "staging")
    assert code == 1
    assert out == ""
    (line,) = err.strip().splitlines()
    assert "pulumi CLI is not installed" in line
    assert "`preview --offline`" in line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--base", "main"], "--base REF only applies with --offline"),
        (["--offline", "--base", "main", "--preview-json", "x.json"], "exclude each other"),
        (["--preview-json", "x.json", "--stack", "a", "--stack", "b"], "at most one --stack"),
        (["--post-github", "not-a-pr", "--preview-json", "x.json"], "OWNER/REPO#NUMBER"),
    ],
)
def test_bad_combinations_are_usage_errors(
    argv: list[str],
    message: str,
    project_root: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "unused")
    code, out, err = _run(project_root, capsys, *argv)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert message in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("", "is empty"),
        ('{"steps": [', "is not valid JSON"),
        ('{"unrelated": true}', "not a Pulumi preview document"),
    ],
)
def test_bad_preview_file_is_one_line(
    content: str | None,
    message: str,
    tmp_path: Path,
    project_root: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "preview.json"
    if content is not None:
        path.write_text(content)
    code, out, err = _run(project_root, capsys, "--preview-json", str(path), "--stack", "staging")
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert message in err


def test_unknown_stack_is_refused(project_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(project_root, capsys, "--offline", "--base", "HEAD", "--stack", "qa")
    assert code == 1
    assert out == ""
    assert "unknown stack 'qa'" in err


def test_offline_policy_uses_protect_when_the_render_records_it() -> None:
    from pipeline.preview.diff import Snapshot, StackDiff
    from pipeline.preview.report import report_from_diff

    volume = "docker:index/volume:Volume"
    head = Snapshot(
        {},
        (
            {"type": volume, "name": "recorded-unprotected", "inputs": {}, "protect": False},
            {"type": volume, "name": "recorded-protected", "inputs": {}, "protect": True},
            {"type": volume, "name": "unrecorded", "inputs": {}},
        ),
    )
    report = report_from_diff(StackDiff("staging", "base", (), {}, head, Snapshot()))
    assert report.policy is not None
    assert [v.resource_name for v in report.policy.violations] == ["recorded-unprotected"]
    assert [n.resource_name for n in report.policy.not_checked] == ["unrecorded"]


@pytest.fixture(scope="module")
def staging_render(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (project_root / "__main__.py").is_file():
        pytest.skip("the Pulumi program (__main__.py) is not in the project yet")
    import subprocess

    from pipeline.preview.offline import render_command

    out = tmp_path_factory.mktemp("render") / "staging"
    done = subprocess.run(
        render_command(project_root, "staging", out),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=project_root,
    )
    assert done.returncode == 0, done.stderr
    return out


def test_offline_volume_rule_decides_on_the_real_staging_render(staging_render: Path) -> None:
    from pipeline.preview.diff import Snapshot, StackDiff
    from pipeline.preview.report import report_from_diff

    head = Snapshot.load(staging_render)
    volumes = [r for r in head.resources if r["type"] == "docker:index/volume:Volume"]
    assert volumes, "the staging render declares the tooling's volumes"
    report = report_from_diff(StackDiff("staging", "base", (), {}, head, head))
    assert report.policy is not None
    assert report.policy.not_checked == ()
    assert report.policy.violations == ()
    # The same render with the Jenkins home left unprotected is refused, by name.
    unprotected = Snapshot(
        head.manifests,
        tuple(
            {**r, "protect": False, "retainOnDelete": False}
            if r["name"] == "cv-platform-jenkins-home"
            else r
            for r in head.resources
        ),
    )
    report = report_from_diff(StackDiff("staging", "base", (), {}, unprotected, head))
    assert report.policy is not None
    assert [(v.policy, v.resource_name) for v in report.policy.violations] == [
        ("protected-tooling-volumes", "cv-platform-jenkins-home")
    ]
