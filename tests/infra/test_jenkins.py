"""The CI tooling as the program declares it (real stack files, Pulumi mocks):
JenkinsServer, ImageRegistry and CiDockerHost, and their security properties.
Also casc.yaml, plugins.txt and the Dockerfiles, read structurally."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pulumi_docker
import pytest
import yaml
from pulumi.runtime.rpc import is_rpc_secret

from pipeline.project import Project
from pipeline.render.mocks import DeclaredResource, ProgramRun
from tests.infra.conftest import run_stack_file, unwrap, uploads

DIGEST_PINNED = re.compile(r"^[\w.:/-]+@sha256:[0-9a-f]{64}$")
# Distinct secret values, so a test can tell which one went where.
SECRETS = {
    "jenkinsAdminPassword": "admin-pw-6f1d",
    "jenkinsGithubToken": "ghp-token-77aa",
    "jenkinsPulumiPassphrase": "passphrase-90c2",
    "jenkinsKubeconfig": "apiVersion: v1\nkind: Config\n# kube-4b1e\n",
    "toolingRegistryHtpasswd": "ci:$2y$05$abcdefghijklmnopqrstuu1234567890ABCDEFGHIJKLMNOPQRSTU",
    "toolingRegistryPassword": "registry-pw-3e8f",
    "toolingRegistryTlsCert": "-----BEGIN CERTIFICATE-----\ncert-5a5a\n",
    "toolingRegistryTlsKey": "-----BEGIN PRIVATE KEY-----\nkey-1c1c\n",
    "toolingRegistryS3Credentials": "[default]\naws_secret_access_key = s3-9d9d\n",
    "jenkinsPulumiBackendCredentials": "[default]\naws_secret_access_key = state-2b2b\n",
    "jenkinsPulumiAccessToken": "pul-token-8e8e",
}
OPTIONAL_JENKINS_SECRETS = (
    "jenkinsGithubToken",
    "jenkinsPulumiPassphrase",
    "jenkinsKubeconfig",
    "jenkinsPulumiBackendCredentials",
    "jenkinsPulumiAccessToken",
)
CONTROLLER_SECRET_FILES = {
    "/run/secrets/jenkins-admin-password": "admin-pw-6f1d",
    "/run/secrets/registry-push-password": "registry-pw-3e8f",
    "/run/secrets/github-token": "ghp-token-77aa",
    "/run/secrets/pulumi-config-passphrase": "passphrase-90c2",
    "/run/secrets/kubeconfig": SECRETS["jenkinsKubeconfig"],
    "/run/secrets/pulumi-backend-credentials": SECRETS["jenkinsPulumiBackendCredentials"],
    "/run/secrets/pulumi-access-token": "pul-token-8e8e",
}
# Read by casc.yaml without a default: Jenkins cannot start without them.
REQUIRED_SECRET_FILES = {
    "/run/secrets/jenkins-admin-password",
    "/run/secrets/registry-push-password",
}


class Recorder:
    """Remembers the ResourceOptions every docker.Volume was declared with."""

    def __init__(self) -> None:
        self.volume_opts: dict[str, pulumi.ResourceOptions | None] = {}


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()
    real = pulumi_docker.Volume

    class RecordingVolume(real):  # type: ignore[misc, valid-type]
        def __init__(self, resource_name: str, *args: Any, **kwargs: Any) -> None:
            rec.volume_opts[resource_name] = kwargs.get("opts")
            super().__init__(resource_name, *args, **kwargs)

    monkeypatch.setattr(pulumi_docker, "Volume", RecordingVolume)
    return rec


def run(project: Project, tooling: dict[str, Any] | None = None, **secrets: str) -> ProgramRun:
    overrides: dict[str, Any] = {**SECRETS, **secrets}
    if tooling is not None:
        overrides["tooling"] = tooling
    return run_stack_file(project, "staging", overrides)


@pytest.fixture(scope="module")
def tooling_run(project: Project) -> ProgramRun:
    # Without TLS: the stack file's tooling as it is.
    overrides = {k: v for k, v in SECRETS.items() if "Tls" not in k}
    no_tls = {"toolingRegistryTlsCert": None, "toolingRegistryTlsKey": None}
    return run_stack_file(project, "staging", overrides | no_tls)


def staging_tooling(project: Project) -> dict[str, Any]:
    data = yaml.safe_load((project.root / "Pulumi.staging.yaml").read_text())
    tooling: dict[str, Any] = json.loads(json.dumps(data["config"]["cv-platform:tooling"]))
    return tooling


def containers(run: ProgramRun) -> dict[str, DeclaredResource]:
    return {r.name: r for r in run.resources if r.type == "docker:index/container:Container"}


# --- What the staging stack declares --------------------------------------------------


def test_staging_declares_the_tooling_and_prod_none(
    tooling_run: ProgramRun, prod: ProgramRun
) -> None:
    assert set(containers(tooling_run)) == {
        "cv-platform-registry-server",
        "cv-platform-jenkins-controller",
        "cv-platform-jenkins-agent",
        "cv-platform-jenkins-buildkitd",
    }
    kinds = {r.type for r in tooling_run.resources}
    assert {"docker:index/network:Network", "docker:index/volume:Volume"} <= kinds
    assert "cv-platform:jenkins:JenkinsServer" in kinds
    assert "cv-platform:registry:ImageRegistry" in kinds
    assert not [
        r for r in prod.resources if r.type.startswith(("docker:", "pulumi:providers:docker"))
    ]
    assert "registryHost" not in prod.outputs
    assert "jenkinsUrl" not in prod.outputs


def test_outputs_registry_host_and_jenkins_url(tooling_run: ProgramRun) -> None:
    assert tooling_run.outputs["registryHost"] == "127.0.0.1:5000"
    assert tooling_run.outputs["jenkinsUrl"] == "http://127.0.0.1:8080/"


def test_prod_refuses_to_own_tooling(project: Project) -> None:
    from infra.config import SettingsError

    with pytest.raises(SettingsError, match=r"tooling\.enabled .*only the staging stack"):
        run_stack_file(project, "prod", {"tooling": {"enabled": True}})


def test_docker_resources_use_the_explicit_provider_with_the_configured_host(
    project: Project,
) -> None:
    tooling = staging_tooling(project) | {"dockerHost": "ssh://ci@build-host.example.internal"}
    result = run(project, tooling)
    providers = [r for r in result.resources if r.type == "pulumi:providers:docker"]
    assert len(providers) == 1
    assert providers[0].inputs["host"] == "ssh://ci@build-host.example.internal"
    # The provider logs in to the tooling registry (to pull the Jenkins images) with a secret.
    # (Provider inputs reach the engine as JSON strings.)
    auth = providers[0].inputs["registryAuth"]
    assert is_rpc_secret(auth)
    assert json.loads(unwrap(auth)) == [
        {"address": "127.0.0.1:5000", "username": "ci", "password": "registry-pw-3e8f"}
    ]


def test_every_image_is_pinned_by_digest(tooling_run: ProgramRun) -> None:
    for name, res in containers(tooling_run).items():
        assert DIGEST_PINNED.match(res.inputs["image"]), name
    remote = [r for r in tooling_run.resources if r.type == "docker:index/remoteImage:RemoteImage"]
    assert remote
    for res in remote:
        assert DIGEST_PINNED.match(res.inputs["name"]), res.name


def test_jenkins_runs_the_built_images_by_digest(tooling_run: ProgramRun) -> None:
    images = {r.name: r for r in tooling_run.resources if r.type == "docker:index/image:Image"}
    assert set(images) == {
        "cv-platform-jenkins-controller-image",
        "cv-platform-jenkins-agent-image",
    }
    built = images["cv-platform-jenkins-controller-image"]
    assert built.inputs["build"]["context"] == "infra/jenkins"
    assert built.inputs["imageName"].startswith("127.0.0.1:5000/cv-platform/jenkins-controller:")
    controller = containers(tooling_run)["cv-platform-jenkins-controller"]
    assert controller.inputs["image"] == built.outputs["repoDigest"]
    agent = containers(tooling_run)["cv-platform-jenkins-agent"]
    assert agent.inputs["image"] == images["cv-platform-jenkins-agent-image"].outputs["repoDigest"]


def test_no_container_mounts_the_docker_socket_or_any_host_path(tooling_run: ProgramRun) -> None:
    for name, res in containers(tooling_run).items():
        text = json.dumps(unwrap(res.inputs))
        assert "docker.sock" not in text, name
        assert not res.inputs.get("privileged"), name
        for volume in res.inputs.get("volumes", []):
            assert "hostPath" not in volume, name
        assert "mounts" not in res.inputs, name


def test_secrets_reach_containers_only_as_files_from_pulumi_secrets(project: Project) -> None:
    result = run(project)
    for name, res in containers(result).items():
        envs = res.inputs.get("envs", [])
        assert not is_rpc_secret(envs), name
        env_text = json.dumps(unwrap(envs))
        for secret in SECRETS.values():
            assert secret.strip() not in env_text, (name, secret)
    controller = containers(result)["cv-platform-jenkins-controller"]
    assert is_rpc_secret(controller.inputs["uploads"])  # the contents are Pulumi secrets
    files = uploads(controller)
    assert {f: u["content"] for f, u in files.items()} == CONTROLLER_SECRET_FILES
    registry = containers(result)["cv-platform-registry-server"]
    assert is_rpc_secret(registry.inputs["uploads"])
    reg_files = uploads(registry)
    assert reg_files["/etc/distribution/auth/htpasswd"]["content"] == (
        SECRETS["toolingRegistryHtpasswd"] + "\n"
    )
    assert reg_files["/etc/distribution/auth/htpasswd"]["permissions"] == "0400"
    assert reg_files["/etc/distribution/tls/tls.key"]["content"] == SECRETS["toolingRegistryTlsKey"]


def test_optional_secrets_not_configured_get_no_file(project: Project) -> None:
    unset = dict.fromkeys(OPTIONAL_JENKINS_SECRETS)
    result = run(project, **unset)  # type: ignore[arg-type]
    files = uploads(containers(result)["cv-platform-jenkins-controller"])
    assert set(files) == REQUIRED_SECRET_FILES
    assert files["/run/secrets/jenkins-admin-password"]["content"] == "admin-pw-6f1d"


def provider_upload_errors(res: DeclaredResource) -> list[str]:
    """What terraform-provider-docker (pulumi-docker 4.x) refuses in a container's uploads.

    Its container create (resource_docker_container_funcs.go) counts, per upload, the
    non-empty ones of content, content_base64 and source: zero is "one of 'content',
    'content_base64', or 'source' must be set", more than one is "only one of ... can
    be set". An empty string counts as not set.
    """
    errors = []
    for upload in unwrap(res.inputs.get("uploads", [])):
        given = [k for k in ("content", "contentBase64", "source") if upload.get(k)]
        if len(given) != 1:
            errors.append(f"{res.name}: upload {upload['file']} sets {given or 'nothing'}")
    return errors


@pytest.mark.parametrize(
    "variant",
    ["every secret", "optional secrets unset", "s3 storage", "no tls"],
)
def test_every_upload_is_one_the_docker_provider_accepts(project: Project, variant: str) -> None:
    secrets: dict[str, str | None] = {}
    tooling = None
    if variant == "optional secrets unset":
        secrets = dict.fromkeys(OPTIONAL_JENKINS_SECRETS)
        secrets |= {"toolingRegistryTlsCert": None, "toolingRegistryTlsKey": None}
    elif variant == "s3 storage":
        tooling = staging_tooling(project)
        tooling["registry"] |= {"storage": "s3", "s3Bucket": "cv-images", "s3Region": "eu-west-1"}
        secrets = {"toolingRegistryS3Credentials": None}
    elif variant == "no tls":
        secrets = {"toolingRegistryTlsCert": None, "toolingRegistryTlsKey": None}
    result = run(project, tooling, **secrets)  # type: ignore[arg-type]
    found = containers(result)
    assert found
    assert [e for res in found.values() for e in provider_upload_errors(res)] == []


def test_the_upload_rule_refuses_what_the_provider_refuses() -> None:
    # The check above can fail: an empty content is what the provider rejects.
    res = DeclaredResource(
        "docker:index/container:Container",
        "c",
        {"uploads": [{"file": "/run/secrets/x", "content": ""}, {"file": "/y", "content": "1"}]},
        "c-id",
        {},
    )
    assert provider_upload_errors(res) == ["c: upload /run/secrets/x sets nothing"]


def test_secret_values_never_appear_in_plain_inputs(project: Project) -> None:
    result = run(project)

    def plain(value: Any) -> Any:  # inputs with every secret subtree removed
        if is_rpc_secret(value):
            return None
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    text = json.dumps([plain(r.inputs) for r in result.resources])
    for secret in SECRETS.values():
        assert secret.strip() not in text


def test_data_volumes_are_protected_and_retained(project: Project, recorder: Recorder) -> None:
    run(project, toolingRegistryTlsCert=None, toolingRegistryTlsKey=None)  # type: ignore[arg-type]
    kept = {"cv-platform-jenkins-home", "cv-platform-jenkins-records", "cv-platform-registry-data"}
    assert kept <= set(recorder.volume_opts)
    for name in kept:
        opts = recorder.volume_opts[name]
        assert opts is not None, name
        assert opts.protect is True, name
        assert opts.retain_on_delete is True, name
    # Caches and the agent-secret volume may go with the stack.
    assert not recorder.volume_opts["cv-platform-jenkins-buildkit-cache"].protect  # type: ignore[union-attr]
    assert not recorder.volume_opts["cv-platform-jenkins-scanner-db"].protect  # type: ignore[union-attr]


def test_volumes_are_mounted_where_the_data_lives(tooling_run: ProgramRun) -> None:
    def mounts(name: str) -> dict[str, str]:
        res = containers(tooling_run)[name]
        return {v["containerPath"]: v["volumeName"] for v in res.inputs["volumes"]}

    assert (
        mounts("cv-platform-jenkins-controller")["/var/jenkins_home"] == "cv-platform-jenkins-home"
    )
    assert mounts("cv-platform-registry-server")["/var/lib/registry"] == "cv-platform-registry-data"
    agent = containers(tooling_run)["cv-platform-jenkins-agent"]
    secret_mount = next(
        v for v in agent.inputs["volumes"] if v["containerPath"] == "/run/agent-secret"
    )
    assert secret_mount["readOnly"] is True
    # The scanner's DB: where TRIVY_CACHE_DIR says, on a volume labelled disposable.
    assert (
        mounts("cv-platform-jenkins-agent")["/var/cache/trivy"] == "cv-platform-jenkins-scanner-db"
    )
    assert "TRIVY_CACHE_DIR=/var/cache/trivy" in agent.inputs["envs"]
    (volume,) = [r for r in tooling_run.resources if r.name == "cv-platform-jenkins-scanner-db"]
    assert volume.inputs["labels"] == [{"label": "cv-platform.io/disposable", "value": "true"}]


def test_registry_binds_loopback_without_tls(tooling_run: ProgramRun) -> None:
    ports = containers(tooling_run)["cv-platform-registry-server"].inputs["ports"]
    assert ports == [{"internal": 5000.0, "external": 5000.0, "ip": "127.0.0.1"}]


def test_registry_may_listen_on_the_configured_address_with_tls(project: Project) -> None:
    tooling = staging_tooling(project)
    tooling["registry"] |= {"address": "0.0.0.0", "host": "registry.example.internal:5000"}  # noqa: S104
    result = run(project, tooling)
    ports = containers(result)["cv-platform-registry-server"].inputs["ports"]
    assert ports[0]["ip"] == "0.0.0.0"  # noqa: S104
    assert result.outputs["registryHost"] == "registry.example.internal:5000"


def test_registry_refuses_a_public_address_without_tls(project: Project) -> None:
    from infra.config import SettingsError

    tooling = staging_tooling(project)
    tooling["registry"]["address"] = "0.0.0.0"  # noqa: S104
    with pytest.raises(SettingsError, match="loopback only"):
        run(project, tooling, toolingRegistryTlsCert=None, toolingRegistryTlsKey=None)  # type: ignore[arg-type]


def test_registry_has_health_check_restart_policy_and_v3_config_path(
    tooling_run: ProgramRun,
) -> None:
    reg = containers(tooling_run)["cv-platform-registry-server"]
    assert reg.inputs["restart"] == "unless-stopped"
    assert "/debug/health" in " ".join(reg.inputs["healthcheck"]["tests"])
    assert reg.inputs["command"] == ["/etc/distribution/config.yml"]
    assert "/etc/distribution/config.yml" in uploads(reg)
    for name, res in containers(tooling_run).items():
        assert res.inputs["restart"] == "unless-stopped", name


def test_registry_on_s3_has_no_filesystem(project: Project, recorder: Recorder) -> None:
    tooling = staging_tooling(project)
    tooling["registry"] |= {"storage": "s3", "s3Bucket": "cv-images", "s3Region": "eu-west-1"}
    result = run(project, tooling, toolingRegistryTlsCert=None, toolingRegistryTlsKey=None)  # type: ignore[arg-type]
    reg = containers(result)["cv-platform-registry-server"]
    # Storage is configured in the file alone: REGISTRY_STORAGE would replace the section.
    assert not [e for e in reg.inputs["envs"] if e.startswith("REGISTRY_")]
    assert reg.inputs.get("volumes", []) == []
    assert "cv-platform-registry-data" not in recorder.volume_opts
    config = yaml.safe_load(uploads(reg)["/etc/distribution/config.yml"]["content"])
    assert "filesystem" not in config["storage"]
    assert config["storage"]["s3"] == {"bucket": "cv-images", "region": "eu-west-1"}
    creds = uploads(reg)["/etc/distribution/aws/credentials"]
    assert creds["content"] == SECRETS["toolingRegistryS3Credentials"]


def test_jenkins_is_published_on_the_configured_address(project: Project) -> None:
    tooling = staging_tooling(project)
    tooling["jenkins"] |= {
        "address": "10.0.0.5",
        "port": 8443,
        "url": "https://ci.example.internal",
    }
    result = run(project, tooling)
    controller = containers(result)["cv-platform-jenkins-controller"]
    assert controller.inputs["ports"] == [
        {"internal": 8080.0, "external": 8443.0, "ip": "10.0.0.5"}
    ]
    assert "JENKINS_URL=https://ci.example.internal/" in controller.inputs["envs"]
    assert result.outputs["jenkinsUrl"] == "https://ci.example.internal/"


def test_agent_connects_over_websocket_with_its_secret_from_a_file(tooling_run: ProgramRun) -> None:
    agent = containers(tooling_run)["cv-platform-jenkins-agent"]
    command = agent.inputs["command"]
    assert "-webSocket" in command
    assert command[command.index("-url") + 1] == "http://jenkins:8080/"
    assert command[command.index("-secret") + 1] == "@/run/agent-secret/cv-platform-agent"
    assert "BUILDKIT_HOST=unix:///run/buildkit/buildkitd.sock" in agent.inputs["envs"]
    # It waits for Jenkins to publish that file before starting remoting.
    assert agent.inputs["entrypoints"][:2] == ["/bin/sh", "-c"]
    assert "AGENT_SECRET_FILE=/run/agent-secret/cv-platform-agent" in agent.inputs["envs"]


def test_the_agent_gets_the_shared_state_backend(project: Project) -> None:
    # Without one, the agent's pulumi falls back to Pulumi Cloud and stops in CI.
    tooling = staging_tooling(project)
    tooling["jenkins"]["pulumiBackendUrl"] = "s3://state-bucket/cv?region=eu-west-1"
    agent = containers(run(project, tooling))["cv-platform-jenkins-agent"]
    assert "PULUMI_BACKEND_URL=s3://state-bucket/cv?region=eu-west-1" in agent.inputs["envs"]
    committed = containers(run(project))["cv-platform-jenkins-agent"].inputs["envs"]
    assert [e for e in committed if e.startswith("PULUMI_BACKEND_URL=s3://")]


def test_everything_shares_the_tooling_network(tooling_run: ProgramRun) -> None:
    for name, res in containers(tooling_run).items():
        nets = [n["name"] for n in res.inputs["networksAdvanced"]]
        assert nets == ["cv-platform-tooling"], name
    buildkitd = containers(tooling_run)["cv-platform-jenkins-buildkitd"]
    assert "ports" not in buildkitd.inputs
    assert not buildkitd.inputs.get("privileged")


# --- Container hardening -------------------------------------------------------------------


def volumes_by_name(run: ProgramRun) -> dict[str, DeclaredResource]:
    return {r.name: r for r in run.resources if r.type == "docker:index/volume:Volume"}


def test_buildkit_listens_on_no_tcp_port_only_on_its_socket(tooling_run: ProgramRun) -> None:
    buildkitd = containers(tooling_run)["cv-platform-jenkins-buildkitd"]
    command = buildkitd.inputs["command"]
    assert command[command.index("--addr") + 1] == "unix:///run/buildkit/buildkitd.sock"
    assert command.count("--addr") == 1
    assert not [arg for arg in command if "tcp://" in arg]
    # On the network for pulls and pushes, under no name another container could use.
    assert [n.get("aliases") for n in buildkitd.inputs["networksAdvanced"]] == [None]
    health = buildkitd.inputs["healthcheck"]["tests"]
    assert health[health.index("--addr") + 1] == "unix:///run/buildkit/buildkitd.sock"


def test_the_buildkit_socket_volume_is_a_private_tmpfs_of_buildkit_and_the_agent(
    tooling_run: ProgramRun,
) -> None:
    volume = volumes_by_name(tooling_run)["cv-platform-jenkins-buildkit-socket"]
    assert volume.inputs["driverOpts"] == {
        "type": "tmpfs",
        "device": "tmpfs",
        "o": "uid=1000,gid=1000,mode=0700,size=1m",
    }
    mounted = {
        name: v
        for name, res in containers(tooling_run).items()
        for v in res.inputs.get("volumes", [])
        if v["volumeName"] == "cv-platform-jenkins-buildkit-socket"
    }
    assert set(mounted) == {"cv-platform-jenkins-buildkitd", "cv-platform-jenkins-agent"}
    assert {v["containerPath"] for v in mounted.values()} == {"/run/buildkit"}
    assert mounted["cv-platform-jenkins-agent"]["readOnly"] is True


@pytest.mark.parametrize(
    ("name", "memory", "cpus"),
    [
        ("cv-platform-registry-server", 512, "1"),
        ("cv-platform-jenkins-controller", 2048, "2"),
        ("cv-platform-jenkins-agent", 4096, "2"),
        ("cv-platform-jenkins-buildkitd", 4096, "2"),
    ],
)
def test_every_tooling_container_has_memory_and_cpu_limits_without_extra_swap(
    tooling_run: ProgramRun, name: str, memory: int, cpus: str
) -> None:
    inputs = containers(tooling_run)[name].inputs
    assert inputs["memory"] == memory
    assert inputs["memorySwap"] == memory
    assert inputs["cpus"] == cpus


def test_every_tooling_container_has_a_health_check(tooling_run: ProgramRun) -> None:
    for name, res in containers(tooling_run).items():
        check = res.inputs.get("healthcheck")
        assert check, name
        assert check["tests"][0] in {"CMD", "CMD-SHELL"}, name
        assert check["retries"] >= 3, name


def test_the_agent_is_healthy_while_remoting_runs_and_buildkit_answers(
    tooling_run: ProgramRun,
) -> None:
    check = containers(tooling_run)["cv-platform-jenkins-agent"].inputs["healthcheck"]
    kind, script = check["tests"]
    assert kind == "CMD-SHELL"
    assert "'agent[.]jar' /proc/[0-9]*/cmdline" in script
    assert 'buildctl --addr "$BUILDKIT_HOST" debug workers' in script
    # Longer than the entrypoint's 5-minute wait for the controller's secret.
    assert check["startPeriod"] == "330s"


def test_buildkit_gets_only_the_two_unconfined_profiles_rootless_mode_needs(
    tooling_run: ProgramRun,
) -> None:
    inputs = containers(tooling_run)["cv-platform-jenkins-buildkitd"].inputs
    assert sorted(inputs["securityOpts"]) == ["apparmor=unconfined", "seccomp=unconfined"]
    assert "--oci-worker-no-process-sandbox" in inputs["command"]  # so /proc stays masked
    assert not inputs.get("privileged")
    assert not inputs.get("capabilities", {}).get("adds")
    assert not inputs.get("devices")


def test_every_other_tooling_container_has_no_new_privileges_and_no_capabilities(
    tooling_run: ProgramRun,
) -> None:
    for name, res in containers(tooling_run).items():
        if name == "cv-platform-jenkins-buildkitd":
            continue
        assert res.inputs["securityOpts"] == ["no-new-privileges:true"], name
        assert res.inputs["capabilities"] == {"drops": ["ALL"]}, name


# --- The Jenkins assets ------------------------------------------------------------------


@pytest.fixture(scope="module")
def casc(project_root: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((project_root / "infra/jenkins/casc.yaml").read_text())
    return data


def test_casc_denies_anonymous_everything(casc: dict[str, Any]) -> None:
    entries = casc["jenkins"]["authorizationStrategy"]["globalMatrix"]["entries"]
    assert entries == [
        {"user": {"name": "${JENKINS_ADMIN_ID}", "permissions": ["Overall/Administer"]}}
    ]
    assert "anonymous" not in json.dumps(casc).lower()


def test_casc_local_realm_without_signup_reads_the_password_from_a_file(
    casc: dict[str, Any],
) -> None:
    realm = casc["jenkins"]["securityRealm"]["local"]
    assert realm["allowsSignup"] is False
    assert realm["users"] == [
        {
            "id": "${JENKINS_ADMIN_ID}",
            "name": "cv-platform administrator",
            "password": "${readFile:/run/secrets/jenkins-admin-password}",
        }
    ]


def test_casc_controller_has_no_executors_csrf_on_and_only_websocket_agents(
    casc: dict[str, Any],
) -> None:
    jenkins = casc["jenkins"]
    assert jenkins["numExecutors"] == 0
    assert jenkins["slaveAgentPort"] == -1  # no TCP agent listener
    assert "standard" in jenkins["crumbIssuer"]
    (node,) = jenkins["nodes"]
    assert node["permanent"]["launcher"]["inbound"]["webSocket"] is True
    assert node["permanent"]["name"] == "${AGENT_NAME}"


def test_casc_secrets_are_files_uploaded_by_jenkins_server(
    project_root: Path, casc: dict[str, Any]
) -> None:
    text = (project_root / "infra/jenkins/casc.yaml").read_text()
    references = re.findall(r"\$\{readFile(?:Base64)?:(/run/secrets/[\w.-]+)(:-)?\}", text)
    assert {path for path, _ in references} == set(CONTROLLER_SECRET_FILES)
    # An optional secret's file may be absent (no upload): its reference defaults to "".
    required = {path for path, default in references if not default}
    assert required == REQUIRED_SECRET_FILES
    # Every credential secret comes from such a file; no literal value.
    creds = casc["credentials"]["system"]["domainCredentials"][0]["credentials"]
    for cred in creds:
        ((kind, fields),) = cred.items()
        for key in ("password", "secret", "secretBytes"):
            if key in fields:
                assert fields[key].startswith(("${readFile:/run/secrets/", "${readFileBase64:")), (
                    kind
                )
    # The only ${...} plain variables are environment the component sets.
    env = set(re.findall(r"\$\{([A-Z_]+)\}", text))
    assert env == {
        "JENKINS_ADMIN_ID",
        "AGENT_NAME",
        "JENKINS_URL",
        "REGISTRY_HOST",
        "REGISTRY_PUSH_USER",
        "CV_PLATFORM_REPO_OWNER",
        "CV_PLATFORM_REPO_NAME",
        "GITHUB_USER",
        "CV_PLATFORM_REPO_URL",
    }


def test_casc_environment_is_what_the_controller_gets(
    project_root: Path, tooling_run: ProgramRun
) -> None:
    text = (project_root / "infra/jenkins/casc.yaml").read_text()
    wanted = set(re.findall(r"\$\{([A-Z_]+)\}", text))
    envs = containers(tooling_run)["cv-platform-jenkins-controller"].inputs["envs"]
    given = {e.split("=", 1)[0] for e in envs}
    assert wanted <= given


def test_seed_job_is_a_multibranch_pipeline_for_this_repository(casc: dict[str, Any]) -> None:
    (job,) = casc["jobs"]
    script = job["script"]
    assert script.startswith("multibranchPipelineJob('cv-platform')")
    assert "repositoryUrl('${CV_PLATFORM_REPO_URL}')" in script
    assert "scriptPath('Jenkinsfile')" in script
    assert "gitHubPullRequestDiscovery" in script


def test_seed_job_credential_is_a_username_password_credential(casc: dict[str, Any]) -> None:
    # The GitHub branch source only offers username/password (token as password) or
    # GitHub App credentials; a "secret text" credential would leave the scan unauthenticated.
    script = casc["jobs"][0]["script"]
    (credential_id,) = re.findall(r"credentialsId\('([^']+)'\)", script)
    creds = casc["credentials"]["system"]["domainCredentials"][0]["credentials"]
    kinds = {fields["id"]: kind for cred in creds for kind, fields in cred.items()}
    assert kinds[credential_id] == "usernamePassword"


REQUIRED_PLUGINS = {
    "configuration-as-code",
    "job-dsl",
    "workflow-aggregator",
    "workflow-multibranch",
    "git",
    "credentials-binding",
    "junit",
    "lockable-resources",
    "pipeline-stage-view",
    "matrix-auth",
    "timestamper",
}


def test_plugins_are_pinned_and_complete(project_root: Path) -> None:
    lines = [
        ln.strip()
        for ln in (project_root / "infra/jenkins/plugins.txt").read_text().splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    names = []
    for line in lines:
        name, sep, version = line.partition(":")
        assert sep, f"{line!r} is not name:version"
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", name), line
        assert re.fullmatch(r"[0-9][0-9A-Za-z._-]*", version), line
        assert version not in ("latest", "experimental"), line
        names.append(name)
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_PLUGINS


def dockerfile_lines(path: Path) -> list[str]:
    text = path.read_text().replace("\\\n", " ")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


@pytest.mark.parametrize(
    "dockerfile", ["infra/jenkins/Dockerfile", "infra/jenkins/agent/Dockerfile"]
)
def test_jenkins_base_images_are_pinned_by_digest(project_root: Path, dockerfile: str) -> None:
    lines = dockerfile_lines(project_root / dockerfile)
    args = dict(ln[4:].split("=", 1) for ln in lines if ln.startswith("ARG ") and "=" in ln)
    stages: set[str] = set()
    froms = [ln.split() for ln in lines if ln.startswith("FROM ")]
    assert froms
    for parts in froms:
        ref = args[parts[1][2:-1]] if parts[1].startswith("${") else parts[1]
        assert ref in stages or DIGEST_PINNED.match(ref), parts
        if len(parts) == 4:
            stages.add(parts[3])


def test_controller_dockerfile_installs_plugins_and_casc_without_secrets(
    project_root: Path,
) -> None:
    text = (project_root / "infra/jenkins/Dockerfile").read_text()
    assert "jenkins-plugin-cli --plugin-file /usr/share/jenkins/ref/plugins.txt" in text
    assert "-Djenkins.install.runSetupWizard=false" in text
    assert "CASC_JENKINS_CONFIG=/usr/share/jenkins/casc/casc.yaml" in text
    assert "COPY --chown=root:root casc.yaml /usr/share/jenkins/casc/casc.yaml" in text
    assert not re.search(r"(?i)^\s*(ENV|ARG)\s+\S*(PASSWORD|TOKEN|SECRET)", text, re.M)
    assert dockerfile_lines(project_root / "infra/jenkins/Dockerfile")[-1] == "USER jenkins"


def test_agent_dockerfile_has_python_pulumi_skopeo_buildctl(project_root: Path) -> None:
    text = (project_root / "infra/jenkins/agent/Dockerfile").read_text()
    for needle in (
        "python3",
        "skopeo",
        "pulumi version",
        "sha256sum -c",
        "/usr/local/bin/buildctl",
    ):
        assert needle in text, needle
    assert "docker.io" not in text.replace("docker.io/", "")  # no Docker engine package
    assert dockerfile_lines(project_root / "infra/jenkins/agent/Dockerfile")[-1] == "USER jenkins"


def test_agent_installs_trivy_pinned_by_version_and_checksum(project_root: Path) -> None:
    args = _agent_args(project_root)
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", args["TRIVY_VERSION"])
    assert re.fullmatch(r"[0-9a-f]{64}", args["TRIVY_SHA256"])
    lines = dockerfile_lines(project_root / "infra/jenkins/agent/Dockerfile")
    (install,) = [ln for ln in lines if "trivy_${TRIVY_VERSION}_Linux-64bit.tar.gz" in ln]
    steps = [s.strip() for s in install.split(";")]
    # Downloaded, checked against the pinned sum, and only then unpacked.
    check = steps.index('echo "${TRIVY_SHA256}  ${tarball}" | sha256sum -c -')
    unpack = next(i for i, s in enumerate(steps) if s.startswith("tar -xzf"))
    assert check < unpack
    assert "releases/download/v${TRIVY_VERSION}/${tarball}" in install
    # Where the agent mounts the scanner's DB exists, owned by the agent's user.
    (dirs,) = [ln for ln in lines if "install -d -o jenkins" in ln]
    assert "/var/cache/trivy" in dirs


def _agent_args(project_root: Path) -> dict[str, str]:
    lines = dockerfile_lines(project_root / "infra/jenkins/agent/Dockerfile")
    return dict(ln[4:].split("=", 1) for ln in lines if ln.startswith("ARG ") and "=" in ln)


def test_agent_installs_the_python_packages_from_the_lock_only(project_root: Path) -> None:
    lines = dockerfile_lines(project_root / "infra/jenkins/agent/Dockerfile")
    assert "COPY pyproject.toml uv.lock /opt/cv-platform/" in lines
    (install,) = [ln for ln in lines if "uv sync" in ln]
    assert "uv sync --locked --no-install-project --all-extras" in " ".join(install.split())
    # uv itself is hash-checked; nothing else is installed by pip or resolved anew.
    assert "--require-hashes" in install
    assert not [ln for ln in lines if re.search(r"pip install(?!.*--require-hashes)", ln)]
    assert not [ln for ln in lines if re.search(r"\buv (pip|lock|add)\b", ln)]


def test_agent_venv_ships_bytecode(project_root: Path) -> None:
    # The agent cannot write /opt/venv: without compiled files every pipeline step
    # would compile its imports (PyYAML, pulumi) from source.
    lines = dockerfile_lines(project_root / "infra/jenkins/agent/Dockerfile")
    (install,) = [ln for ln in lines if "uv sync" in ln]
    assert "--compile-bytecode" in install


def test_jenkinsfile_lets_python_cache_the_checkouts_bytecode(project_root: Path) -> None:
    # With PYTHONDONTWRITEBYTECODE every step compiled pipeline/ again: set-image took
    # 155 ms instead of 115 (make bench). The bytecode is gitignored and the model
    # image's build context leaves it out (after the sources are let in: last match wins).
    jenkinsfile = (project_root / "Jenkinsfile").read_text()
    assert not re.search(r"PYTHONDONTWRITEBYTECODE\s*=", jenkinsfile)
    assert "__pycache__/" in (project_root / ".gitignore").read_text().splitlines()
    ignored = (project_root / "model/.dockerignore").read_text().splitlines()
    assert ignored.index("**/__pycache__") > ignored.index("!model_server/**")


def test_agent_pins_the_uv_and_pulumi_cli_the_lock_names(
    project_root: Path, locked: dict[str, dict[str, Any]]
) -> None:
    args = _agent_args(project_root)
    assert args["UV_VERSION"] == locked["uv"]["version"]
    wheels = {w["hash"]: w["url"] for w in locked["uv"]["wheels"]}
    # The hash is PyPI's, for the wheel pip picks on the agent (linux/amd64, glibc).
    assert "manylinux_2_17_x86_64" in wheels[f"sha256:{args['UV_WHEEL_SHA256']}"]
    assert args["PULUMI_VERSION"] == locked["pulumi"]["version"]  # CLI and SDK together


def test_agent_image_tag_hashes_exactly_the_files_its_context_sends(project_root: Path) -> None:
    from infra.tooling_images import AGENT_CONTEXT_FILES, AGENT_DOCKERFILE

    # A change to any file the build can see gives a new tag, and nothing else does.
    for ignore in (".dockerignore", "infra/jenkins/agent/Dockerfile.dockerignore"):
        lines = (project_root / ignore).read_text().splitlines()
        sent = {ln[1:] for ln in lines if ln.startswith("!")}
        assert sent == set(AGENT_CONTEXT_FILES) - {AGENT_DOCKERFILE}, ignore
    for name in AGENT_CONTEXT_FILES:
        assert (project_root / name).is_file(), name


def test_build_contexts_send_no_secrets(project_root: Path) -> None:
    # The controller context is infra/jenkins (its .dockerignore keeps plugins, casc,
    # init scripts); the agent context is the repository root, filtered to the lock.
    for ignore in (
        "infra/jenkins/.dockerignore",
        "infra/jenkins/agent/Dockerfile.dockerignore",
        ".dockerignore",
    ):
        lines = (project_root / ignore).read_text().splitlines()
        assert "**" in lines, ignore
        allowed = [ln for ln in lines if ln.startswith("!")]
        assert allowed
        assert not [ln for ln in allowed if re.search(r"(?i)secret|\.pem|\.key|Pulumi\.", ln)]


def test_render_shows_the_tooling_for_staging_only_with_secrets_redacted(
    project_root: Path, tmp_path: Path
) -> None:
    from pipeline.cli import main
    from pipeline.secrets import SECRET_STAND_IN

    def render(stack: str, out: str) -> str:
        code = main(
            ["--project-dir", str(project_root), "render", stack, "--out", str(tmp_path / out)]
        )
        assert code == 0
        return (tmp_path / out / "resources.json").read_text()

    first, second = render("staging", "a"), render("staging", "b")
    assert first == second  # byte-identical: no hashes, timestamps or random values change
    for name in (
        "cv-platform-registry-server",
        "cv-platform-jenkins-controller",
        "cv-platform-jenkins-agent",
        "cv-platform-jenkins-buildkitd",
        "cv-platform-tooling",
        "cv-platform-jenkins-home",
        "cv-platform-registry-data",
    ):
        assert f'"{name}"' in first, name
    assert SECRET_STAND_IN not in first
    prod = render("prod", "prod")
    assert "docker:" not in prod


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://admin:hunter2@ci.example.internal/", "must not carry credentials"),
        ("http://ci.example.internal:99999/", "must be a usable URL"),
        ("http://[fd00::1/", "must be a usable URL"),
    ],
)
def test_the_jenkins_url_is_usable_and_never_echoes_credentials(
    project: Project, url: str, fragment: str
) -> None:
    from infra.config import SettingsError

    tooling = staging_tooling(project)
    tooling["jenkins"]["url"] = url
    with pytest.raises(SettingsError, match=fragment) as caught:
        run(project, tooling)
    assert "hunter2" not in str(caught.value)
