"""Run the Jenkinsfile's stages the way Jenkins runs them, on this machine.

What Jenkins does that a plain shell does not, reproduced here:

- **An empty value is an unset variable.** ``withEnv``, the ``environment {}``
  block and credential bindings all go through ``hudson.EnvVars.override``, which
  *removes* a key whose value is null or empty; a credential whose secret is not
  configured (casc.yaml gives it an empty secret) therefore leaves its variable
  unset. :func:`jenkins_env` applies exactly that rule.
- **Bindings**: ``usernamePassword`` sets two variables, ``string`` one, ``file``
  writes the secret to a temporary file (empty when unset) and sets its path.
- **``sh``** writes the step's text to a script file and runs ``sh -xe FILE`` in
  the workspace, with no TTY (stdin is not a terminal).

The workspace is a git clone of a bare "origin" holding a copy of this project,
at a path with a space in it (Jenkins workspaces of branch jobs often have one).
Tools that cannot run here are stand-ins on PATH (tests/ci/stubs: ``pulumi``,
``buildctl``); git, skopeo, the registry and the pipeline CLI run for real.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.projectcopy import copy_project

STUBS = Path(__file__).parent / "stubs"
AST_SCRIPT = Path(__file__).parent / "groovy" / "jenkinsfile_ast.groovy"
BOT_EMAIL = "cv-platform-bot@users.noreply.github.com"


def jenkins_env(*layers: Mapping[str, str | None]) -> dict[str, str]:
    """Layer environment maps as Jenkins does: a None or empty value removes the key."""
    env: dict[str, str] = {}
    for layer in layers:
        for key, value in layer.items():
            if value is None or value == "":
                env.pop(key, None)
            else:
                env[key] = value
    return env


@dataclass(frozen=True)
class Binding:
    """One credential binding as written in the Jenkinsfile's helpers."""

    kind: str  # usernamePassword | string | file
    credential: str
    variables: tuple[str, ...]  # (user, password) or (variable,)


def parse_bindings(jenkinsfile: str) -> dict[str, list[Binding]]:
    """Helper function name (registryLogin, ...) -> the bindings it returns."""
    helpers: dict[str, list[Binding]] = {}
    for match in re.finditer(r"\ndef (\w+)\(\) \{\n(.*?)\n\}\n", jenkinsfile, re.S):
        found: list[Binding] = []
        body = match.group(2)
        for kind, args in re.findall(r"(usernamePassword|string|file)\(([^)]*)\)", body):
            fields = dict(re.findall(r"(\w+): '([^']*)'", args))
            names = (
                (fields["usernameVariable"], fields["passwordVariable"])
                if kind == "usernamePassword"
                else (fields["variable"],)
            )
            found.append(Binding(kind, fields["credentialsId"], names))
        helpers[match.group(1)] = found
    return helpers


def parse_environment(jenkinsfile: str) -> dict[str, str]:
    """The pipeline's top-level ``environment { NAME = 'value' }`` entries."""
    block = re.search(r"\n    environment \{\n(.*?)\n    \}\n", jenkinsfile, re.S)
    assert block is not None, "the Jenkinsfile has no top-level environment block"
    return dict(re.findall(r"^\s*([A-Z_][A-Z0-9_]*) = '([^']*)'", block.group(1), re.M))


def java_home() -> str | None:
    """A JDK for groovy: $JAVA_HOME if usable, else the one `java` on PATH belongs to."""
    configured = os.environ.get("JAVA_HOME")
    if configured and (Path(configured) / "bin" / "java").is_file():
        return configured
    java = shutil.which("java")
    return str(Path(java).resolve().parent.parent) if java else None


def parse_groovy(*paths: Path) -> dict[str, Any]:
    """tests/ci/groovy/jenkinsfile_ast.groovy over ``paths``; None when groovy is missing."""
    groovy, home = shutil.which("groovy"), java_home()
    if groovy is None or home is None:
        raise LookupError("groovy (Debian package groovy) and a JDK are needed to parse Groovy")
    proc = subprocess.run(
        [groovy, str(AST_SCRIPT), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "JAVA_HOME": home},
        check=False,
    )
    if proc.returncode != 0:
        raise SyntaxError(proc.stderr[-3000:])
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@dataclass(frozen=True)
class Stage:
    name: str
    parent: str | None
    directives: tuple[str, ...]
    agent: str | None
    calls: tuple[str, ...]
    options: tuple[str, ...]
    sh: tuple[str, ...]

    @classmethod
    def from_ast(cls, data: Mapping[str, Any]) -> Stage:
        return cls(
            name=data["name"],
            parent=data["parent"],
            directives=tuple(data["directives"]),
            agent=data["agent"],
            calls=tuple(data["calls"]),
            options=tuple(data["options"]),
            sh=tuple(data["sh"]),
        )


@dataclass(frozen=True)
class Jenkinsfile:
    text: str
    ast: Mapping[str, Any]

    @property
    def stages(self) -> dict[str, Stage]:
        return {s["name"]: Stage.from_ast(s) for s in self.ast["stages"]}

    @property
    def bindings(self) -> dict[str, list[Binding]]:
        return parse_bindings(self.text)

    @property
    def environment(self) -> dict[str, str]:
        return parse_environment(self.text)

    def stage_bindings(self, name: str) -> list[Binding]:
        """The credentials a stage binds (through the helpers it calls)."""
        calls = self.stages[name].calls
        return [b for helper, found in self.bindings.items() if helper in calls for b in found]


def git(*args: str, cwd: Path, env: Mapping[str, str]) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


@dataclass
class Agent:
    """A Jenkins agent with one job workspace: a clone of a local bare origin."""

    root: Path
    project_root: Path
    jenkinsfile: Jenkinsfile
    credentials: dict[str, Any] = field(default_factory=dict)  # id -> value; None = unset
    agent_env: dict[str, str | None] = field(default_factory=dict)
    job_env: dict[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home = self.root / "jenkins home"
        self.home.mkdir(parents=True)
        self.origin = self.root / "origin.git"
        self.workspace = self.home / "workspace" / "cv-platform main"
        self.workspace_tmp = Path(f"{self.workspace}@tmp")
        self.log = self.root / "stubs.jsonl"
        self.bin = self.root / "bin"
        self.bin.mkdir()
        for stub in STUBS.glob("*.py"):
            if stub.name != "__init__.py":
                (self.bin / stub.stem).symlink_to(stub)
        self.base_env = {
            "HOME": str(self.home),
            "PATH": os.pathsep.join(
                [str(self.bin), str(Path(sys.executable).parent), "/usr/bin", "/bin"]
            ),
            "LANG": "C.UTF-8",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "A Human",
            "GIT_AUTHOR_EMAIL": "human@example.com",
            "GIT_COMMITTER_NAME": "A Human",
            "GIT_COMMITTER_EMAIL": "human@example.com",
            "PYTHON": sys.executable,
            "STUB_LOG": str(self.log),
        }

    def seed(self) -> str:
        """Copy the project into origin's main and clone it as the workspace; the commit."""
        seed = self.root / "seed"
        copy_project(self.project_root, seed)
        env = self.base_env
        git(
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=main",
            str(self.origin),
            cwd=self.root,
            env=env,
        )
        git("init", "--quiet", "--initial-branch=main", cwd=seed, env=env)
        git("add", "-A", cwd=seed, env=env)
        git("commit", "--quiet", "-m", "start", cwd=seed, env=env)
        git("remote", "add", "origin", str(self.origin), cwd=seed, env=env)
        git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=seed, env=env)
        self.seed_dir = seed
        self.workspace.parent.mkdir(parents=True, exist_ok=True)
        git("clone", "--quiet", str(self.origin), str(self.workspace), cwd=self.root, env=env)
        built = git("rev-parse", "HEAD", cwd=self.workspace, env=env)
        git("checkout", "--quiet", "--detach", built, cwd=self.workspace, env=env)
        return built

    def human_commit(self, path: str, text: str) -> str:
        """Someone else pushes to main while the build runs."""
        env = self.base_env
        git("pull", "--quiet", "--ff-only", "origin", "main", cwd=self.seed_dir, env=env)
        (self.seed_dir / path).write_text(text)
        git("commit", "--quiet", "-am", f"edit {path}", cwd=self.seed_dir, env=env)
        git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=self.seed_dir, env=env)
        return git("rev-parse", "HEAD", cwd=self.seed_dir, env=env)

    def origin_main(self) -> str:
        return git("rev-parse", "main", cwd=self.origin, env=self.base_env)

    def git(self, *args: str) -> str:
        return git(*args, cwd=self.workspace, env=self.base_env)

    def _bind(self, bindings: list[Binding], secret_dir: Path) -> dict[str, str | None]:
        values: dict[str, str | None] = {}
        for binding in bindings:
            value = self.credentials.get(binding.credential)
            if binding.kind == "usernamePassword":
                user, password = value if value is not None else ("", None)
                values[binding.variables[0]] = user
                values[binding.variables[1]] = password
            elif binding.kind == "string":
                values[binding.variables[0]] = value
            else:  # file: always a file, empty when the secret is not configured
                secret_dir.mkdir(parents=True, exist_ok=True)
                path = secret_dir / f"{binding.credential}-{len(values)}"
                path.write_text(value or "")
                values[binding.variables[0]] = str(path)
        return values

    def sh(
        self, script: str, bindings: list[Binding] | None = None, **extra: str | None
    ) -> subprocess.CompletedProcess[str]:
        """One ``sh`` step: ``sh -xe`` on the step's text, in the workspace."""
        self.workspace_tmp.mkdir(parents=True, exist_ok=True)
        secret_dir = self.workspace_tmp / "secretFiles"
        env = jenkins_env(
            self.base_env,
            {
                "WORKSPACE": str(self.workspace),
                "WORKSPACE_TMP": str(self.workspace_tmp),
                "JENKINS_HOME": str(self.home),
            },
            self.agent_env,
            self.jenkinsfile.environment,
            self.job_env,
            self._bind(bindings or [], secret_dir),
            extra,
        )
        step = self.workspace_tmp / "script.sh"
        step.write_text(script)
        try:
            return subprocess.run(
                ["sh", "-xe", str(step)],
                cwd=self.workspace,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        finally:
            shutil.rmtree(secret_dir, ignore_errors=True)

    def stage(self, name: str, **extra: str | None) -> subprocess.CompletedProcess[str]:
        """Every ``sh`` step of stage ``name`` with its bindings, stopping at a failure."""
        stage = self.jenkinsfile.stages[name]
        assert stage.sh, f"stage {name} runs no sh step"
        done: subprocess.CompletedProcess[str] | None = None
        for script in stage.sh:
            done = self.sh(script, self.jenkinsfile.stage_bindings(name), **extra)
            if done.returncode != 0:
                break
        assert done is not None
        return done

    def stub_calls(self, tool: str) -> list[dict[str, Any]]:
        """What the stand-in ``tool`` was called with (argv and environment facts)."""
        if not self.log.exists():
            return []
        calls = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [c for c in calls if c["tool"] == tool]

    def state(self, key: str) -> str:
        return (self.workspace / "build" / "ci" / key).read_text().strip()
