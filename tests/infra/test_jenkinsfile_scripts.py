"""The Jenkinsfile's shell scripts, run for real.

Each script is taken from the Jenkinsfile (Groovy string escapes undone, as
Jenkins does) and run with bash, with the variables Jenkins and the step's
bindings would set:

- ``commitStackFile`` and ``onlyDeployBotCommits`` in a clone of a local bare
  "origin" (the commit-back of deployed stack files, and the build-loop guard);
- the GitHub credential helper of ``withGitHubToken`` through ``git credential fill``;
- the login of ``withRegistryLogin``, read back by pipeline's own credential reader;
- the Promote stage against a real record store.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.infra.jenkinsfile_text import (
    groovy_function,
    groovy_unescape,
    shell_script,
    stage_text,
)

BOT_NAME = "cv-platform deploy bot"
BOT_EMAIL = "cv-platform-bot@users.noreply.github.com"
TOKEN = "ghp-s3cr3t-token-9d1c"
OLD_DIGEST = "sha256:" + "1" * 64
NEW_DIGEST = "sha256:" + "2" * 64
HUMAN_DIGEST = "sha256:" + "3" * 64


@pytest.fixture(scope="module")
def jenkinsfile(project_root: Path) -> str:
    return (project_root / "Jenkinsfile").read_text()


@pytest.fixture(scope="module")
def commit_script(jenkinsfile: str) -> str:
    return shell_script(groovy_function(jenkinsfile, "void commitStackFile(String stack)"))


@pytest.fixture(scope="module")
def guard_script(jenkinsfile: str) -> str:
    return shell_script(groovy_function(jenkinsfile, "boolean onlyDeployBotCommits()"))


def stack_file(digest: str) -> str:
    return (
        "config:\n"
        "  cv-platform:environment: staging\n"
        "  cv-platform:image:\n"
        "    repository: registry.example.internal/cv-platform/model-server\n"
        "    tag: 9f3c2ab\n"
        f"    digest: {digest}\n"
        "  cv-platform:replicas: 1\n"
    )


class Repos:
    """A bare origin with main, and a build workspace detached at the built commit."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.origin = root / "origin.git"
        self.workspace = root / "workspace"
        self.tmp = root / "workspace@tmp"
        self.env = {
            "HOME": str(root),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "A Human",
            "GIT_AUTHOR_EMAIL": "human@example.com",
            "GIT_COMMITTER_NAME": "A Human",
            "GIT_COMMITTER_EMAIL": "human@example.com",
        }
        self.git("init", "--quiet", "--bare", "--initial-branch=main", str(self.origin), cwd=root)
        seed = root / "seed"
        self.git("clone", "--quiet", str(self.origin), str(seed), cwd=root)
        (seed / "Pulumi.staging.yaml").write_text(stack_file(OLD_DIGEST))
        (seed / "Pulumi.prod.yaml").write_text(stack_file(OLD_DIGEST))
        (seed / "README.md").write_text("cv-platform\n")
        self.git("add", ".", cwd=seed)
        self.git("commit", "--quiet", "-m", "start", cwd=seed)
        self.git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=seed)
        self.seed = seed
        self.git("clone", "--quiet", str(self.origin), str(self.workspace), cwd=root)
        self.built = self.git("rev-parse", "HEAD")
        self.git("checkout", "--quiet", "--detach", self.built)

    def git(self, *args: str, cwd: Path | None = None) -> str:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd or self.workspace,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout.strip()

    def human_commit(self, path: str, text: str) -> str:
        """Someone else pushes to main while the build runs."""
        self.git("pull", "--quiet", "--ff-only", "origin", "main", cwd=self.seed)
        (self.seed / path).write_text(text)
        self.git("commit", "--quiet", "-am", f"edit {path}", cwd=self.seed)
        self.git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=self.seed)
        return self.git("rev-parse", "HEAD", cwd=self.seed)

    def origin_main(self) -> str:
        return self.git("rev-parse", "main", cwd=self.origin)

    def run(
        self, script: str, extra: Mapping[str, str], cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", script],
            cwd=cwd or self.workspace,
            env={**self.env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def repos(tmp_path: Path) -> Repos:
    return Repos(tmp_path)


Commit = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def commit(repos: Repos, commit_script: str) -> Commit:
    def run(stack: str = "staging", token: str = TOKEN) -> subprocess.CompletedProcess[str]:
        return repos.run(
            commit_script,
            {
                "COMMIT_STACK": stack,
                "GITHUB_USER": "x-access-token",
                "GITHUB_TOKEN": token,
                "GIT_AUTHOR_NAME": BOT_NAME,
                "GIT_AUTHOR_EMAIL": BOT_EMAIL,
                "GIT_COMMITTER_NAME": BOT_NAME,
                "GIT_COMMITTER_EMAIL": BOT_EMAIL,
                "GIT_SHA": repos.built,
                "BRANCH_NAME": "main",
                "BUILD_URL": "http://jenkins:8080/job/cv-platform/job/main/7/",
                "WORKSPACE_TMP": str(repos.tmp),
            },
        )

    return run


def deploy(repos: Repos, stack: str = "staging") -> None:
    """What set-image / promote leave in the workspace before the deploy."""
    (repos.workspace / f"Pulumi.{stack}.yaml").write_text(stack_file(NEW_DIGEST))


def test_deployed_stack_file_is_committed_by_the_bot_and_pushed(
    repos: Repos, commit: Commit
) -> None:
    deploy(repos)
    done = commit()
    assert done.returncode == 0, done.stderr
    head = repos.origin_main()
    assert repos.git("rev-parse", f"{head}^", cwd=repos.origin) == repos.built
    message = repos.git("log", "-1", "--format=%B", head, cwd=repos.origin)
    subject = f"deploy(staging): cv-platform:image -> {NEW_DIGEST} [skip ci]"
    assert message.splitlines()[0] == subject
    assert f"Built-From: {repos.built}" in message
    assert repos.git("log", "-1", "--format=%an <%ae>", head, cwd=repos.origin) == (
        f"{BOT_NAME} <{BOT_EMAIL}>"
    )
    changed = repos.git("diff", "--name-only", f"{head}^", head, cwd=repos.origin)
    assert changed == "Pulumi.staging.yaml"


def test_commit_back_prints_no_secret(repos: Repos, commit: Commit) -> None:
    deploy(repos)
    done = commit()
    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stdout + done.stderr


def test_unchanged_stack_file_commits_nothing(repos: Repos, commit: Commit) -> None:
    done = commit()
    assert done.returncode == 0, done.stderr
    assert "unchanged: nothing to commit" in done.stdout
    assert repos.origin_main() == repos.built


def test_without_a_token_the_stage_fails_and_says_why(repos: Repos, commit: Commit) -> None:
    deploy(repos)
    done = commit(token="")
    assert done.returncode == 1
    assert "github-token is not configured" in done.stderr
    assert repos.origin_main() == repos.built


def test_moved_branch_gets_the_commit_replayed_on_top_not_the_workspace(
    repos: Repos, commit: Commit
) -> None:
    human = repos.human_commit("README.md", "cv-platform, edited meanwhile\n")
    deploy(repos)
    done = commit()
    assert done.returncode == 0, done.stderr
    head = repos.origin_main()
    assert repos.git("rev-parse", f"{head}^", cwd=repos.origin) == human
    assert f"digest: {NEW_DIGEST}" in repos.git("show", f"{head}:Pulumi.staging.yaml")
    # The build's own checkout still holds only what it built.
    assert (repos.workspace / "README.md").read_text() == "cv-platform\n"
    assert repos.git("rev-parse", "HEAD^") == repos.built


def test_conflicting_change_on_the_branch_fails_with_what_to_do(
    repos: Repos, commit: Commit
) -> None:
    human = repos.human_commit("Pulumi.staging.yaml", stack_file(HUMAN_DIGEST))
    deploy(repos)
    done = commit()
    assert done.returncode == 1
    assert "was changed on main since this build" in done.stderr
    assert "by hand" in done.stderr
    assert repos.origin_main() == human
    assert not (repos.tmp / "commit-back").exists()


def test_prod_commit_follows_the_staging_commit(repos: Repos, commit: Commit) -> None:
    deploy(repos, "staging")
    assert commit("staging").returncode == 0
    repos.human_commit("README.md", "moved on\n")
    deploy(repos, "prod")
    done = commit("prod")
    assert done.returncode == 0, done.stderr
    head = repos.origin_main()
    changed = repos.git("diff", "--name-only", f"{head}^", head, cwd=repos.origin)
    assert changed == "Pulumi.prod.yaml"
    assert "deploy(prod)" in repos.git("log", "-1", "--format=%s", head, cwd=repos.origin)


def checkout(repos: Repos, name: str) -> Path:
    path = repos.root / name
    repos.git("clone", "--quiet", str(repos.origin), str(path), cwd=repos.root)
    return path


def test_bot_commits_alone_build_nothing(repos: Repos, commit: Commit, guard_script: str) -> None:
    deploy(repos, "staging")
    assert commit("staging").returncode == 0
    deploy(repos, "prod")
    assert commit("prod").returncode == 0
    done = repos.run(guard_script, {"DEPLOY_BOT_EMAIL": BOT_EMAIL}, cwd=checkout(repos, "next"))
    assert done.returncode == 0, done.stderr


def test_a_replayed_bot_commit_over_someone_elses_is_built(
    repos: Repos, commit: Commit, guard_script: str
) -> None:
    repos.human_commit("README.md", "new work\n")
    deploy(repos)
    assert commit().returncode == 0
    done = repos.run(guard_script, {"DEPLOY_BOT_EMAIL": BOT_EMAIL}, cwd=checkout(repos, "next"))
    assert done.returncode != 0


def test_an_ordinary_commit_is_built(repos: Repos, guard_script: str) -> None:
    repos.human_commit("README.md", "plain work [skip ci]\n")
    done = repos.run(guard_script, {"DEPLOY_BOT_EMAIL": BOT_EMAIL}, cwd=checkout(repos, "next"))
    assert done.returncode != 0


def test_credential_helper_answers_git_with_the_bound_token(repos: Repos, jenkinsfile: str) -> None:
    body = groovy_function(jenkinsfile, "void withGitHubToken(Closure body)")
    settings = dict(
        groovy_unescape(item).split("=", 1)
        for item in re.findall(r"'(GIT_[A-Z_0-9]+=(?:[^'\\]|\\.)*)'", body)
    )
    assert settings["GIT_CONFIG_COUNT"] == "2"
    # withEnv expands $NAME and ${NAME} in values: none may name a variable that way,
    # or the bound token would be copied into the helper's definition.
    for value in settings.values():
        assert not re.search(r"\$(\{|[A-Za-z_])", value), value
    done = subprocess.run(
        ["git", "credential", "fill"],
        input="protocol=https\nhost=github.com\npath=example/cv-platform.git\n\n",
        env={**repos.env, **settings, "GITHUB_USER": "x-access-token", "GITHUB_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"password={TOKEN}" in done.stdout.splitlines()
    assert "username=x-access-token" in done.stdout.splitlines()


def test_registry_login_writes_a_private_config_pipeline_reads(
    tmp_path: Path, jenkinsfile: str
) -> None:
    from pipeline.registry import docker_credentials

    body = groovy_function(jenkinsfile, "void withRegistryLogin(Closure body)")
    (login,) = re.findall(r"sh '''(.*?)'''", body, re.S)
    (cleanup,) = re.findall(r"sh '([^'\n]+)'\n", body)
    config_dir = tmp_path / "docker"
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DOCKER_CONFIG": str(config_dir),
        "IMAGE_REPOSITORY": "registry.example.internal:5000/cv-platform/model-server",
        "REGISTRY_USER": "ci",
        "REGISTRY_PASSWORD": TOKEN,
    }
    done = subprocess.run(
        ["bash", "-c", groovy_unescape(login)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stdout + done.stderr
    config = config_dir / "config.json"
    assert config.stat().st_mode & 0o077 == 0
    creds = docker_credentials("registry.example.internal:5000", config)
    assert creds is not None
    assert (creds.username, creds.password) == ("ci", TOKEN)
    subprocess.run(["bash", "-c", groovy_unescape(cleanup)], env=env, timeout=30, check=True)
    assert not config_dir.exists()


# --- Promote ---------------------------------------------------------------------------

APPROVED = "sha256:" + "a" * 64
LATER = "sha256:" + "b" * 64
REPOSITORY = "registry.example.internal/cv-platform/model-server"


@pytest.fixture(scope="module")
def promote_script(jenkinsfile: str) -> str:
    return shell_script(stage_text(jenkinsfile, "Promote", "Deploy prod"))


@pytest.fixture
def project(tmp_path: Path, project_root: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml"):
        shutil.copy(project_root / name, root / name)
    return root


def run(root: Path, *argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=root, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def deployed(root: Path, env: dict[str, str], digest: str, at: str) -> None:
    done = run(
        root,
        sys.executable,
        "-m",
        "pipeline",
        "record",
        "deploy",
        "--stack",
        "staging",
        "--result",
        "succeeded",
        "--image",
        f"{REPOSITORY}@{digest}",
        "--started",
        f"2026-01-01T{at}:00Z",
        "--finished",
        f"2026-01-01T{at}:30Z",
        env=env,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def env(tmp_path: Path, project_root: Path) -> dict[str, str]:
    return {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(project_root),
        "PIPELINE_STORE": str(tmp_path / "records.db"),
        "IMAGE_DIGEST": APPROVED,
    }


def test_promote_refuses_when_staging_moved_on_since_approval(
    project: Path, env: dict[str, str], promote_script: str
) -> None:
    deployed(project, env, APPROVED, "10:00")
    deployed(project, env, LATER, "11:00")  # a branch build, during the approval wait
    before = (project / "Pulumi.prod.yaml").read_bytes()
    done = run(project, "bash", "-c", promote_script, env=env)
    assert done.returncode == 1
    assert f"staging's last good deployment is {LATER}, not {APPROVED}" in done.stderr
    assert (project / "Pulumi.prod.yaml").read_bytes() == before
    assert "promot" not in done.stdout  # promote never ran


def test_promote_proceeds_when_staging_runs_the_approved_image(
    project: Path, env: dict[str, str], promote_script: str
) -> None:
    deployed(project, env, LATER, "09:00")
    deployed(project, env, APPROVED, "10:00")
    done = run(project, "bash", "-c", promote_script, env=env)
    # The check let promote run; here its own gates refuse (no registry, no CI run).
    assert "not promoting" not in done.stderr
    assert done.returncode == 3, done.stderr
    assert "Pulumi.prod.yaml unchanged" in done.stderr
