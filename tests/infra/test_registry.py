"""ImageRegistry: its config run by a real Distribution registry, the v2/v3 config
paths, ECR logins against moto's server, and the tooling settings' rules."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.config import SettingsError, ToolingRegistrySettings, parse_tooling
from infra.registry import (
    CONFIG_PATHS,
    REGISTRY_IMAGE,
    ImageRegistry,
    ImageRegistryArgs,
    RegistryConfigError,
    config_path,
    ecr_token,
    registry_config,
    registry_major,
)
from pipeline.io.http import HttpError, Session, basic_auth
from tests.infra.conftest import pulumi_test, run_stack_file, uploads
from tests.waiting import wait_until

USER, PASSWORD = "ci", "registry-pw-3e8f"
AUTH = {"Authorization": basic_auth(USER, PASSWORD)}
ECR_REPO = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/cv-platform/model-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings(**changes: Any) -> ToolingRegistrySettings:
    base: dict[str, Any] = {
        "kind": "selfHosted",
        "address": "127.0.0.1",
        "port": 5000,
        "host": "127.0.0.1:5000",
        "username": USER,
        "storage": "volume",
        "s3_bucket": "",
        "s3_region": "",
        "ecr_repository": "",
        "htpasswd": None,
        "password": None,
        "tls_cert": None,
        "tls_key": None,
        "s3_credentials": None,
    }
    return ToolingRegistrySettings(**(base | changes))


# --- Ordering -------------------------------------------------------------------------


def test_registry_host_waits_for_the_running_registry(pulumi_mocks: Any) -> None:
    # The Jenkins images are pushed to registryHost: on a first `pulumi up` the push
    # must not race the registry container, which is created only once healthy.
    pulumi_mocks("staging")
    secret = pulumi.Output.secret
    registry = ImageRegistry(
        "cv-platform-registry",
        ImageRegistryArgs(
            settings(htpasswd=secret(f"{USER}:$2y$05$hash"), password=secret(PASSWORD))
        ),
    )
    assert registry.container is not None
    container = registry.container

    @pulumi_test
    def check() -> pulumi.Output[None]:
        async def depends() -> None:
            assert container in await registry.host.resources()

        return pulumi.Output.from_input(depends())

    check()


# --- Config paths ---------------------------------------------------------------------


def test_config_path_follows_the_distribution_major_version() -> None:
    assert config_path("registry:2.8.3@sha256:" + "0" * 64) == "/etc/docker/registry/config.yml"
    assert config_path("registry:3@sha256:" + "0" * 64) == "/etc/distribution/config.yml"
    assert config_path("docker.io/library/registry:3.0.0") == "/etc/distribution/config.yml"
    assert registry_major(REGISTRY_IMAGE) == 3
    assert set(CONFIG_PATHS) == {2, 3}
    with pytest.raises(ValueError, match="major version"):
        registry_major("registry@sha256:" + "0" * 64)


def test_config_is_stable_and_enables_deletes_and_htpasswd() -> None:
    first, second = registry_config(settings()), registry_config(settings())
    assert first == second
    config = json.loads(first)
    assert config["storage"]["delete"] == {"enabled": True}
    assert config["storage"]["filesystem"] == {"rootdirectory": "/var/lib/registry"}
    assert config["auth"]["htpasswd"]["path"] == "/etc/distribution/auth/htpasswd"
    assert "tls" not in config["http"]


def test_config_with_tls_points_at_the_uploaded_files() -> None:
    tls = settings(tls_cert=pulumi.Output.from_input("c"), tls_key=pulumi.Output.from_input("k"))
    config = json.loads(registry_config(tls))
    assert config["http"]["tls"] == {
        "certificate": "/etc/distribution/tls/tls.crt",
        "key": "/etc/distribution/tls/tls.key",
    }


# --- The generated config, run by a real registry ------------------------------------------


@contextlib.contextmanager
def serving(
    config: dict[str, Any], tmp: Path, env: dict[str, str] | None = None
) -> Iterator[dict[str, str]]:
    """Debian's docker-registry (Distribution 2.8) serving ``config`` on loopback.

    Only the paths and addresses of ``config`` change for a test run; every other
    setting is ours. ``env`` is the registry's whole environment (no variable of the
    test runner's leaks in: Distribution reads REGISTRY_* and AWS_* from it).
    """
    binary, htpasswd = shutil.which("docker-registry"), shutil.which("htpasswd")
    if binary is None or htpasswd is None:
        pytest.skip("docker-registry and htpasswd are needed (scripts/install-system-packages)")
    line = subprocess.run(
        [htpasswd, "-nbB", USER, PASSWORD], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    (tmp / "htpasswd").write_text(line + "\n")
    port, debug = free_port(), free_port()
    if "filesystem" in config["storage"]:
        config["storage"]["filesystem"]["rootdirectory"] = str(tmp / "data")
    config["auth"]["htpasswd"]["path"] = str(tmp / "htpasswd")
    config["http"]["addr"] = f"127.0.0.1:{port}"
    config["http"]["debug"]["addr"] = f"127.0.0.1:{debug}"
    (tmp / "config.yml").write_text(json.dumps(config))
    log_path = tmp / "registry.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [binary, "serve", str(tmp / "config.yml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", **(env or {})},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: Session().get(f"{base}/v2/", timeout=1.0).status_code == 401,
            what=f"docker-registry on {base}",
            timeout=15,
            process=proc,
            log=log_path,
            errors=(HttpError, OSError),
        )
        yield {"base": base, "debug": f"http://127.0.0.1:{debug}"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Our filesystem-storage config, served by a real registry."""
    config = json.loads(registry_config(settings()))
    with serving(config, tmp_path_factory.mktemp("registry")) as running:
        yield running


def push_blob(base: str, repository: str, blob: bytes) -> str:
    """A monolithic blob upload (POST, then PUT with the digest); returns the digest."""
    session = Session()
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    start = session.request(
        "POST", f"{base}/v2/{repository}/blobs/uploads/", headers=AUTH, timeout=5.0
    )
    assert start.status_code == 202, start.status_code
    location = start.headers["Location"]
    location = location if location.startswith("http") else base + location
    put = session.request(
        "PUT",
        location,
        params={"digest": digest},
        body=blob,
        headers={**AUTH, "Content-Type": "application/octet-stream"},
        timeout=5.0,
    )
    assert put.status_code == 201, put.status_code
    return digest


@pytest.mark.registry
def test_registry_refuses_anonymous_clients(registry: dict[str, str]) -> None:
    session = Session()
    res = session.get(f"{registry['base']}/v2/", timeout=5.0)
    assert res.status_code == 401
    assert 'realm="cv-platform-registry"' in res.headers["WWW-Authenticate"]
    wrong = {"Authorization": basic_auth(USER, "wrong")}
    assert session.get(f"{registry['base']}/v2/", headers=wrong, timeout=5.0).status_code == 401


@pytest.mark.registry
def test_registry_accepts_the_htpasswd_user(registry: dict[str, str]) -> None:
    res = Session().get(f"{registry['base']}/v2/", headers=AUTH, timeout=5.0)
    assert res.status_code == 200
    assert res.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.registry
def test_registry_deletes_are_enabled(registry: dict[str, str]) -> None:
    base = registry["base"]
    digest = push_blob(base, "cv-platform/probe", b"cv-platform layer")
    deleted = Session().request(
        "DELETE", f"{base}/v2/cv-platform/probe/blobs/{digest}", headers=AUTH, timeout=5.0
    )
    assert deleted.status_code == 202  # 405 UNSUPPORTED when deletes are off


@pytest.mark.registry
def test_registry_health_endpoint_answers(registry: dict[str, str]) -> None:
    assert Session().get(f"{registry['debug']}/debug/health", timeout=5.0).status_code == 200


@pytest.mark.registry
def test_registry_on_s3_runs_from_the_config_file_alone(
    moto_endpoint: str, tmp_path: Path, project_root: Path
) -> None:
    """storage: s3 as the program renders it: the bucket and region in the file, and
    the container's environment as declared (no REGISTRY_STORAGE override)."""
    import boto3

    from pipeline.project import Project

    s3 = boto3.client(
        "s3",
        region_name="eu-west-1",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(
        Bucket="cv-images", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    tooling = {
        "enabled": True,
        "registry": {"storage": "s3", "s3Bucket": "cv-images", "s3Region": "eu-west-1"},
        "jenkins": {"repositoryUrl": REPO_URL, "pulumiBackendUrl": BACKEND},
    }
    secrets: dict[str, str | None] = {
        "jenkinsAdminPassword": "admin-pw",
        "toolingRegistryHtpasswd": f"{USER}:$2y$05$" + "a" * 53,
        "toolingRegistryPassword": PASSWORD,
        "toolingRegistryTlsCert": None,
        "toolingRegistryTlsKey": None,
    }
    run = run_stack_file(Project(project_root), "staging", {"tooling": tooling, **secrets})
    (container,) = [r for r in run.resources if r.name == "cv-platform-registry-server"]
    config = json.loads(uploads(container)[config_path(REGISTRY_IMAGE)]["content"])
    declared = dict(e.split("=", 1) for e in container.inputs.get("envs", []))
    # What only a test run adds: moto as the S3 endpoint, and credentials for it.
    here = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "REGISTRY_STORAGE_S3_REGIONENDPOINT": moto_endpoint,
    }
    with serving(config, tmp_path, {**declared, **here}) as running:
        digest = push_blob(running["base"], "cv-platform/probe", b"stored in s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="cv-images").get("Contents", [])]
    assert any(digest.split(":")[1] in key for key in keys), keys


@pytest.mark.registry
def test_registry_storage_variable_would_replace_the_whole_section(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # Why the container has no REGISTRY_STORAGE: Distribution's parser replaces the
    # storage section with {s3: {}}, so the bucket and region in the file are lost.
    config = json.loads(
        registry_config(settings(storage="s3", s3_bucket="cv-images", s3_region="eu-west-1"))
    )
    with (
        pytest.raises(pytest.fail.Exception, match="no region parameter provided"),
        serving(config, tmp_path, {"REGISTRY_STORAGE": "s3"}),
    ):
        pass


# --- ECR, against moto's server ------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "absent-credentials"))
    ecr_token.cache_clear()
    yield
    ecr_token.cache_clear()


def test_ecr_token_for_an_existing_repository(moto_endpoint: str, aws: None) -> None:
    import boto3

    client = boto3.client("ecr", region_name="eu-west-1", endpoint_url=moto_endpoint)
    with contextlib.suppress(client.exceptions.RepositoryAlreadyExistsException):
        client.create_repository(repositoryName="cv-platform/model-server")
    token = ecr_token(ECR_REPO, "eu-west-1", moto_endpoint)
    assert token.username == "AWS"
    assert token.password
    assert token.endpoint.startswith("https://")
    # Cached: one login per run, whoever asks.
    assert ecr_token(ECR_REPO, "eu-west-1", moto_endpoint) is token


def test_ecr_missing_repository_is_one_clear_line(moto_endpoint: str, aws: None) -> None:
    missing = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/cv-platform/absent"
    with pytest.raises(RegistryConfigError) as caught:
        ecr_token(missing, "eu-west-1", moto_endpoint)
    message = str(caught.value)
    assert "repository 'cv-platform/absent' not found in account 123456789012" in message
    assert "\n" not in message


def test_ecr_without_credentials_says_how_to_provide_them(
    moto_endpoint: str, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    # No instance metadata service here: do not wait for one.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(RegistryConfigError, match="no AWS credentials found; set AWS_PROFILE"):
        ecr_token(ECR_REPO, "eu-west-1", moto_endpoint)


# --- Tooling settings --------------------------------------------------------------------------


def secrets(*present: str) -> Any:
    values = {name: pulumi.Output.secret(f"value-of-{name}") for name in present}
    return values.get


ALL_SECRETS = ("jenkinsAdminPassword", "toolingRegistryHtpasswd", "toolingRegistryPassword")
REPO_URL = "https://github.com/example/cv-platform.git"


BACKEND = "s3://cv-platform-pulumi-state?region=eu-west-1"


def tooling(**registry: Any) -> str:
    return json.dumps(
        {
            "enabled": True,
            "registry": registry,
            "jenkins": {"repositoryUrl": REPO_URL, "pulumiBackendUrl": BACKEND},
        }
    )


def jenkins(**fields: str) -> str:
    return json.dumps({"enabled": True, "jenkins": {"repositoryUrl": REPO_URL, **fields}})


def test_tooling_off_by_default_and_in_prod_refused() -> None:
    assert parse_tooling(None, environment="staging", secret=secrets()) is None
    assert parse_tooling('{"enabled": false}', environment="prod", secret=secrets()) is None
    with pytest.raises(SettingsError, match="only the staging stack owns the CI tooling"):
        parse_tooling(tooling(), environment="prod", secret=secrets(*ALL_SECRETS))


def test_tooling_defaults() -> None:
    parsed = parse_tooling(tooling(), environment="staging", secret=secrets(*ALL_SECRETS))
    assert parsed is not None
    assert parsed.docker_host == "unix:///var/run/docker.sock"
    assert (parsed.registry.host, parsed.registry.storage, parsed.registry.tls) == (
        "127.0.0.1:5000",
        "volume",
        False,
    )
    assert parsed.jenkins.url == "http://127.0.0.1:8080/"
    assert (parsed.jenkins.repository_owner, parsed.jenkins.repository_name) == (
        "example",
        "cv-platform",
    )
    assert parsed.jenkins.github_token is None


@pytest.mark.parametrize(
    ("raw", "present", "message"),
    [
        (
            tooling(),
            ("toolingRegistryHtpasswd", "toolingRegistryPassword"),
            "jenkinsAdminPassword is required",
        ),
        (tooling(), ("jenkinsAdminPassword",), "htpasswd -nbB ci"),
        (
            tooling(),
            ("jenkinsAdminPassword", "toolingRegistryHtpasswd"),
            "toolingRegistryPassword is required for the self-hosted registry",
        ),
        (tooling(kind="quay"), ALL_SECRETS, "tooling.registry.kind must be one of selfHosted|ecr"),
        (tooling(kind="ecr"), ALL_SECRETS, "tooling.registry.ecrRepository is required"),
        (tooling(port=0), ALL_SECRETS, "tooling.registry.port must be a port"),
        (tooling(port="5000"), ALL_SECRETS, "tooling.registry.port must be an integer"),
        (tooling(storage="s3"), ALL_SECRETS, "tooling.registry.s3Bucket must name an S3 bucket"),
        (tooling(colour="red"), ALL_SECRETS, "tooling.registry.colour is not a known field"),
        (
            tooling(address="0.0.0.0"),  # noqa: S104
            ALL_SECRETS,
            "without TLS the registry is published on loopback",
        ),
        ('{"enabled": true, "dockerHost": "npipe://x"}', ALL_SECRETS, "tooling.dockerHost must be"),
        ('{"enabled": true}', ALL_SECRETS, "tooling.jenkins.repositoryUrl is required"),
        (
            jenkins(githubUser="bot:token", pulumiBackendUrl=BACKEND),
            ALL_SECRETS,
            "tooling.jenkins.githubUser must be a GitHub login",
        ),
        (
            jenkins(pulumiBackendUrl="https://user:pw@state.example.internal/"),
            ALL_SECRETS,
            "tooling.jenkins.pulumiBackendUrl must not carry credentials",
        ),
        (jenkins(), ALL_SECRETS, "tooling.jenkins.pulumiBackendUrl is required with the CI"),
        (
            jenkins(pulumiBackendUrl="file:///var/lib/cv-platform/state"),
            ALL_SECRETS,
            "a file backend inside the agent container",
        ),
        (
            jenkins(pulumiBackendUrl="ftp://state.example.internal/"),
            ALL_SECRETS,
            "must be a shared Pulumi backend URL",
        ),
        ('"on"', ALL_SECRETS, "cv-platform:tooling must be an object"),
    ],
)
def test_tooling_rules_name_the_key(raw: str, present: tuple[str, ...], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("|", r"\|").replace(".", r"\.")):
        parse_tooling(raw, environment="staging", secret=secrets(*present))


def test_tls_needs_both_halves() -> None:
    with pytest.raises(SettingsError, match="go together"):
        parse_tooling(
            tooling(), environment="staging", secret=secrets(*ALL_SECRETS, "toolingRegistryTlsCert")
        )
    with_tls = parse_tooling(
        tooling(address="0.0.0.0", host="registry.example.internal"),  # noqa: S104
        environment="staging",
        secret=secrets(*ALL_SECRETS, "toolingRegistryTlsCert", "toolingRegistryTlsKey"),
    )
    assert with_tls is not None
    assert with_tls.registry.tls


def test_ecr_needs_no_htpasswd() -> None:
    parsed = parse_tooling(
        tooling(kind="ecr", ecrRepository=ECR_REPO),
        environment="staging",
        secret=secrets("jenkinsAdminPassword"),
    )
    assert parsed is not None
    assert parsed.registry.host == "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert parsed.registry.ecr_region == "eu-west-1"


def test_ecr_mode_program_pulls_with_an_ecr_token(
    moto_endpoint: str, aws: None, monkeypatch: pytest.MonkeyPatch, project_root: Path
) -> None:
    """The whole staging program with tooling.registry.kind ecr, against moto."""
    import base64

    import boto3
    from pulumi.runtime.rpc import is_rpc_secret

    from pipeline.project import Project
    from tests.infra.conftest import run_stack_file

    client = boto3.client("ecr", region_name="eu-west-1", endpoint_url=moto_endpoint)
    with contextlib.suppress(client.exceptions.RepositoryAlreadyExistsException):
        client.create_repository(repositoryName="cv-platform/model-server")
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", moto_endpoint)  # boto3's per-service endpoint
    tooling = {
        "enabled": True,
        "registry": {"kind": "ecr", "ecrRepository": ECR_REPO},
        "jenkins": {"repositoryUrl": REPO_URL, "pulumiBackendUrl": BACKEND},
    }
    run = run_stack_file(Project(project_root), "staging", {"tooling": tooling})
    host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert run.outputs["registryHost"] == host
    names = {r.name for r in run.resources if r.type == "docker:index/container:Container"}
    assert "cv-platform-registry-server" not in names  # nothing self-hosted
    pull = next(r for r in run.resources if r.is_kubernetes_object and r.inputs["kind"] == "Secret")
    data = pull.inputs["data"]
    assert is_rpc_secret(data) or is_rpc_secret(data[".dockerconfigjson"])
    data = data["value"] if is_rpc_secret(data) else data
    encoded = data[".dockerconfigjson"]
    encoded = encoded["value"] if is_rpc_secret(encoded) else encoded
    auth = json.loads(base64.b64decode(encoded))["auths"][host]
    assert auth["username"] == "AWS"
    # The very token the program got (cached for the run; endpoint from the environment).
    assert auth["password"] == ecr_token(ECR_REPO, "eu-west-1").password
