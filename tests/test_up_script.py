"""`make up` (scripts/up): what it refuses, in one line each, before pulumi runs.

The script runs in a copy of the project's top level with stand-ins for the
`pulumi` and `kubectl` CLIs on PATH (neither engine nor cluster runs here);
the stand-in pulumi writes down how it was called.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

PROD = (PROJECT_ROOT / "Pulumi.prod.yaml").read_text()
PULUMI = (
    '#!/bin/sh\necho "backend $PULUMI_BACKEND_URL" >> "$PULUMI_CALLS"\n'
    'echo "$*" >> "$PULUMI_CALLS"\n'
)
KUBECTL = '#!/bin/sh\n[ -n "$KUBE_CONTEXT" ] && echo "$KUBE_CONTEXT"\n'


@dataclass(frozen=True)
class Up:
    root: Path
    env: dict[str, str]

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.root / "scripts" / "up"), *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def pulumi_calls(self) -> list[str]:
        """Each call's arguments; lines "backend URL" record its PULUMI_BACKEND_URL."""
        calls = self.root / "pulumi-calls"
        return calls.read_text().splitlines() if calls.exists() else []

    def pulumi_commands(self) -> list[str]:
        return [ln for ln in self.pulumi_calls() if not ln.startswith("backend ")]


@pytest.fixture
def up(tmp_path: Path) -> Up:
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(PROJECT_ROOT / "scripts" / "up", root / "scripts" / "up")
    shutil.copy2(PROJECT_ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
    (root / "Pulumi.prod.yaml").write_text(PROD)
    (root / "pipeline").symlink_to(PROJECT_ROOT / "pipeline")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("pulumi", PULUMI), ("kubectl", KUBECTL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "PULUMI_CONFIG_PASSPHRASE": "not-a-real-one",
        "PULUMI_CALLS": str(root / "pulumi-calls"),
        "KUBE_CONTEXT": "cv-prod-eu-west-1",  # Pulumi.prod.yaml's kubeContext
        "PYTHON": sys.executable,  # the interpreter running the tests, wherever its venv is
    }
    return Up(root, env)


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done
    assert done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


STAGING = (
    "config:\n  cv-platform:kubeContext: kind-cv-platform\n  cv-platform:tooling:\n"
    "    enabled: true\n    jenkins:\n      pulumiBackendUrl: s3://state-bucket?region=eu-west-1\n"
)


def backend(up: Up) -> str:
    """The PULUMI_BACKEND_URL every pulumi call saw (one and the same)."""
    (line,) = {ln for ln in up.pulumi_calls() if ln.startswith("backend ")}
    return line.removeprefix("backend ")


def test_up_deploys_with_a_local_backend_when_the_context_is_the_stacks(up: Up) -> None:
    done = up.run("prod")
    assert done.returncode == 0, done.stderr
    assert up.pulumi_commands() == ["stack select --create prod", "up --stack prod"]
    assert (Path(up.env["HOME"]) / ".pulumi-local").is_dir()
    assert backend(up) == f"file://{up.env['HOME']}/.pulumi-local"
    assert "local: no shared backend is configured" in done.stderr


def test_up_shares_the_backend_jenkins_uses(up: Up) -> None:
    (up.root / "Pulumi.staging.yaml").write_text(STAGING)
    done = up.run("prod")
    assert done.returncode == 0, done.stderr
    assert backend(up) == "s3://state-bucket?region=eu-west-1"
    assert "tooling.jenkins.pulumiBackendUrl" in done.stderr


def test_an_explicit_backend_wins(up: Up) -> None:
    (up.root / "Pulumi.staging.yaml").write_text(STAGING)
    done = up.run("prod", PULUMI_BACKEND_URL="file:///srv/state")
    assert done.returncode == 0, done.stderr
    assert backend(up) == "file:///srv/state"


def test_pulumi_cloud_needs_no_passphrase(up: Up) -> None:
    done = up.run("prod", PULUMI_BACKEND_URL="https://api.pulumi.com", PULUMI_CONFIG_PASSPHRASE="")
    assert done.returncode == 0, done.stderr
    assert up.pulumi_commands()[-1] == "up --stack prod"


def test_a_malformed_stack_file_is_one_line_not_a_traceback(up: Up) -> None:
    (up.root / "Pulumi.prod.yaml").write_text("config:\n  cv-platform:image: [\n")
    err = _one_line(up.run("prod"))
    assert err.startswith("up: Pulumi.prod.yaml:3: malformed YAML: ")
    assert up.pulumi_calls() == []


def test_another_current_context_is_refused(up: Up) -> None:
    err = _one_line(up.run("prod", KUBE_CONTEXT="kind-cv-platform"))
    assert "deploys to kube context 'cv-prod-eu-west-1' but the current context is" in err
    assert up.pulumi_calls() == []


def test_a_missing_passphrase_is_refused(up: Up) -> None:
    err = _one_line(up.run("prod", PULUMI_CONFIG_PASSPHRASE=""))
    assert err.startswith("up: set PULUMI_CONFIG_PASSPHRASE")
    assert up.pulumi_calls() == []


def test_an_unknown_stack_names_the_known_ones(up: Up) -> None:
    err = _one_line(up.run("qa"))
    assert err.startswith("up: no Pulumi.qa.yaml: choose one of prod")
    assert up.pulumi_calls() == []
