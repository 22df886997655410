"""The registry client against a real docker-registry, a scripted fake, and moto (ECR)."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import RegistryError
from pipeline.images.client import ACCEPT, MANIFEST_MEDIA_TYPES, RegistryClient, client_for_stack
from pipeline.images.credentials import docker_credentials
from pipeline.images.ecr import EcrTokens
from pipeline.images.refs import ImageRef, parse_ref
from pipeline.io.http import Response
from tests.pipeline.fake_registry import MANIFEST_DIGEST, Script, fake_registry
from tests.pipeline.fake_transport import FakeTransport, answer
from tests.registry_fixture import PushedImages, RegistryServer, free_port

pytestmark = pytest.mark.registry


@pytest.fixture
def client(registry_server: RegistryServer, tmp_path: Path) -> RegistryClient:
    config = registry_server.docker_config(tmp_path / "docker")
    return RegistryClient(docker_config=config / "config.json")


def _ref(images: PushedImages, tag: str) -> ImageRef:
    return parse_ref(f"{images.name}:{tag}")


# -- against the real registry ------------------------------------------------


def test_resolves_an_oci_manifest_tag(
    client: RegistryClient, registry_images: PushedImages
) -> None:
    assert client.resolve(_ref(registry_images, "v1")) == registry_images.v1.digest


def test_multi_arch_tag_resolves_to_the_index_digest(
    client: RegistryClient, registry_images: PushedImages
) -> None:
    digest = client.resolve(_ref(registry_images, "multi"))
    assert digest == registry_images.multi.digest
    assert digest == registry_images.server.skopeo_digest(registry_images.repository, "multi")


def test_resolves_a_docker_v2_manifest_tag(
    client: RegistryClient, registry_images: PushedImages
) -> None:
    assert client.resolve(_ref(registry_images, "v1-docker")) == registry_images.docker_v1_digest


def test_accept_names_all_four_manifest_media_types() -> None:
    assert len(MANIFEST_MEDIA_TYPES) == 4
    for media_type in MANIFEST_MEDIA_TYPES:
        assert media_type in ACCEPT


def test_a_pinned_digest_resolves_to_itself(
    client: RegistryClient, registry_images: PushedImages
) -> None:
    ref = parse_ref(f"{registry_images.name}@{registry_images.v2.digest}")
    assert client.resolve(ref) == registry_images.v2.digest


def test_unknown_tag_is_not_found(client: RegistryClient, registry_images: PushedImages) -> None:
    with pytest.raises(RegistryError, match=rf"^tag v404 not found in {registry_images.name}$"):
        client.resolve(_ref(registry_images, "v404"))


def test_unknown_digest_is_not_found(client: RegistryClient, registry_images: PushedImages) -> None:
    missing = "sha256:" + "9" * 64
    with pytest.raises(RegistryError, match=f"digest {missing} not found"):
        client.resolve(parse_ref(f"{registry_images.name}@{missing}"))


def test_manifest_digest_matches_is_the_promote_gate(
    client: RegistryClient, registry_images: PushedImages
) -> None:
    assert client.manifest_digest_matches(registry_images.name, registry_images.multi.digest)
    assert not client.manifest_digest_matches(registry_images.name, "sha256:" + "9" * 64)


def test_list_tags_on_the_real_registry(
    client: RegistryClient, registry_images: PushedImages
) -> None:
    tags = client.list_tags(registry_images.name, page_size=2)
    assert len(tags) == len(set(tags))
    # The registry is shared by the session: the set-image concurrency tests add c00..c19.
    own = sorted(tag for tag in tags if not re.fullmatch(r"c\d\d", tag))
    assert own == ["latest", "multi", "v1", "v1-docker", "v2"]


def test_list_tags_follows_link_pagination() -> None:
    # Distribution 2.8 (Debian's docker-registry) ignores n; 3.x and most
    # hosted registries page, which the scripted registry does here.
    script = Script(tags=[f"t{i:02d}" for i in range(7)])
    with fake_registry(script) as host:
        tags = RegistryClient().list_tags(f"{host}/cv/model", page_size=3)
    assert tags == [f"t{i:02d}" for i in range(7)]
    pages = [path for method, path, _ in script.requests if "/tags/list" in path]
    assert pages == [
        "/v2/cv/model/tags/list?n=3",
        "/v2/cv/model/tags/list?last=t02&n=3",
        "/v2/cv/model/tags/list?last=t05&n=3",
    ]


def test_wrong_password_is_an_authentication_error(
    registry_images: PushedImages, tmp_path: Path
) -> None:
    auth = base64.b64encode(f"{registry_images.server.user}:Xq7-bad-pass".encode()).decode()
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {registry_images.server.host: {"auth": auth}}})
    )
    client = RegistryClient(docker_config=tmp_path / "config.json")
    with pytest.raises(RegistryError) as caught:
        client.resolve(_ref(registry_images, "v1"))
    message = str(caught.value)
    assert message.startswith(f"authentication failed for {registry_images.server.host}: ")
    assert "$DOCKER_CONFIG/config.json" in message
    assert "Xq7-bad-pass" not in message


def test_no_credentials_is_an_authentication_error(
    registry_images: PushedImages, tmp_path: Path
) -> None:
    client = RegistryClient(docker_config=tmp_path / "absent.json")
    with pytest.raises(RegistryError, match=r"^authentication failed for 127\.0\.0\.1:"):
        client.resolve(_ref(registry_images, "v1"))


# -- docker config and credential helpers --------------------------------------


@pytest.mark.parametrize(
    "key", ["127.0.0.1:5000", "http://127.0.0.1:5000", "https://127.0.0.1:5000/v2/"]
)
def test_docker_config_auth_entries_match_like_docker(key: str, tmp_path: Path) -> None:
    auth = base64.b64encode(b"robot:pa:ss").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {key: {"auth": auth}}}))
    creds = docker_credentials("127.0.0.1:5000", tmp_path / "config.json")
    assert creds is not None
    assert (creds.username, creds.password) == ("robot", "pa:ss")
    assert "pa:ss" not in repr(creds)


def test_docker_config_username_password_and_docker_hub_key(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {"https://index.docker.io/v1/": {"username": "u", "password": "p"}}})
    )
    creds = docker_credentials("docker.io", tmp_path / "config.json")
    assert creds is not None
    assert (creds.username, creds.password) == ("u", "p")
    assert docker_credentials("ghcr.io", tmp_path / "config.json") is None


def test_docker_config_credential_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helper = tmp_path / "bin" / "docker-credential-fake"
    helper.parent.mkdir()
    helper.write_text(
        "#!/bin/sh\nread host\n"
        'printf \'{"ServerURL":"%s","Username":"helper-user","Secret":"s3cret"}\' "$host"\n'
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "config.json").write_text(json.dumps({"credHelpers": {"r.example.io": "fake"}}))
    creds = docker_credentials("r.example.io", tmp_path / "config.json")
    assert creds is not None
    assert (creds.username, creds.password) == ("helper-user", "s3cret")


def test_unreadable_docker_config_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(RegistryError, match=r"cannot read Docker credentials from .*config\.json"):
        docker_credentials("r.io", tmp_path / "config.json")


def test_a_docker_config_that_is_not_a_file_says_why_in_words(tmp_path: Path) -> None:
    (tmp_path / "config.json").mkdir()
    with pytest.raises(RegistryError, match=r"config\.json: Is a directory$"):
        docker_credentials("r.io", tmp_path / "config.json")


# -- plain HTTP only for loopback and configured hosts -------------------------


@pytest.mark.parametrize(
    ("host", "scheme"),
    [
        ("127.0.0.1:5000", "http"),
        ("127.8.9.10:5000", "http"),
        ("localhost:5000", "http"),
        ("localhost", "http"),
        ("[::1]:5000", "http"),
        ("10.0.0.5:5000", "https"),
        ("registry.example.internal", "https"),
        ("registry.ci.internal:5000", "http"),  # listed in insecureRegistries below
        ("docker.io", "https"),
    ],
)
def test_plain_http_only_for_loopback_or_insecure_registries(host: str, scheme: str) -> None:
    client = client_for_stack(["registry.ci.internal:5000"])
    assert client.scheme(host) == scheme


def test_docker_hub_api_host() -> None:
    assert RegistryClient().base_url("docker.io") == "https://registry-1.docker.io"


# -- failures: a scripted fake registry ----------------------------------------


def _fake_client(**kwargs: Any) -> tuple[RegistryClient, list[float]]:
    sleeps: list[float] = []
    options: dict[str, Any] = {"sleep": sleeps.append, "backoff": 0.5, "max_retry_sleep": 10.0}
    options.update(kwargs)
    return RegistryClient(**options), sleeps


def test_5xx_is_retried_with_exponential_backoff_then_fails(tmp_path: Path) -> None:
    script = Script(fail_status=500, fail_first=99)
    with fake_registry(script) as host:
        client, sleeps = _fake_client(retries=3, docker_config=tmp_path / "none.json")
        with pytest.raises(RegistryError) as caught:
            client.resolve(parse_ref(f"{host}/cv/model:v1"))
    assert str(caught.value) == (
        f"registry {host} answered 500 Internal Server Error for HEAD {host}/cv/model:v1 "
        "after 4 attempts"
    )
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(script.requests) == 4


def test_retry_after_is_honoured_and_capped(tmp_path: Path) -> None:
    script = Script(fail_status=503, fail_first=2, retry_after="3600")
    with fake_registry(script) as host:
        client, sleeps = _fake_client(retries=3, max_retry_sleep=7.0)
        assert client.resolve(parse_ref(f"{host}/cv/model:v1")) == MANIFEST_DIGEST
    assert sleeps == [7.0, 7.0]


def test_retry_after_seconds_and_http_date(tmp_path: Path) -> None:
    script = Script(fail_status=429, fail_first=1, retry_after="2")
    with fake_registry(script) as host:
        client, sleeps = _fake_client(retries=2)
        assert client.resolve(parse_ref(f"{host}/cv/model:v1")) == MANIFEST_DIGEST
    assert sleeps == [2.0]
    when = (datetime.now(UTC) + timedelta(seconds=5)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    script = Script(fail_status=503, fail_first=1, retry_after=when)
    with fake_registry(script) as host:
        client, sleeps = _fake_client(retries=2)
        client.resolve(parse_ref(f"{host}/cv/model:v1"))
    assert len(sleeps) == 1
    assert 3.0 <= sleeps[0] <= 5.0


def test_really_waits_for_retry_after() -> None:
    script = Script(fail_status=503, fail_first=1, retry_after="1")
    with fake_registry(script) as host:
        client = RegistryClient(retries=1)
        started = time.monotonic()
        assert client.resolve(parse_ref(f"{host}/cv/model:v1")) == MANIFEST_DIGEST
        assert time.monotonic() - started >= 1.0


def test_a_hanging_registry_times_out_after_bounded_retries() -> None:
    script = Script(delay=1.0)
    with fake_registry(script) as host:
        client, sleeps = _fake_client(timeout=0.2, retries=1, backoff=0.01)
        started = time.monotonic()
        with pytest.raises(RegistryError) as caught:
            client.resolve(parse_ref(f"{host}/cv/model:v1"))
        assert time.monotonic() - started < 1.5
    assert str(caught.value).startswith(f"registry {host} did not answer within 0.2 s")
    assert sleeps == [0.01]


def test_refused_connection_names_host_and_cause() -> None:
    host = f"127.0.0.1:{free_port()}"
    client, sleeps = _fake_client()
    with pytest.raises(RegistryError) as caught:
        client.resolve(parse_ref(f"{host}/cv/model:v1"))
    assert str(caught.value) == (
        f"cannot reach registry {host} at http://{host}: connection refused"
    )
    assert sleeps == []


def test_missing_digest_header_falls_back_to_get_and_hash() -> None:
    script = Script(digest_header=False)
    with fake_registry(script) as host:
        assert RegistryClient().resolve(parse_ref(f"{host}/cv/model:v1")) == MANIFEST_DIGEST
    assert [method for method, _, _ in script.requests] == ["HEAD", "GET"]


def test_bearer_token_flow_with_docker_config_credentials(tmp_path: Path) -> None:
    script = Script(bearer_user="robot", bearer_password="pw")
    auth = base64.b64encode(b"robot:pw").decode()
    with fake_registry(script) as host:
        (tmp_path / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
        client = RegistryClient(docker_config=tmp_path / "config.json")
        ref = parse_ref(f"{host}/cv/model:v1")
        assert client.resolve(ref) == MANIFEST_DIGEST
        assert client.resolve(ref) == MANIFEST_DIGEST
    assert script.token_requests == 1  # the token is reused until it expires
    token_calls = [path for _, path, _ in script.requests if path.startswith("/token")]
    assert "service=fake" in token_calls[0]
    assert "scope=repository%3Acv%2Fmodel%3Apull" in token_calls[0]


def test_netrc_does_not_override_the_chosen_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "netrc").write_text("machine 127.0.0.1 login intruder password netrc-pw\n")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    script = Script(bearer_user="robot", bearer_password="pw")
    auth = base64.b64encode(b"robot:pw").decode()
    with fake_registry(script) as host:
        (tmp_path / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
        client = RegistryClient(docker_config=tmp_path / "config.json")
        assert client.resolve(parse_ref(f"{host}/cv/model:v1")) == MANIFEST_DIGEST
    netrc_header = "Basic " + base64.b64encode(b"intruder:netrc-pw").decode()
    assert all(sent != netrc_header for _, _, sent in script.requests)


def test_bearer_token_refused_is_an_authentication_error(tmp_path: Path) -> None:
    script = Script(bearer_user="robot", bearer_password="pw")
    auth = base64.b64encode(b"robot:nope").decode()
    with fake_registry(script) as host:
        (tmp_path / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
        client = RegistryClient(docker_config=tmp_path / "config.json")
        with pytest.raises(RegistryError, match=f"^authentication failed for {host}: "):
            client.resolve(parse_ref(f"{host}/cv/model:v1"))


# -- ECR: token from boto3 (moto server), cached until it expires --------------

ECR_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def _ecr_registry(expected: str) -> FakeTransport:
    """Stands in for the ECR registry endpoint: wants Basic AWS:<token password>."""

    def respond(method: str, url: str, headers: Mapping[str, str]) -> Response:
        if headers.get("Authorization") != expected:
            realm = f'Basic realm="https://{ECR_HOST}/",service="ecr.amazonaws.com"'
            return answer(401, url, {"WWW-Authenticate": realm})
        manifest = "application/vnd.oci.image.manifest.v1+json"
        return answer(
            200, url, {"Docker-Content-Digest": MANIFEST_DIGEST, "Content-Type": manifest}
        )

    return FakeTransport(respond)


def test_ecr_token_from_boto3_is_cached_until_it_expires(aws_env: str) -> None:
    import boto3

    calls: list[str] = []

    def factory(region: str) -> Any:
        calls.append(region)
        return boto3.client("ecr", region_name=region)

    token = boto3.client("ecr", region_name="us-east-1").get_authorization_token()[
        "authorizationData"
    ][0]["authorizationToken"]
    adapter = _ecr_registry(f"Basic {token}")
    now = [1_000_000.0]
    tokens = EcrTokens(client_factory=factory, clock=lambda: now[0], margin_seconds=0)
    client = RegistryClient(session=adapter, ecr=tokens)
    ref = parse_ref(f"{ECR_HOST}/cv/model:v1")
    assert client.resolve(ref) == MANIFEST_DIGEST
    assert client.resolve(ref) == MANIFEST_DIGEST
    assert calls == ["us-east-1"]
    assert all(sent["Authorization"] == f"Basic {token}" for _, _, sent in adapter.sent)
    now[0] = datetime.now(UTC).timestamp() + 13 * 3600  # past expiresAt
    client.resolve(ref)
    assert calls == ["us-east-1", "us-east-1"]


def test_ecr_without_aws_credentials_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def factory(region: str) -> Any:
        import boto3
        from botocore.config import Config

        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        return boto3.Session().client(
            "ecr", region_name=region, config=Config(connect_timeout=1, retries={"max_attempts": 1})
        )

    client = RegistryClient(ecr=EcrTokens(client_factory=factory))
    with pytest.raises(RegistryError) as caught:
        client.resolve(parse_ref(f"{ECR_HOST}/cv/model:v1"))
    assert str(caught.value).startswith(f"authentication failed for {ECR_HOST}: ECR ")
    assert "\n" not in str(caught.value)


# -- only manifests and indexes are pinned ----------------------------------------------


@pytest.mark.parametrize(
    ("script", "fragment"),
    [
        (
            Script(digest_header=False, manifest_type="text/html", manifest=b"<html>hi</html>"),
            "answered text/html for",
        ),
        (
            Script(manifest_type="text/html", manifest=b"<html>hi</html>"),
            "answered text/html for",
        ),
        (
            Script(digest_header=False, manifest_type=None, manifest=b"<html>hi</html>"),
            "answered no media type for",
        ),
        (
            Script(
                digest_header=False,
                manifest_type="application/json",
                manifest=b'{"schemaVersion": 2, '
                b'"mediaType": "application/vnd.oci.image.layer.v1.tar"}',
            ),
            "answered application/vnd.oci.image.layer.v1.tar for",
        ),
        (
            Script(
                digest_header=False,
                manifest_type="application/vnd.oci.image.manifest.v1+json",
                manifest=b"<html>not json</html>",
            ),
            "answered application/vnd.oci.image.manifest.v1+json for",
        ),
        (
            Script(
                digest_header=False, manifest_type="application/octet-stream", manifest=b"\0" * 64
            ),
            "not an image manifest or index",
        ),
    ],
    ids=["html-get", "html-head", "untyped-html", "layer-type", "typed-not-json", "blob"],
)
def test_only_manifests_and_indexes_are_pinned(script: Script, fragment: str) -> None:
    with fake_registry(script) as host:
        client = RegistryClient(retries=0)
        with pytest.raises(RegistryError) as caught:
            client.resolve(parse_ref(f"{host}/cv/model:v1"))
    assert fragment in str(caught.value)
    assert "nothing pinned" in str(caught.value)


def test_a_manifest_without_a_content_type_is_read_from_its_body() -> None:
    # Untyped (or generic) answers are accepted when the body says it is a manifest.
    with fake_registry(Script(manifest_type="application/json")) as host:
        digest = RegistryClient(retries=0).resolve(parse_ref(f"{host}/cv/model:v1"))
    assert digest == MANIFEST_DIGEST
