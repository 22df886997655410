"""The Jenkinsfile: parsed as Groovy (Debian's groovy, phase CONVERSION), every stage
present and bounded in time, credentials only through bindings, and every
`python -m pipeline` command it runs accepted by the real CLI parser."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import build_parser
from tests.infra.jenkinsfile_text import groovy_function, stage_text

STAGES = [
    "Checkout",
    "Build",
    "Test",
    "Push",
    "Set image (staging)",
    "Deploy staging",
    "Record staging",
    "Commit staging",
    "Smoke test",
    "Approve",
    "Promote",
    "Deploy prod",
    "Record prod",
    "Commit prod",
    "Preview",
]
MAIN_ONLY = ["Commit staging", "Approve", "Promote", "Deploy prod", "Record prod", "Commit prod"]
SECRET_VARIABLES = ("REGISTRY_PASSWORD", "GITHUB_TOKEN", "PULUMI_CONFIG_PASSPHRASE", "KUBECONFIG")
AST_SCRIPT = Path(__file__).parent / "groovy" / "jenkinsfile_ast.groovy"


def java_home() -> str | None:
    """A JDK for groovy: $JAVA_HOME if usable, else the one `java` on PATH belongs to."""
    configured = os.environ.get("JAVA_HOME")
    if configured and (Path(configured) / "bin" / "java").is_file():
        return configured
    java = shutil.which("java")
    return str(Path(java).resolve().parent.parent) if java else None


def parse_groovy(*paths: Path) -> dict[str, Any]:
    """Run tests/infra/groovy/jenkinsfile_ast.groovy; a syntax error fails the test."""
    groovy, home = shutil.which("groovy"), java_home()
    if groovy is None or home is None:
        pytest.skip("groovy (Debian package groovy) and a JDK are needed to parse Groovy")
    proc = subprocess.run(
        [groovy, str(AST_SCRIPT), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "JAVA_HOME": home},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def jenkinsfile(project_root: Path) -> str:
    return (project_root / "Jenkinsfile").read_text()


@pytest.fixture(scope="module")
def groovy_files(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The Groovy this project ships: the Jenkinsfile, the seed job, the init script."""
    import yaml

    casc = yaml.safe_load((project_root / "infra/jenkins/casc.yaml").read_text())
    seed = tmp_path_factory.mktemp("seed") / "seed.groovy"
    seed.write_text(casc["jobs"][0]["script"])
    return {
        "jenkinsfile": project_root / "Jenkinsfile",
        "seed": seed,
        "init": project_root / "infra/jenkins/init.groovy.d/publish-agent-secret.groovy.override",
    }


@pytest.fixture(scope="module")
def parsed(groovy_files: dict[str, Path]) -> dict[str, Any]:
    # One JVM start for all files (each start costs seconds).
    return parse_groovy(*groovy_files.values())


@pytest.fixture(scope="module")
def ast(parsed: dict[str, Any], groovy_files: dict[str, Path]) -> dict[str, Any]:
    tree: dict[str, Any] = parsed[str(groovy_files["jenkinsfile"])]
    return tree


@pytest.fixture(scope="module")
def stages(ast: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {stage["name"]: stage for stage in ast["stages"]}


def test_groovy_parser_rejects_broken_groovy(tmp_path: Path) -> None:
    # The parse check can fail: an unclosed block is a compile error.
    bad = tmp_path / "Jenkinsfile"
    bad.write_text("pipeline {\n  stages { stage('x') { steps { sh 'true' } }\n")
    groovy, home = shutil.which("groovy"), java_home()
    if groovy is None or home is None:
        pytest.skip("groovy (Debian package groovy) and a JDK are needed to parse Groovy")
    proc = subprocess.run(
        [groovy, str(AST_SCRIPT), str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "JAVA_HOME": home},
        check=False,
    )
    assert proc.returncode != 0
    assert "expecting '}'" in proc.stderr


def test_every_stage_exists_in_order(ast: dict[str, Any]) -> None:
    assert [stage["name"] for stage in ast["stages"]] == STAGES


def test_every_stage_has_a_timeout(stages: dict[str, dict[str, Any]]) -> None:
    missing = [name for name, stage in stages.items() if "timeout" not in stage["options"]]
    assert missing == []


def test_one_build_per_branch_and_one_deployment_per_stack(
    ast: dict[str, Any], stages: dict[str, dict[str, Any]]
) -> None:
    assert "disableConcurrentBuilds" in ast["pipelineOptions"]
    for name in ("Deploy staging", "Promote", "Deploy prod"):
        assert "lock" in stages[name]["calls"], name


def test_lock_names_are_per_stack(jenkinsfile: str) -> None:
    assert set(re.findall(r"lock\('([^']+)'\)", jenkinsfile)) == {
        "cv-platform-staging",
        "cv-platform-prod",
    }


def test_promotion_runs_on_main_only_and_pull_requests_only_preview(
    stages: dict[str, dict[str, Any]],
) -> None:
    for name in MAIN_ONLY:
        assert {"branch", "changeRequest", "not"} <= set(stages[name]["calls"]), name
    assert "input" in stages["Approve"]["calls"]
    for name in ("Push", "Set image (staging)", "Deploy staging", "Smoke test"):
        assert {"changeRequest", "not"} <= set(stages[name]["calls"]), name
    assert "changeRequest" in stages["Preview"]["calls"]
    assert "not" not in stages["Preview"]["calls"]


def test_credentials_only_through_bindings(
    jenkinsfile: str, stages: dict[str, dict[str, Any]]
) -> None:
    # No environment { X = credentials(...) }: that binds for the whole run.
    assert all("credentials" not in stage["calls"] for stage in stages.values())
    assert "credentials(" not in jenkinsfile
    for binding in re.findall(r"credentialsId: '([^']+)'", jenkinsfile):
        assert binding in {
            "registry-push",
            "github-token",
            "pulumi-config-passphrase",
            "kubeconfig",
        }
    assert "withRegistryLogin" in stages["Push"]["calls"]
    login = groovy_function(jenkinsfile, "void withRegistryLogin(Closure body)")
    assert "withCredentials([usernamePassword(credentialsId: 'registry-push'" in login
    assert "withCredentials" in stages["Preview"]["calls"]


def test_secrets_are_never_interpolated_or_echoed(jenkinsfile: str, ast: dict[str, Any]) -> None:
    # Groovy interpolates "...${x}..." strings before the shell sees them: a secret
    # may only appear in '...' / '''...''' scripts, expanded by the shell at run time.
    assert ast["gstrings"], "the AST walk found no interpolated strings at all"
    for text in ast["gstrings"]:
        for var in SECRET_VARIABLES:
            assert var not in text, text
    assert not re.search(r"\becho\b[^\n]*(" + "|".join(SECRET_VARIABLES) + ")", jenkinsfile)
    assert "set -x" not in jenkinsfile
    # The registry password reaches skopeo and pipeline through a config.json written
    # from the environment, never on a command line.
    assert jenkinsfile.count("$REGISTRY_PASSWORD") == 0
    assert "--dest-creds" not in jenkinsfile
    assert "--creds" not in jenkinsfile


def test_junit_is_published_and_the_ci_run_recorded_always(jenkinsfile: str) -> None:
    post = jenkinsfile[jenkinsfile.index("\n    post {") :]
    always = post[post.index("always") : post.index("\n}\n")]
    assert "junit testResults: 'build/junit/*.xml', allowEmptyResults: true" in always
    assert "recordCiRun()" in always
    record = groovy_function(jenkinsfile, "void recordCiRun()")
    assert "python -m pipeline record ci" in record
    flags = set(re.findall(r"'(--[a-z-]+)'", record))
    ci = build_parser().parse_args(["record", "ci"])
    known = {f"--{k.replace('_', '-')}" for k in vars(ci)}
    assert flags <= known, flags - known
    assert {"--junit", "--build-seconds", "--test-seconds", "--image", "--commit"} <= flags


def test_reports_of_an_earlier_build_are_removed_before_anything_runs(jenkinsfile: str) -> None:
    # post { always } publishes and records build/junit/*.xml whatever failed, so files
    # left in the workspace by an earlier build must be gone before the first step.
    checkout = stage_text(jenkinsfile, "Checkout", "Build")
    steps = checkout[checkout.index("steps {") :]
    assert steps.index("sh 'rm -rf build'") < steps.index("checkout scm")


def test_ci_run_without_junit_reports_is_skipped_saying_why(jenkinsfile: str) -> None:
    # `record ci --junit GLOB` exits 1 when nothing matches, and without --junit it
    # demands --image: a run that stopped before Test has neither. So --junit is
    # passed only after the reports were found, and otherwise the log says why not.
    record = groovy_function(jenkinsfile, "void recordCiRun()")
    check = record.index("ls build/junit/*.xml")
    skip = record.index("echo 'record ci: skipped: no JUnit report")
    assert check < skip < record.index("return\n", skip) < record.index("'--junit'")
    # The commit is passed only when Checkout got that far (no made-up value).
    assert "'unknown'" not in record


def test_failed_ci_recording_marks_the_build_unstable_not_failed(jenkinsfile: str) -> None:
    record = groovy_function(jenkinsfile, "void recordCiRun()")
    catch = record.index("catchError(buildResult: 'UNSTABLE'")
    assert catch < record.index("python -m pipeline record ci")


def test_preview_artifact_is_archived_even_when_the_preview_fails(
    jenkinsfile: str, stages: dict[str, dict[str, Any]]
) -> None:
    preview = jenkinsfile[jenkinsfile.index("stage('Preview')") :]
    post = preview[preview.index("            post {") :]
    assert post.index("always") < post.index("archiveArtifacts artifacts: 'build/preview.md'")
    steps = preview[: preview.index("            post {")]
    assert "archiveArtifacts" not in steps


def test_stack_files_are_committed_back_after_successful_deploys(
    jenkinsfile: str, stages: dict[str, dict[str, Any]]
) -> None:
    names = [name for name in stages]
    assert names.index("Record staging") < names.index("Commit staging")
    assert names.index("Record prod") < names.index("Commit prod")
    assert "commitStackFile" in stages["Commit staging"]["calls"]
    assert "commitStackFile" in stages["Commit prod"]["calls"]
    assert "commitStackFile('staging')" in jenkinsfile
    assert "commitStackFile('prod')" in jenkinsfile
    # Record stages fail the build on a failed deploy, so Commit follows success only.
    for stack in ("staging", "prod"):
        record = jenkinsfile[jenkinsfile.index(f"stage('Record {stack}')") :]
        record = record[: record.index(f"stage('Commit {stack}')")]
        assert f"error('pulumi up -s {stack} failed" in record


def test_commit_back_pushes_with_the_bound_token_only(jenkinsfile: str) -> None:
    commit = groovy_function(jenkinsfile, "void commitStackFile(String stack)")
    assert commit.index("withGitHubToken {") < commit.index("git push")
    helper = groovy_function(jenkinsfile, "void withGitHubToken(Closure body)")
    assert "withCredentials([usernamePassword(credentialsId: 'github-token'" in helper
    # The token reaches git through a credential helper, never a URL or an argument.
    assert "@github.com" not in jenkinsfile
    assert not re.search(r"git [^\n]*\$GITHUB_TOKEN", jenkinsfile)
    assert "[skip ci]" in commit
    assert "Built-From: $GIT_SHA" in commit


def test_registry_stages_run_with_the_registry_login(stages: dict[str, dict[str, Any]]) -> None:
    # The registry asks for the login on reads too: set-image resolves the tag there,
    # and promote's digest-resolves gate checks it.
    for name in ("Push", "Set image (staging)", "Promote"):
        assert "withRegistryLogin" in stages[name]["calls"], name


def test_deploy_bot_commits_do_not_start_a_build(stages: dict[str, dict[str, Any]]) -> None:
    checkout = stages["Checkout"]["calls"]
    assert "onlyDeployBotCommits" in checkout
    assert "error" in checkout


# Values for the shell variables the commands use, so the real parser can read them.
SHELL_VALUES = {
    "IMAGE_TAG": "0123456789abcdef0123456789abcdef01234567",
    "IMAGE_REF": "registry.example.internal/cv-platform/model-server@sha256:" + "a" * 64,
    "REC_STACK": "staging",
    "REC_RESULT": "succeeded",
    "REC_STARTED": "2026-01-01T00:00:00Z",
    "REC_FINISHED": "2026-01-01T00:05:00Z",
    "GIT_SHA": "0123456789abcdef0123456789abcdef01234567",
    "slug#$CHANGE_ID": "example/cv-platform#7",
    # The Preview script's positional parameters: the comment flag when a token is bound.
    "@": "--post-github example/cv-platform#7",
}


def pipeline_commands(jenkinsfile: str) -> list[list[str]]:
    text = jenkinsfile.replace("\\\n", " ")
    commands = []
    for match in re.finditer(r"python -m pipeline ([^\n>'|]+)", text):
        line = match.group(1)
        for var, value in SHELL_VALUES.items():
            line = line.replace(f'"${var}"', value)
        words = shlex.split(line)
        if words[:2] == ["record", "ci"]:
            continue  # arguments assembled in Groovy; checked above
        commands.append(words)
    return commands


def test_every_pipeline_command_is_accepted_by_the_cli(jenkinsfile: str) -> None:
    commands = pipeline_commands(jenkinsfile)
    names = {tuple(c[:2]) if c[0] == "record" else (c[0],) for c in commands}
    assert names == {
        ("set-image",),
        ("record", "deploy"),
        ("history",),
        ("promote",),
        ("preview",),
    }
    parser = build_parser()
    for words in commands:
        assert "$" not in " ".join(words), words
        args = parser.parse_args(words)  # SystemExit (a failure) on an unknown flag
        assert args.command == words[0]


def test_deploys_record_result_times_image_and_commit(jenkinsfile: str) -> None:
    deploy = next(c for c in pipeline_commands(jenkinsfile) if c[:2] == ["record", "deploy"])
    args = build_parser().parse_args(deploy)
    assert (args.stack, args.result) == ("staging", "succeeded")
    assert args.image.endswith("@sha256:" + "a" * 64)
    assert args.started
    assert args.finished
    assert args.commit


def test_preview_is_online_with_credentials_else_offline(jenkinsfile: str) -> None:
    preview = [c for c in pipeline_commands(jenkinsfile) if c[0] == "preview"]
    parser = build_parser()
    online = [parser.parse_args(c) for c in preview if "--offline" not in c]
    offline = [parser.parse_args(c) for c in preview if "--offline" in c]
    assert len(online) == 1
    assert online[0].post_github == "example/cv-platform#7"
    assert len(offline) == 1
    assert offline[0].base == "origin/main"
    # Offline too, the comment is posted when the token is bound.
    assert offline[0].post_github == "example/cv-platform#7"
    assert 'set -- --post-github "$slug#$CHANGE_ID"' in jenkinsfile
    assert 'pulumi preview --stack "$stack" --policy-pack policy' in jenkinsfile


def test_staging_smoke_test_uses_the_model_servers_endpoints(
    jenkinsfile: str, project_root: Path
) -> None:
    assert "python model/smoke_test.py" in jenkinsfile
    smoke = (project_root / "model" / "smoke_test.py").read_text()
    for path in ("/healthz", "/readyz", "/predict", "/metrics"):
        assert f'"{path}"' in smoke


def test_init_script_and_seed_job_parse_as_groovy(
    parsed: dict[str, Any], groovy_files: dict[str, Path]
) -> None:
    assert set(parsed) == {str(p) for p in groovy_files.values()}


def test_promote_checks_the_approved_digest_under_both_locks(jenkinsfile: str) -> None:
    stage = stage_text(jenkinsfile, "Promote", "Deploy prod")
    order = [
        "lock('cv-platform-staging')",  # always staging first: no lock-order deadlock
        "lock('cv-platform-prod')",
        "python -m pipeline history staging",
        '[ "$candidate" != "$IMAGE_DIGEST" ]',
        "python -m pipeline promote --from staging --to prod",
    ]
    positions = [stage.index(text) for text in order]
    assert positions == sorted(positions)
