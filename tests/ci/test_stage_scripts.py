"""Each stage of the Jenkinsfile, run as Jenkins runs it (tests/ci/jenkins.py): the
stage's own ``sh`` steps and credential bindings, empty values removed, ``sh -xe``,
no TTY, a workspace path with a space; with every optional credential absent and
with each present. git, skopeo, the registry, the record store and the pipeline CLI
are real; ``pulumi`` and ``buildctl`` are stand-ins that behave as the real ones do
where the scripts depend on it (tests/ci/stubs)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.stacks.stackfile import read_image
from tests.ci.jenkins import BOT_EMAIL, Agent
from tests.github_fake import TOKEN as GITHUB_TOKEN
from tests.github_fake import FakeGitHub, github_api, github_server
from tests.prometheus_fake import FakePrometheus, prometheus_api
from tests.registry_fixture import OCI_MANIFEST, OciLayoutBuilder, RegistryServer

__all__ = ["github_api", "github_server", "prometheus_api"]  # fixtures, imported

BACKEND = "s3://cv-platform-pulumi-state?region=eu-west-1"
PASSPHRASE = "correct horse battery staple"
KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\n"
TARGET = "urn:pulumi:staging::cv-platform::cv-platform:environment:ModelEnvironment**"
UNSET: dict[str, Any] = {
    "registry-push": None,
    "github-token": ("x-access-token", None),
    "pulumi-config-passphrase": None,
    "kubeconfig": None,
    "pulumi-backend-credentials": None,
    "pulumi-access-token": None,
}


def all_set(registry: RegistryServer | None = None) -> dict[str, Any]:
    return {
        "registry-push": (registry.user, registry.password) if registry else ("ci", "pw"),
        "github-token": ("x-access-token", GITHUB_TOKEN),
        "pulumi-config-passphrase": PASSPHRASE,
        "kubeconfig": KUBECONFIG,
        "pulumi-backend-credentials": "[default]\naws_access_key_id = AKIA\n",
        "pulumi-access-token": "pul-0123456789",
    }


def clean(done: subprocess.CompletedProcess[str]) -> None:
    """No script may die on an unset variable, whatever the inputs."""
    assert "unbound variable" not in done.stderr, done.stderr


def last_error(done: subprocess.CompletedProcess[str]) -> str:
    """The script's own one-line message (sh -x trace lines start with '+')."""
    lines = [ln for ln in done.stderr.splitlines() if not ln.startswith("+")]
    return lines[-1] if lines else ""


@pytest.fixture
def layout(tmp_path: Path) -> OciLayoutBuilder:
    """What the stand-in buildctl writes as the build's OCI archive."""
    builder = OciLayoutBuilder(tmp_path / "oci")
    builder.tag("built", builder.image(b"model built by ci/build\n"), OCI_MANIFEST)
    return builder


def configure(agent: Agent, registry: RegistryServer, layout: OciLayoutBuilder) -> None:
    """The agent's environment (infra/jenkins.py sets it) and a branch build of main."""
    agent.agent_env = {
        "IMAGE_REPOSITORY": f"{registry.host}/cv/ci-model",
        "PIPELINE_STORE": str(agent.root / "records.db"),
        "PULUMI_BACKEND_URL": BACKEND,
        "BUILDKIT_HOST": "tcp://buildkitd:1234",
        "STUB_OCI_LAYOUT": str(layout.path),
    }
    agent.job_env = {
        "BRANCH_NAME": "main",
        "BUILD_URL": "http://jenkins:8080/job/cv-platform/job/main/7/",
        "CI_RETRY_SECONDS": "0",
    }


@pytest.fixture
def ci(agent: Agent, registry_server: RegistryServer, layout: OciLayoutBuilder) -> Agent:
    configure(agent, registry_server, layout)
    agent.credentials = all_set(registry_server)
    return agent


def begin(agent: Agent) -> None:
    assert agent.sh("ci/bot-only").returncode == 1  # an ordinary commit: built
    done = agent.sh("ci/begin")
    assert done.returncode == 0, done.stderr


def through(agent: Agent, *stages: str) -> None:
    begin(agent)
    for stage in stages:
        done = agent.stage(stage)
        assert done.returncode == 0, (stage, done.stderr[-3000:])


def history(agent: Agent, stack: str) -> list[dict[str, Any]]:
    """The stack's events in the agent's record store ([] when nothing was recorded)."""
    if not (agent.root / "records.db").exists():
        return []
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "history", stack, "--json"],
        cwd=agent.workspace,
        env={"PIPELINE_STORE": str(agent.root / "records.db"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    events: list[dict[str, Any]] = json.loads(proc.stdout)
    return events


# --- Checkout -------------------------------------------------------------------------


def test_begin_empties_build_and_starts_the_state(agent: Agent) -> None:
    stale = agent.workspace / "build" / "junit" / "old.xml"
    stale.parent.mkdir(parents=True)
    stale.write_text("<testsuite/>")
    built = agent.git("rev-parse", "HEAD")
    done = agent.stage("Checkout")  # ci/bot-only exits 1 for an ordinary commit
    assert done.returncode == 1
    done = agent.sh("ci/begin")
    assert done.returncode == 0, done.stderr
    assert not stale.exists()
    assert agent.state("commit") == agent.state("image-tag") == built
    assert agent.state("started").endswith("Z")


# --- Build, Push, Set image -------------------------------------------------------------


def test_build_with_buildkit_writes_the_oci_archive(ci: Agent) -> None:
    through(ci, "Build")
    card, image = ci.stub_calls("buildctl")
    assert "target=card" in card["argv"]
    assert "type=local,dest=build/card" in card["argv"]
    argv = image["argv"]
    assert argv[:3] == ["--addr", "tcp://buildkitd:1234", "build"]
    assert "context=model" in argv
    assert "dockerfile=model" in argv
    assert not any(a.startswith("target=") for a in argv)  # the served image: the last stage
    tag = ci.state("image-tag")
    assert (
        f"type=oci,dest=build/model-image.oci.tar,name={ci.agent_env['IMAGE_REPOSITORY']}:{tag}"
        in argv
    )
    assert (ci.workspace / "build" / "model-image.oci.tar").stat().st_size > 0
    assert ci.state("image-source") == "oci-archive:build/model-image.oci.tar"
    assert float(ci.state("build-seconds")) >= 0


def test_build_labels_the_image_with_its_model_card(ci: Agent) -> None:
    import hashlib

    through(ci, "Build")
    card = ci.workspace / "build" / "ci" / "model-card.json"
    assert json.loads(card.read_text())["model"]["version"] == "1.0.0+0123456789ab"
    _, image = ci.stub_calls("buildctl")
    build_args = [a.removeprefix("build-arg:") for a in image["argv"] if a.startswith("build-arg:")]
    assert build_args == [
        "MODEL_CARD_NAME=digits",
        "MODEL_CARD_VERSION=1.0.0+0123456789ab",
        "MODEL_CARD_ACCURACY=0.9711",
        f"MODEL_CARD_SHA256={hashlib.sha256(card.read_bytes()).hexdigest()}",
    ]


def test_a_malformed_model_card_fails_the_build_in_one_line(ci: Agent) -> None:
    bad = ci.root / "bad-card.json"
    bad.write_text('{"model": {"name": "digits", "version": "1.0"}, "metrics": {"accuracy": 0.9}}')
    begin(ci)
    done = ci.stage("Build", STUB_MODEL_CARD=str(bad))
    clean(done)
    assert done.returncode == 1
    assert last_error(done) == (
        "ci/build: the model card is not usable: model-card.json: signature is required"
    )
    assert len(ci.stub_calls("buildctl")) == 1  # the image itself is not built


def test_build_without_image_repository_names_it(ci: Agent) -> None:
    begin(ci)
    ci.agent_env["IMAGE_REPOSITORY"] = None
    done = ci.stage("Build")
    clean(done)
    assert done.returncode == 1
    assert last_error(done).startswith("ci/build: IMAGE_REPOSITORY is not set:")
    assert ci.stub_calls("buildctl") == []


def test_push_copies_the_archive_and_keeps_the_pushed_digest(
    ci: Agent, registry_server: RegistryServer, layout: OciLayoutBuilder
) -> None:
    through(ci, "Build", "Push")
    tag = ci.state("image-tag")
    digest = ci.state("image-digest")
    assert digest == registry_server.skopeo_digest("cv/ci-model", tag)
    assert ci.state("image-ref") == f"{registry_server.host}/cv/ci-model:{tag}@{digest}"
    # The login file lived only as long as the step.
    assert not list((ci.workspace_tmp).glob("push.*"))


def test_push_without_the_registry_login_fails_as_the_registry_says(ci: Agent) -> None:
    through(ci, "Build")
    ci.credentials["registry-push"] = None
    done = ci.stage("Push")
    clean(done)
    assert done.returncode != 0
    assert "no registry login bound" in done.stderr
    assert "authentication required" in done.stderr.lower() or "401" in done.stderr


def test_set_image_pins_staging_to_the_pushed_digest(ci: Agent) -> None:
    through(ci, "Build", "Push", "Set image (staging)")
    text = (ci.workspace / "Pulumi.staging.yaml").read_text()
    assert f"digest: {ci.state('image-digest')}" in text
    assert f"repository: {ci.agent_env['IMAGE_REPOSITORY']}" in text
    assert f"tag: {ci.state('image-tag')}" in text


def test_registry_password_never_reaches_the_log(
    ci: Agent, registry_server: RegistryServer
) -> None:
    begin(ci)
    for stage in ("Build", "Push", "Set image (staging)"):
        done = ci.stage(stage)
        assert done.returncode == 0, done.stderr
        assert registry_server.password not in done.stdout + done.stderr


LOGIN_CHECK = """#!/usr/bin/env bash
. "$(dirname "$0")/lib.sh"
ci_registry_login
stat -c "%a $CI_AUTHFILE" "$CI_AUTHFILE"
"$PYTHON" - "$1" <<'PY'
import os, sys
from pathlib import Path
from pipeline.images.credentials import docker_credentials
found = docker_credentials(sys.argv[1], Path(os.environ["DOCKER_CONFIG"]) / "config.json")
wanted = (os.environ["REGISTRY_USER"], os.environ["REGISTRY_PASSWORD"])
print(found is not None and (found.username, found.password) == wanted)
PY
"""


def test_registry_login_is_a_private_file_pipeline_reads_and_removes(
    ci: Agent, registry_server: RegistryServer
) -> None:
    check = ci.workspace / "ci" / "login-check"  # in the workspace only, beside lib.sh
    check.write_text(LOGIN_CHECK)
    check.chmod(0o755)
    done = ci.sh(f"ci/login-check {registry_server.host}", ci.jenkinsfile.stage_bindings("Push"))
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()[:2]
    mode, path = first.split(" ", 1)
    assert mode == "600"
    assert second == "True"
    assert not Path(path).exists()  # removed when the script exited
    assert registry_server.password not in done.stdout + done.stderr


# --- Deploy ---------------------------------------------------------------------------


def test_staging_deploy_targets_the_model_environment_and_records_it(ci: Agent) -> None:
    begin(ci)
    done = ci.stage("Deploy staging")
    assert done.returncode == 0, done.stderr
    (call,) = ci.stub_calls("pulumi")
    assert call["argv"] == [
        "up", "--stack", "staging", "--yes", "--non-interactive", "--skip-preview",
        "--target", TARGET,
    ]  # fmt: skip
    assert call["env"]["PULUMI_BACKEND_URL"] == BACKEND
    assert call["env"]["PULUMI_CONFIG_PASSPHRASE"] is True
    (deployment,) = [e for e in history(ci, "staging") if e["event"] == "deployment"]
    assert deployment["result"] == "succeeded"
    assert deployment["commit"] == ci.state("commit")
    committed = (ci.workspace / "Pulumi.staging.yaml").read_text()
    assert deployment["digest"] in committed  # the image the stack file pins


def test_prod_deploy_runs_pulumi_up_without_a_target(ci: Agent) -> None:
    begin(ci)
    done = ci.stage("Deploy prod")
    assert done.returncode == 0, done.stderr
    (call,) = ci.stub_calls("pulumi")
    assert call["argv"] == [
        "up", "--stack", "prod", "--yes", "--non-interactive", "--skip-preview",
    ]  # fmt: skip
    assert "--target" not in call["argv"]


@pytest.mark.parametrize("stage", ["Deploy staging", "Deploy prod"])
def test_deploy_with_optional_credentials_absent_still_runs(ci: Agent, stage: str) -> None:
    # Passphrase, backend credentials and token unset: the committed stack files hold
    # no encrypted value, the backend's credentials come from the host, so pulumi runs.
    begin(ci)
    ci.credentials = {**UNSET, "kubeconfig": KUBECONFIG}
    done = ci.stage(stage)
    clean(done)
    assert done.returncode == 0, done.stderr
    (call,) = ci.stub_calls("pulumi")
    assert set(call["env"]) == {"PULUMI_BACKEND_URL", "KUBECONFIG"}  # the empty files dropped
    assert "AWS_SHARED_CREDENTIALS_FILE names an empty file" in done.stderr


def test_deploy_without_a_backend_says_so_and_runs_nothing(ci: Agent) -> None:
    begin(ci)
    ci.agent_env["PULUMI_BACKEND_URL"] = ""  # what Jenkins does with an empty value
    done = ci.stage("Deploy prod")
    clean(done)
    assert done.returncode == 1
    assert last_error(done).startswith("ci/deploy: PULUMI_BACKEND_URL is not set:")
    assert "tooling.jenkins.pulumiBackendUrl" in last_error(done)
    assert ci.stub_calls("pulumi") == []
    assert history(ci, "prod") == []


def test_the_stand_in_fails_as_pulumi_does_without_a_backend(ci: Agent) -> None:
    # What the check above prevents: pulumi itself falls back to Pulumi Cloud.
    done = ci.sh("pulumi up --stack prod --yes --non-interactive", PULUMI_BACKEND_URL=None)
    assert done.returncode == 255
    assert "PULUMI_ACCESS_TOKEN must be set" in done.stderr


def test_encrypted_stack_without_passphrase_is_one_line(ci: Agent) -> None:
    begin(ci)
    stack = ci.workspace / "Pulumi.prod.yaml"
    stack.write_text(
        "encryptionsalt: v1:c2FsdA==:v1:Qk5Q+Pn3sGa4k7aT:kJ6WmnVbJ1mN0Qf1A2xwRw==\n"
        + stack.read_text()
    )
    ci.credentials["pulumi-config-passphrase"] = None
    done = ci.stage("Deploy prod")
    clean(done)
    assert done.returncode == 1
    assert "ci/deploy: Pulumi.prod.yaml holds secrets encrypted with a passphrase" in last_error(
        done
    )
    assert ci.stub_calls("pulumi") == []


def test_a_failed_pulumi_up_is_recorded_as_failed_and_fails_the_stage(ci: Agent) -> None:
    begin(ci)
    done = ci.stage("Deploy staging", STUB_PULUMI_UP_EXIT="2")
    assert done.returncode == 1
    assert last_error(done) == (
        "ci/deploy: pulumi up -s staging failed (exit 2); recorded as a failed deployment"
    )
    (deployment,) = [e for e in history(ci, "staging") if e["event"] == "deployment"]
    assert deployment["result"] == "failed"


def test_deploy_without_any_kubeconfig_says_which_credential(ci: Agent) -> None:
    begin(ci)
    ci.credentials["kubeconfig"] = None
    done = ci.stage("Deploy staging")
    clean(done)
    assert done.returncode == 1
    assert "set jenkinsKubeconfig (credential kubeconfig)" in last_error(done)


# --- Smoke test -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real model server app (trained now), served on loopback in a thread."""
    from werkzeug.serving import make_server

    model_dir = Path(__file__).resolve().parents[2] / "model"
    sys.path.insert(0, str(model_dir))
    try:
        from model_server.app import create_app
        from model_server.classifier import train
    finally:
        sys.path.remove(str(model_dir))
    app = create_app(model=train().model)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_smoke_test_calls_the_configured_staging_url(ci: Agent, model_server: str) -> None:
    ci.agent_env["STAGING_SMOKE_URL"] = model_server
    done = ci.stage("Smoke test")
    assert done.returncode == 0, done.stderr
    assert "smoke test passed" in done.stdout
    assert ci.stub_calls("pulumi") == []


def test_smoke_test_falls_back_to_the_stack_output(ci: Agent, model_server: str) -> None:
    ci.credentials = dict(UNSET)
    done = ci.stage("Smoke test", STUB_SERVICE_URL=model_server)
    clean(done)
    assert done.returncode == 0, done.stderr
    (call,) = ci.stub_calls("pulumi")
    assert call["argv"] == ["stack", "output", "serviceUrl", "--stack", "staging"]


def test_smoke_test_failure_fails_the_stage(ci: Agent) -> None:
    ci.agent_env["STAGING_SMOKE_URL"] = "http://127.0.0.1:9"  # nothing listens (discard)
    done = ci.stage("Smoke test")
    assert done.returncode == 1
    assert last_error(done).startswith("FAIL /healthz:")


# --- Promote ---------------------------------------------------------------------------


def test_promote_refuses_when_staging_moved_on_since_approval(ci: Agent) -> None:
    through(ci, "Build", "Push", "Set image (staging)", "Deploy staging")
    # Another build deploys another image to staging during the approval wait.
    other = "sha256:" + "b" * 64
    # Later than the stage's own record, and within the clock skew a record may have.
    later = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    done = ci.sh(
        "python -m pipeline record deploy --stack staging --result succeeded "
        f"--image {ci.agent_env['IMAGE_REPOSITORY']}@{other} "
        f"--started {later} --finished {later}"
    )
    assert done.returncode == 0, done.stderr
    before = (ci.workspace / "Pulumi.prod.yaml").read_bytes()
    done = ci.stage("Promote")
    assert done.returncode == 1
    assert f"staging's last good deployment is {other}, not {ci.state('image-digest')}" in (
        last_error(done)
    )
    assert (ci.workspace / "Pulumi.prod.yaml").read_bytes() == before


def test_promote_runs_the_gates_for_the_approved_image(ci: Agent) -> None:
    through(ci, "Build", "Push", "Set image (staging)", "Deploy staging")
    before = (ci.workspace / "Pulumi.prod.yaml").read_bytes()
    done = ci.stage("Promote")
    # The check let promote run; its soak gate refuses a deployment minutes old.
    assert "not promoting" not in done.stderr
    assert done.returncode == 3, done.stderr
    assert "soak" in done.stdout + done.stderr
    assert (ci.workspace / "Pulumi.prod.yaml").read_bytes() == before


def test_promote_without_the_push_state_says_what_to_run(ci: Agent) -> None:
    begin(ci)
    done = ci.stage("Promote")
    clean(done)
    assert done.returncode == 1
    assert last_error(done) == "ci/promote: build/ci/image-digest is missing: run ci/push first"


# --- Verify ----------------------------------------------------------------------------


def verification(agent: Agent, stack: str, url: str) -> None:
    """The workspace's stack file asks ``url`` over a 2 s window (the test's own values)."""
    path = agent.workspace / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["cv-platform:verification"] = {
        "required": stack == "staging",
        "prometheusUrl": url,
        "window": "2s",
        "minRequests": 10,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def deployed(agent: Agent, stack: str, image: str, hours_ago: float = 1) -> None:
    finished = datetime.now(UTC) - timedelta(hours=hours_ago)
    times = f"--started {finished - timedelta(minutes=3):%Y-%m-%dT%H:%M:%SZ} "
    times += f"--finished {finished:%Y-%m-%dT%H:%M:%SZ}"
    record = f"python -m pipeline record deploy --stack {stack} --result succeeded"
    done = agent.sh(f"{record} --image {image} {times}")
    assert done.returncode == 0, done.stderr


STAGED = "registry.example.internal/cv-platform/model-server:9f3c2ab@sha256:" + "5" * 64


def test_verify_staging_asks_the_stacks_prometheus_and_records_a_pass(
    ci: Agent, prometheus_api: FakePrometheus
) -> None:
    begin(ci)
    verification(ci, "staging", prometheus_api.url)
    deployed(ci, "staging", STAGED)
    done = ci.stage("Verify staging")
    clean(done)
    assert done.returncode == 0, done.stderr
    assert "verified staging (sha256:555555555555): 2033 requests" in done.stdout
    selector = 'namespace="cv-staging",app="model-server",version="9f3c2ab"'
    assert selector in prometheus_api.queries[0]
    (check,) = [e for e in history(ci, "staging") if e["event"] == "verification"]
    assert check["result"] == "passed"


def test_prometheus_url_replaces_the_stack_setting(
    ci: Agent, prometheus_api: FakePrometheus
) -> None:
    begin(ci)
    verification(ci, "staging", "http://127.0.0.1:9")  # nothing listens there
    deployed(ci, "staging", STAGED)
    ci.agent_env["PROMETHEUS_URL"] = prometheus_api.url
    done = ci.stage("Verify staging")
    assert done.returncode == 0, done.stderr
    assert prometheus_api.queries


def test_verify_without_a_reachable_prometheus_is_one_line_and_records_nothing(
    ci: Agent,
) -> None:
    begin(ci)
    verification(ci, "staging", "http://127.0.0.1:9")
    deployed(ci, "staging", STAGED)
    ci.agent_env["PROMETHEUS_URL"] = ""  # what Jenkins does with an empty value
    done = ci.stage("Verify staging")
    clean(done)
    assert done.returncode == 1
    assert last_error(done) == (
        "python -m pipeline verify: error: cannot reach Prometheus at 127.0.0.1:9: "
        "connection refused; nothing recorded"
    )
    assert [e for e in history(ci, "staging") if e["event"] == "verification"] == []


def failed_prod_verification(ci: Agent, url: str, prometheus_api: FakePrometheus) -> str:
    """prod's last verified digest (returned) and a newer deployment about to fail."""
    begin(ci)
    verification(ci, "prod", url)
    repo = "registry.example.internal/cv-platform/model-server"
    good = "sha256:" + "6" * 64
    bad = read_image(ci.workspace / "Pulumi.prod.yaml").digest
    deployed(ci, "prod", f"{repo}:6a6a6a6@{good}", hours_ago=5)
    prometheus_api.error_ratio = "0"
    assert ci.sh("ci/verify prod").returncode == 0  # good was verified in its day
    deployed(ci, "prod", f"{repo}:4e1d07c@{bad}")
    prometheus_api.error_ratio = "0.5"
    return good


def verify_prod_post_failure(ci: Agent) -> subprocess.CompletedProcess[str]:
    """Verify prod's post-failure step, as the Jenkinsfile has it."""
    *_, post = ci.jenkinsfile.stages["Verify prod"].sh
    assert post.startswith("ci/commit-stack prod"), post
    return ci.sh(post, ci.jenkinsfile.stage_bindings("Verify prod"))


def test_a_failed_prod_verification_rolls_back_deploys_and_commits_the_file(
    ci: Agent, prometheus_api: FakePrometheus
) -> None:
    good = failed_prod_verification(ci, prometheus_api.url, prometheus_api)
    done = ci.stage("Verify prod")
    clean(done)
    assert done.returncode == 3
    assert "error ratio 50.00% > 1.00%" in done.stderr
    assert "prod failed its verification and Pulumi.prod.yaml was rolled back: deploying it" in (
        done.stderr
    )
    assert read_image(ci.workspace / "Pulumi.prod.yaml").digest == good
    (call,) = ci.stub_calls("pulumi")
    assert call["argv"][:3] == ["up", "--stack", "prod"]
    events = history(ci, "prod")
    assert {e["event"] for e in events[:4]} == {"deployment", "hold", "rollback", "verification"}
    redeploy = next(e for e in events if e["event"] == "deployment")  # the newest
    assert (redeploy["digest"], redeploy["result"]) == (good, "succeeded")
    # The Jenkinsfile then commits the rolled-back file (Verify prod's post, on failure).
    done = verify_prod_post_failure(ci)
    assert done.returncode == 0, done.stderr
    assert f"cv-platform:image -> {good}" in ci.git("log", "-1", "--format=%s", ci.origin_main())
    body = ci.git("log", "-1", "--format=%B", ci.origin_main())
    assert "succeeded with this file (the rollback after a failed verification)" in body


def test_a_rolled_back_file_whose_deploy_fails_is_not_committed(
    ci: Agent, prometheus_api: FakePrometheus
) -> None:
    good = failed_prod_verification(ci, prometheus_api.url, prometheus_api)
    done = ci.stage("Verify prod", STUB_PULUMI_UP_EXIT="2")
    clean(done)
    assert done.returncode == 1
    assert last_error(done) == (
        "ci/verify: Pulumi.prod.yaml was rolled back and prod is on hold, but deploying it "
        "failed: run ci/deploy prod"
    )
    assert read_image(ci.workspace / "Pulumi.prod.yaml").digest == good
    assert not (ci.workspace / "build" / "ci" / "redeployed-prod").exists()
    pushed = ci.origin_main()
    done = verify_prod_post_failure(ci)
    clean(done)
    assert done.returncode == 0, done.stderr
    said = [ln for ln in done.stderr.splitlines() if not ln.startswith("+")]
    assert said == [
        "ci/commit-stack: Pulumi.prod.yaml is not a rolled-back file ci/verify deployed (no "
        "build/ci/redeployed-prod for it): nothing committed, git keeps the last file pulumi "
        "up succeeded with"
    ]
    assert ci.origin_main() == pushed
    assert ci.git("diff", "--name-only", "HEAD", "--", "Pulumi.prod.yaml") == "Pulumi.prod.yaml"


def test_a_marker_from_an_earlier_verify_commits_nothing(
    ci: Agent, prometheus_api: FakePrometheus
) -> None:
    failed_prod_verification(ci, prometheus_api.url, prometheus_api)
    marker = ci.workspace / "build" / "ci" / "redeployed-prod"
    marker.write_text("0" * 64 + "\n")  # a workspace's leftover: not this file's
    assert ci.stage("Verify prod", STUB_PULUMI_UP_EXIT="2").returncode == 1
    assert not marker.exists()
    pushed = ci.origin_main()
    assert verify_prod_post_failure(ci).returncode == 0
    assert ci.origin_main() == pushed


def test_a_failed_verification_without_rollback_deploys_nothing(
    ci: Agent, prometheus_api: FakePrometheus
) -> None:
    begin(ci)
    verification(ci, "staging", prometheus_api.url)
    deployed(ci, "staging", STAGED)
    prometheus_api.p95_seconds = "0.975"
    before = (ci.workspace / "Pulumi.staging.yaml").read_bytes()
    done = ci.stage("Verify staging")
    assert done.returncode == 3
    assert "p95 latency 975 ms > 250 ms" in last_error(done)
    assert ci.stub_calls("pulumi") == []
    assert (ci.workspace / "Pulumi.staging.yaml").read_bytes() == before


def test_verify_without_a_stack_says_how_to_run_it(ci: Agent) -> None:
    done = ci.sh("ci/verify")
    clean(done)
    assert done.returncode == 1
    assert last_error(done) == "ci/verify: usage: ci/verify STACK [OPTION...]"


# --- Record ci -------------------------------------------------------------------------


def test_record_ci_is_skipped_saying_why_before_any_report(ci: Agent) -> None:
    begin(ci)
    done = ci.sh("ci/record-ci")
    assert done.returncode == 0, done.stderr
    assert "record ci: skipped: no JUnit report" in done.stdout


def test_record_ci_records_the_reports_times_image_and_commit(
    ci: Agent, project_root: Path
) -> None:
    through(ci, "Build", "Push")
    junit = ci.workspace / "build" / "junit" / "model.xml"
    junit.write_text(
        '<testsuite name="m" tests="2" failures="0" errors="0" skipped="0" time="1.5">'
        '<testcase classname="a" name="b" time="1"/><testcase classname="a" name="c"/></testsuite>'
    )
    (ci.workspace / "build" / "ci" / "test-seconds").write_text("88.5\n")
    done = ci.sh("ci/record-ci")
    assert done.returncode == 0, done.stderr
    db = sqlite3.connect(ci.root / "records.db")
    try:
        rows = db.execute('SELECT passed, digest, "commit", test_seconds FROM ci_runs').fetchall()
    finally:
        db.close()
    assert rows == [(2, ci.state("image-digest"), ci.state("commit"), 88.5)]


def test_record_ci_records_the_model_card_of_the_pushed_image(ci: Agent) -> None:
    through(ci, "Build", "Push")
    write_junit(ci)
    done = ci.sh("ci/record-ci")
    assert done.returncode == 0, done.stderr
    assert "recorded model card #1 of sha256:" in done.stdout
    db = sqlite3.connect(ci.root / "records.db")
    try:
        rows = db.execute("SELECT digest, name, version, accuracy FROM model_cards").fetchall()
    finally:
        db.close()
    assert rows == [(ci.state("image-digest"), "digits", "1.0.0+0123456789ab", 0.9711)]


def test_record_ci_without_a_pushed_image_leaves_the_card_out_saying_why(ci: Agent) -> None:
    through(ci, "Build")
    write_junit(ci)
    done = ci.sh("ci/record-ci")
    assert done.returncode == 0, done.stderr
    assert "the model card is not recorded: the image was not pushed" in done.stdout


def write_junit(agent: Agent) -> None:
    (agent.workspace / "build" / "junit" / "model.xml").write_text(
        '<testsuite name="m" tests="1" failures="0" errors="0" skipped="0" time="1.5">'
        '<testcase classname="a" name="b" time="1"/></testsuite>'
    )


# --- Commit back -------------------------------------------------------------------------


def deploy(agent: Agent, stack: str = "staging", digest: str = "sha256:" + "2" * 64) -> str:
    """What set-image / promote leave in the workspace before the deploy."""
    path = agent.workspace / f"Pulumi.{stack}.yaml"
    lines = path.read_text().splitlines(keepends=True)
    lines = [f"    digest: {digest}\n" if ln.startswith("    digest: ") else ln for ln in lines]
    path.write_text("".join(lines))
    return digest


def test_deployed_stack_file_is_committed_by_the_bot_and_pushed(ci: Agent) -> None:
    begin(ci)
    digest = deploy(ci)
    done = ci.stage("Commit staging")
    assert done.returncode == 0, done.stderr
    head = ci.origin_main()
    message = ci.git("log", "-1", "--format=%B", head)
    assert message.splitlines()[0] == f"deploy(staging): cv-platform:image -> {digest} [skip ci]"
    assert f"Built-From: {ci.state('commit')}" in message
    assert ci.git("log", "-1", "--format=%ae", head) == BOT_EMAIL
    assert ci.git("diff", "--name-only", f"{head}^", head) == "Pulumi.staging.yaml"
    assert GITHUB_TOKEN not in done.stdout + done.stderr


def test_commit_without_a_token_fails_saying_why(ci: Agent) -> None:
    begin(ci)
    deploy(ci)
    ci.credentials["github-token"] = ("x-access-token", None)
    done = ci.stage("Commit staging")
    clean(done)
    assert done.returncode == 1
    assert last_error(done).startswith(
        "ci/commit-stack: GITHUB_TOKEN is not set: Pulumi.staging.yaml cannot be committed back"
    )
    assert ci.origin_main() == ci.state("commit")


def test_unchanged_stack_file_commits_nothing_with_or_without_a_token(ci: Agent) -> None:
    begin(ci)
    for token in (GITHUB_TOKEN, None):
        ci.credentials["github-token"] = ("x-access-token", token)
        done = ci.stage("Commit prod")
        clean(done)
        assert done.returncode == 0, done.stderr
        assert "Pulumi.prod.yaml is unchanged: nothing to commit" in done.stdout


def test_moved_branch_gets_the_commit_replayed_on_top(ci: Agent) -> None:
    begin(ci)
    human = ci.human_commit("README.md", "cv-platform, edited meanwhile\n")
    deploy(ci)
    done = ci.stage("Commit staging")
    assert done.returncode == 0, done.stderr
    head = ci.origin_main()
    assert ci.git("rev-parse", f"{head}^") == human
    # The build's own checkout still holds only what it built.
    assert ci.git("rev-parse", "HEAD^") == ci.state("commit")


def test_conflicting_change_on_the_branch_fails_with_what_to_do(ci: Agent) -> None:
    begin(ci)
    path = "Pulumi.staging.yaml"
    text = (ci.workspace / path).read_text()
    conflicting = "".join(
        "    digest: sha256:" + "3" * 64 + "\n" if ln.startswith("    digest: ") else ln
        for ln in text.splitlines(keepends=True)
    )
    human = ci.human_commit(path, conflicting)
    deploy(ci)
    done = ci.stage("Commit staging")
    assert done.returncode == 1
    assert "was changed on main since this build" in last_error(done)
    assert ci.origin_main() == human
    assert not [p for p in ci.workspace_tmp.iterdir() if p.name.startswith("commit-stack.")]


def test_bot_commits_alone_build_nothing(ci: Agent, make_agent: Callable[[], Agent]) -> None:
    begin(ci)
    deploy(ci, "staging")
    assert ci.stage("Commit staging").returncode == 0
    deploy(ci, "prod")
    assert ci.stage("Commit prod").returncode == 0
    ci.git("fetch", "--quiet", "origin")
    ci.git("checkout", "--quiet", "--detach", "origin/main")
    assert ci.sh("ci/bot-only").returncode == 0


def test_a_replayed_bot_commit_over_someone_elses_is_built(ci: Agent) -> None:
    begin(ci)
    ci.human_commit("README.md", "new work\n")
    deploy(ci)
    assert ci.stage("Commit staging").returncode == 0
    ci.git("fetch", "--quiet", "origin")
    ci.git("checkout", "--quiet", "--detach", "origin/main")
    assert ci.sh("ci/bot-only").returncode == 1


def test_credential_helper_answers_git_with_the_bound_token(ci: Agent) -> None:
    script = (
        '. ci/lib.sh && ci_git_auth && printf "protocol=https\\nhost=github.com\\n\\n" '
        "| git credential fill"
    )
    done = ci.sh(
        f"bash -c '{script}' ci/helper-test",
        bindings=None,
        GITHUB_TOKEN=GITHUB_TOKEN,
        GITHUB_USER="x-access-token",
    )
    assert done.returncode == 0, done.stderr
    assert f"password={GITHUB_TOKEN}" in done.stdout.splitlines()
    assert "username=x-access-token" in done.stdout.splitlines()
    # Without a token nothing answers, and git does not prompt (no TTY, GIT_TERMINAL_PROMPT=0).
    done = ci.sh(f"bash -c '{script}' ci/helper-test")
    assert f"password={GITHUB_TOKEN}" not in done.stdout


# --- Preview (pull requests) -----------------------------------------------------------


def pull_request(agent: Agent, api: FakeGitHub) -> None:
    agent.job_env = {
        "CHANGE_ID": "42",
        "CHANGE_URL": f"https://github.com/{api.repo}/pull/42",
        "GITHUB_API_URL": api.base,
    }


@pytest.mark.slow
def test_preview_with_only_the_token_posts_the_offline_preview(
    ci: Agent, github_api: FakeGitHub
) -> None:
    # No passphrase, kubeconfig or backend credentials: the offline render diff, posted.
    pull_request(ci, github_api)
    ci.credentials = {**UNSET, "github-token": ("x-access-token", GITHUB_TOKEN)}
    done = ci.stage("Preview")
    clean(done)
    assert done.returncode == 0, done.stderr
    assert "offline preview (not set: PULUMI_CONFIG_PASSPHRASE KUBECONFIG)" in done.stdout
    archived = (ci.workspace / "build" / "preview.md").read_text()
    assert archived.startswith("<!-- cv-platform:preview -->")
    (comment,) = github_api.comments[42]
    assert comment["body"].rstrip("\n") == archived.rstrip("\n")
    assert GITHUB_TOKEN not in done.stdout + done.stderr
    assert ci.stub_calls("pulumi") == []


def test_preview_without_a_token_is_archived_not_posted(
    ci: Agent, github_api: FakeGitHub, project_root: Path
) -> None:
    pull_request(ci, github_api)
    ci.credentials = {**all_set(), "github-token": ("x-access-token", None)}
    previews = recorded_previews(ci, project_root)
    done = ci.stage("Preview", STUB_PREVIEW_DIR=str(previews), CHANGE_URL=None, CHANGE_ID=None)
    clean(done)
    assert done.returncode == 0, done.stderr
    assert "github-token is not configured: the preview is archived, not posted" in done.stdout
    assert (ci.workspace / "build" / "preview.md").read_text().startswith("<!-- cv-platform")
    assert github_api.requests == []


def recorded_previews(agent: Agent, project_root: Path) -> Path:
    """`pulumi preview --json` output for each stack, for the stand-in to print."""
    recorded = project_root / "tests" / "pipeline" / "fixtures" / "preview" / "replace.json"
    previews = agent.root / "previews"
    previews.mkdir()
    for stack in ("staging", "prod"):
        (previews / f"{stack}.json").write_text(recorded.read_text())
    return previews


def test_preview_with_every_credential_is_online(
    ci: Agent, github_api: FakeGitHub, project_root: Path
) -> None:
    pull_request(ci, github_api)
    previews = recorded_previews(ci, project_root)
    done = ci.stage("Preview", STUB_PREVIEW_DIR=str(previews))
    clean(done)
    assert done.returncode == 0, done.stderr
    argvs = [c["argv"][:2] for c in ci.stub_calls("pulumi")]
    assert ["preview", "--json"] in argvs
    assert argvs.count(["preview", "--stack"]) == 2  # the engine's own report, per stack
    assert len(github_api.comments[42]) == 1
