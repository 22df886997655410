"""The Jenkinsfile, parsed as Groovy (Debian's groovy, phase CONVERSION): orchestration
only (stages, when, input, credentials, locks, timeouts), every step's work a ci/
script, no empty environment entry, and an approval that holds no executor."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import build_parser
from tests.ci.jenkins import AST_SCRIPT, Jenkinsfile, java_home

LEAF_STAGES = [
    "Checkout",
    "Build",
    "Test",
    "Push",
    "Scan",
    "Set image (staging)",
    "Deploy staging",
    "Commit staging",
    "Smoke test",
    "Verify staging",
    "Preview",
    "Approve",
    "Promote",
    "Deploy prod",
    "Commit prod",
    "Verify prod",
]
GROUPS = {"CI", "Staging", "Release"}
# What the Staging group holds under its lock, in order.
STAGING = [
    "Set image (staging)",
    "Deploy staging",
    "Commit staging",
    "Smoke test",
    "Verify staging",
]
MAIN_ONLY = ["Commit staging", "Approve", "Release"]
NOT_FOR_PULL_REQUESTS = ["Push", "Scan", *STAGING]
SECRET_VARIABLES = (
    "REGISTRY_PASSWORD",
    "GITHUB_TOKEN",
    "PULUMI_CONFIG_PASSPHRASE",
    "KUBECONFIG",
    "PULUMI_ACCESS_TOKEN",
    "AWS_SHARED_CREDENTIALS_FILE",
)
# An sh step is a call of a ci/ script with literal arguments: orchestration only.
SCRIPT_STEP = re.compile(r"ci/[a-z-]+( [a-z]+| --[a-z-]+| --target \"\$STAGING_TARGET\")*")


def _block(text: str, start: int) -> str:
    """The ``{ ... }`` block whose opening brace is the first one at or after ``start``."""
    opening = text.index("{", start)
    depth = 0
    for index in range(opening, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[opening : index + 1]
    raise AssertionError(f"unclosed block at {opening}")


def _guards(jenkinsfile: Jenkinsfile, name: str) -> str:
    """The ``when`` conditions that apply to stage ``name``: its own and its groups'."""
    found = []
    stage: str | None = name
    while stage is not None:
        body = _block(jenkinsfile.text, jenkinsfile.text.index(f"stage('{stage}')"))
        if "when" in jenkinsfile.stages[stage].directives:
            found.append(_block(body, body.index("when {")))
        stage = jenkinsfile.stages[stage].parent
    return " ".join(" ".join(found).split())


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


def test_init_script_and_seed_job_parse_as_groovy(
    parsed: dict[str, Any], groovy_files: dict[str, Path]
) -> None:
    assert set(parsed) == {str(p) for p in groovy_files.values()}


def test_every_stage_exists_in_order(jenkinsfile: Jenkinsfile) -> None:
    names = [s["name"] for s in jenkinsfile.ast["stages"]]
    assert [n for n in names if n not in GROUPS] == LEAF_STAGES
    stages = jenkinsfile.stages
    in_ci = ["Checkout", "Build", "Test", "Push", "Scan", "Staging", "Preview"]
    assert {stages[n].parent for n in in_ci} == {"CI"}
    assert [n for n in names if stages[n].parent == "Staging"] == STAGING
    release = ("Promote", "Deploy prod", "Commit prod", "Verify prod")
    assert {stages[n].parent for n in release} == {"Release"}


def test_every_leaf_stage_has_a_timeout(jenkinsfile: Jenkinsfile) -> None:
    missing = [n for n in LEAF_STAGES if "timeout" not in jenkinsfile.stages[n].options]
    assert missing == []
    assert "timeout" in jenkinsfile.ast["pipelineOptions"]


def test_the_approval_holds_no_executor(jenkinsfile: Jenkinsfile) -> None:
    # A pipeline-level agent would keep its executor for the whole run, input included:
    # the stages that need one take it themselves, and the approval stage has none.
    assert jenkinsfile.ast["pipelineAgent"] == "none"
    approve = jenkinsfile.stages["Approve"]
    assert approve.agent == "none"
    assert "input" in approve.directives  # the stage-level input directive, not a step
    steps = jenkinsfile.text[jenkinsfile.text.index("stage('Approve')") :]
    approve_steps = steps[steps.index("steps {") : steps.index("stage('Release')")]
    assert "input" not in approve_steps
    # No other stage waits for input (which would hold that stage's executor).
    others = [n for n, s in jenkinsfile.stages.items() if n != "Approve" and "input" in s.calls]
    assert others == []
    assert approve.sh == ()
    # Its `when` is judged before the input: branch builds are not asked to approve.
    when = jenkinsfile.text[jenkinsfile.text.index("stage('Approve')") :]
    assert when.index("beforeInput true") < when.index("input {")
    for group in ("CI", "Release"):
        assert jenkinsfile.stages[group].agent == "label:cv-platform"
    assert jenkinsfile.stages["Staging"].agent is None  # on the CI group's agent
    release = jenkinsfile.text[jenkinsfile.text.index("stage('Release')") :]
    assert release.index("beforeAgent true") < release.index("stages {")


def test_release_starts_from_the_built_commit_and_the_ci_state(jenkinsfile: Jenkinsfile) -> None:
    # The release may run on another workspace than CI: it checks the commit out again
    # and takes the CI stages' state (build/ci/: digest, commit) from the stash.
    text = jenkinsfile.text
    stash = text.index("stash name: 'ci-state', includes: 'build/ci/**'")
    promote = text[text.index("stage('Promote')") :]
    assert stash < text.index("stage('Promote')")
    assert promote.index("checkout scm") < promote.index("unstash 'ci-state'")
    assert promote.index("unstash 'ci-state'") < promote.index("sh 'ci/promote staging prod'")


def test_no_environment_entry_is_empty(jenkinsfile: Jenkinsfile) -> None:
    # Jenkins removes a variable set to an empty value (hudson.EnvVars.override).
    assert jenkinsfile.ast["withEnv"] == []
    assert "withEnv(" not in jenkinsfile.text
    environment = jenkinsfile.environment
    assert environment  # the parse found the block
    assert all(value for value in environment.values()), environment
    assert not re.search(r"""['"][A-Z_][A-Z0-9_]*=['"]""", jenkinsfile.text)


def test_every_sh_step_runs_a_ci_script(jenkinsfile: Jenkinsfile, project_root: Path) -> None:
    scripts = jenkinsfile.ast["shScripts"]
    assert scripts, "the AST walk found no sh step"
    for script in scripts:
        assert "\n" not in script.strip(), script
        assert SCRIPT_STEP.fullmatch(script), script
        path = project_root / script.split()[0]
        assert path.is_file(), path
        assert os.access(path, os.X_OK), f"{path} is not executable"


def test_one_build_per_branch_and_one_deployment_per_stack(jenkinsfile: Jenkinsfile) -> None:
    assert "disableConcurrentBuilds" in jenkinsfile.ast["pipelineOptions"]
    locked = ("Promote", "Deploy prod", "Scan", "Verify prod")
    for name in locked:
        assert "lock" in jenkinsfile.stages[name].calls, name
    # Staging: one lock over the group, from setting the image to the end of the
    # verification; none inside it (the lock is not re-entrant: a second would wait forever).
    staging = jenkinsfile.stages["Staging"]
    assert set(staging.options) == {"timeout", "lock"}
    options = _block(
        jenkinsfile.text,
        jenkinsfile.text.index("options", jenkinsfile.text.index("stage('Staging')")),
    )
    # The timeout comes first, so it wraps the lock: a build waiting for staging gives up.
    # (Declarative nests a stage's option wrappers in the order written, the first
    # outermost: pipeline-model-definition's ModelInterpreter.recursiveWrappers.)
    assert options.index("timeout(") < options.index("lock('cv-platform-staging')")
    for name in STAGING:
        assert "lock" not in jenkinsfile.stages[name].calls, name
    assert set(re.findall(r"lock\('([^']+)'\)", jenkinsfile.text)) == {
        "cv-platform-staging",
        "cv-platform-prod",
        "cv-platform-scanner-db",
    }
    promote = jenkinsfile.text[jenkinsfile.text.index("stage('Promote')") :]
    # Always staging first: no lock-order deadlock with a staging deploy.
    assert promote.index("lock('cv-platform-staging')") < promote.index("lock('cv-platform-prod')")


def test_promotion_runs_on_main_only_and_pull_requests_only_preview(
    jenkinsfile: Jenkinsfile,
) -> None:
    for name in MAIN_ONLY:
        assert "branch 'main'" in _guards(jenkinsfile, name), name
    for name in NOT_FOR_PULL_REQUESTS:
        assert "not { changeRequest() }" in _guards(jenkinsfile, name), name
    assert _guards(jenkinsfile, "Preview") == "{ changeRequest() }"
    # A pull request skips the Staging group before its options: it never waits for the lock.
    staging = _guards(jenkinsfile, "Staging")
    assert staging.startswith("{ beforeOptions true ")


def test_credentials_only_through_bindings_per_step(jenkinsfile: Jenkinsfile) -> None:
    # No environment { X = credentials(...) }: that binds for the whole run.
    assert "credentials(" not in jenkinsfile.text
    ids = {b.credential for found in jenkinsfile.bindings.values() for b in found}
    assert ids == {
        "registry-push",
        "github-token",
        "pulumi-config-passphrase",
        "kubeconfig",
        "pulumi-backend-credentials",
        "pulumi-access-token",
    }
    bound = {name: {b.credential for b in jenkinsfile.stage_bindings(name)} for name in LEAF_STAGES}
    assert bound["Build"] == bound["Test"] == bound["Checkout"] == set()
    for name in ("Push", "Scan", "Set image (staging)", "Promote"):
        assert bound[name] == {"registry-push"}, name
    for name in ("Deploy staging", "Deploy prod", "Smoke test"):
        assert "pulumi-config-passphrase" in bound[name], name
        assert "github-token" not in bound[name], name
    for name in ("Commit staging", "Commit prod"):
        assert bound[name] == {"github-token"}, name
    assert bound["Verify staging"] == set()
    # Prod's verification may roll back: then it deploys (pulumi) and commits (github).
    assert {"pulumi-config-passphrase", "kubeconfig", "github-token"} <= bound["Verify prod"]


def test_secrets_are_never_interpolated(jenkinsfile: Jenkinsfile) -> None:
    # Groovy interpolates "...${x}..." before the shell sees it: no secret may be named
    # in one; the scripts read secrets from their environment.
    assert jenkinsfile.ast["gstrings"], "the AST walk found no interpolated strings at all"
    for text in jenkinsfile.ast["gstrings"]:
        for var in SECRET_VARIABLES:
            assert var not in text, text
    for var in SECRET_VARIABLES:
        assert f"${var}" not in jenkinsfile.text
        assert f"${{{var}}}" not in jenkinsfile.text


def test_junit_is_published_and_the_ci_run_recorded_always(jenkinsfile: Jenkinsfile) -> None:
    ci = jenkinsfile.text[
        jenkinsfile.text.index("stage('CI')") : jenkinsfile.text.index("stage('Approve')")
    ]
    post = ci[ci.rindex("            post {") :]
    always = post[post.index("always") :]
    assert "junit testResults: 'build/junit/*.xml', allowEmptyResults: true" in always
    catch = always.index("catchError(buildResult: 'UNSTABLE'")
    assert catch < always.index("sh 'ci/record-ci'")


def test_the_image_evidence_is_archived_always(jenkinsfile: Jenkinsfile) -> None:
    ci = jenkinsfile.text[
        jenkinsfile.text.index("stage('CI')") : jenkinsfile.text.index("stage('Approve')")
    ]
    always = ci[ci.rindex("            post {") :]
    assert "archiveArtifacts artifacts: 'build/ci/model-card.json, build/scan/*.json'," in always
    assert "allowEmptyArchive: true" in always


def test_the_pushed_digest_is_scanned_before_staging_runs_it(jenkinsfile: Jenkinsfile) -> None:
    names = [s["name"] for s in jenkinsfile.ast["stages"]]
    assert names.index("Push") < names.index("Scan") < names.index("Set image (staging)")
    assert jenkinsfile.stages["Scan"].sh == ("ci/scan",)
    scan = jenkinsfile.text[jenkinsfile.text.index("stage('Scan')") :]
    assert scan.index("lock('cv-platform-scanner-db')") < scan.index("sh 'ci/scan'")


def test_the_scanner_db_job_refreshes_under_the_scan_lock_on_a_schedule(
    parsed: dict[str, Any], groovy_files: dict[str, Path]
) -> None:
    tree = parsed[str(groovy_files["scanner-db"])]
    assert isinstance(tree, dict)
    job = Jenkinsfile(groovy_files["scanner-db"].read_text(), tree)
    (stage,) = job.stages.values()
    assert stage.sh == ("ci/scanner-db",)
    assert "timeout" in stage.options
    assert {"lock", "checkout"} <= set(stage.calls)
    assert job.ast["pipelineAgent"] == "label:cv-platform"
    assert {"disableConcurrentBuilds", "timeout"} <= set(job.ast["pipelineOptions"])
    assert "lock('cv-platform-scanner-db')" in job.text
    assert all(SCRIPT_STEP.fullmatch(s) for s in job.ast["shScripts"])
    seed = groovy_files["seed"].read_text()
    block = seed[seed.index("pipelineJob('cv-platform-scanner-db')") :]
    assert "cron { spec('H H/6 * * *') }" in block
    assert "scriptPath('Jenkinsfile.scanner-db')" in block
    assert "branch('*/main')" in block


def test_preview_artifact_is_archived_even_when_the_preview_fails(
    jenkinsfile: Jenkinsfile,
) -> None:
    preview = jenkinsfile.text[jenkinsfile.text.index("stage('Preview')") :]
    post = preview[preview.index("post {") :]
    assert post.index("always") < post.index("archiveArtifacts artifacts: 'build/preview.md'")
    assert "archiveArtifacts" not in preview[: preview.index("post {")]


def test_stack_files_are_committed_back_after_successful_deploys(jenkinsfile: Jenkinsfile) -> None:
    names = [s["name"] for s in jenkinsfile.ast["stages"]]
    # ci/deploy fails the stage when pulumi up failed, so Commit follows success only.
    assert names.index("Deploy staging") < names.index("Commit staging")
    assert names.index("Deploy prod") < names.index("Commit prod")
    assert jenkinsfile.stages["Commit staging"].sh == ("ci/commit-stack staging",)
    assert jenkinsfile.stages["Commit prod"].sh == ("ci/commit-stack prod",)


def test_deploy_bot_commits_do_not_start_a_build(jenkinsfile: Jenkinsfile) -> None:
    checkout = jenkinsfile.stages["Checkout"]
    assert checkout.sh == ("ci/bot-only", "ci/begin")
    assert "error" in checkout.calls
    text = jenkinsfile.text[jenkinsfile.text.index("stage('Checkout')") :]
    assert text.index("checkout scm") < text.index("ci/bot-only") < text.index("ci/begin")


def test_staging_deploys_only_the_model_environment_and_prod_everything(
    jenkinsfile: Jenkinsfile,
) -> None:
    assert jenkinsfile.stages["Deploy staging"].sh == (
        'ci/deploy staging --target "$STAGING_TARGET"',
    )
    assert jenkinsfile.environment["STAGING_TARGET"] == (
        "urn:pulumi:staging::cv-platform::cv-platform:environment:ModelEnvironment**"
    )
    assert jenkinsfile.stages["Deploy prod"].sh == ("ci/deploy prod",)


def _pipeline_commands(project_root: Path) -> list[tuple[str, list[str]]]:
    """Every `ci_pipeline ...` line of the ci/ scripts, its shell values filled in."""
    values = {
        '"$1"': "staging",
        '"$stack"': "staging",
        '"$source_stack"': "staging",
        '"$target_stack"': "prod",
        '"$IMAGE_REPOSITORY:$tag"': "registry.example.internal/cv-platform/model-server:9f3c2ab",
        '"$result"': "succeeded",
        '"$started"': "2026-01-01T00:00:00Z",
        '"$finished"': "2026-01-01T00:05:00Z",
        '"$commit"': "0123456789abcdef0123456789abcdef01234567",
        '"${args[@]}"': "--post-github example/cv-platform#7",
        '"$ref"': "registry.example.internal/cv-platform/model-server:9f3c2ab@sha256:" + "0" * 64,
        '"$report"': "build/scan/trivy.json",
    }
    per_script = {
        "record-ci": {'"${args[@]}"': "--junit build/junit/model.xml"},
        "promote": {'"$@"': "--skip-gate vulnerabilities"},  # what the rehearsal passes
        "verify": {
            '"${args[@]}"': "prod --prometheus http://127.0.0.1:9090",
            '"$@"': "--rollback-on-failure",
        },
    }
    found = []
    for script in sorted((project_root / "ci").iterdir()):
        text = script.read_text().replace("\\\n", " ")
        for match in re.finditer(r"^\s*(?:[a-z]+=\"\$\()?ci_pipeline ([^\n|>)]+)", text, re.M):
            line = match.group(1)
            for var, value in {**values, **per_script.get(script.name, {})}.items():
                line = line.replace(var, value)
            found.append((script.name, shlex.split(line)))
    return found


def test_every_pipeline_command_of_the_scripts_is_accepted_by_the_cli(project_root: Path) -> None:
    commands = _pipeline_commands(project_root)
    names = {(script, words[0]) for script, words in commands}
    assert names >= {
        ("set-image", "set-image"),
        ("deploy", "record"),
        ("promote", "history"),
        ("promote", "promote"),
        ("preview", "preview"),
        ("record-ci", "record"),
        ("scan", "record"),
        ("verify", "verify"),
    }
    parser = build_parser()
    for script, words in commands:
        assert "$" not in " ".join(words), (script, words)
        args = parser.parse_args(words)  # SystemExit (a failure) on an unknown flag
        assert args.command == words[0]


def test_staging_is_verified_after_its_smoke_test_and_prod_after_its_deploy(
    jenkinsfile: Jenkinsfile,
) -> None:
    names = [s["name"] for s in jenkinsfile.ast["stages"]]
    assert names.index("Smoke test") < names.index("Verify staging") < names.index("Approve")
    assert names.index("Commit prod") < names.index("Verify prod")
    assert jenkinsfile.stages["Verify staging"].sh == ("ci/verify staging",)
    verify = jenkinsfile.text[jenkinsfile.text.index("stage('Verify prod')") :]
    steps, post = verify[: verify.index("post {")], verify[verify.index("post {") :]
    assert "sh 'ci/verify prod --rollback-on-failure'" in steps
    # The rolled-back file is committed when the verification failed, and only once
    # ci/verify deployed it (its marker: tests/ci/test_stage_scripts.py).
    assert post.index("failure {") < post.index("sh 'ci/commit-stack prod --if-redeployed'")
