"""A small OCI distribution client: resolve tags to digests, verify digests, list tags.

What it speaks (distribution-spec v1.1):

- ``HEAD /v2/<name>/manifests/<reference>`` with all four manifest media types
  in ``Accept`` (so a multi-arch tag resolves to its *index* digest, which is
  what gets pinned), reading ``Docker-Content-Digest``; when the header is
  missing, ``GET`` the manifest and hash the bytes.
- ``GET /v2/<name>/tags/list?n=...`` following ``Link: <...>; rel="next"``.
- Auth: anonymous, Basic, and the Bearer token flow from ``WWW-Authenticate``
  (realm/service/scope). Credentials come from ``$DOCKER_CONFIG/config.json``
  (``auths``, ``credHelpers``, ``credsStore``) as docker and skopeo read them;
  ECR hosts (``<account>.dkr.ecr.<region>.amazonaws.com``) get a token from
  boto3 ``get_authorization_token``, cached until it expires.
- Plain HTTP only for loopback hosts (as Docker allows) and hosts listed in the
  stack's ``insecureRegistries``; HTTPS with verification otherwise.
- The transport is ``pipeline.httpclient`` (the standard library's
  ``http.client``: kept-alive connections, proxies from the environment,
  redirects that drop ``Authorization`` off-origin); ``requests`` alone cost
  about as much to import as the rest of a ``set-image`` run.
- Every call has a timeout; 429 and 5xx are retried a bounded number of times
  with exponential backoff, honouring ``Retry-After`` up to a maximum sleep.

Failures are ``RegistryError`` with one line naming the host and the cause.
Credentials never appear in messages.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from pipeline import httpclient
from pipeline.errors import RegistryError
from pipeline.httpclient import (
    HttpError,
    HttpTimeout,
    HttpTlsError,
    Response,
    Session,
    Transport,
    basic_auth,
    failure,
)
from pipeline.refs import (
    DIGEST_HEX_LENGTHS,
    DOCKER_HUB,
    ImageRef,
    InvalidReferenceError,
    parse_digest,
    parse_name,
)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_MEDIA_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_MEDIA_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)

DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5
DEFAULT_MAX_RETRY_SLEEP = 10.0
MAX_TAG_PAGES = 1000
HELPER_TIMEOUT = 15.0

_DOCKER_HUB_API = "registry-1.docker.io"
_DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_ECR_HOST = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$"
)
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def basic_header(self) -> str:
        return basic_auth(self.username, self.password)


# --------------------------------------------------------------------------
# Hosts


def _hostname(host: str) -> str:
    """``host[:port]`` (or ``[v6]:port``) without the port, brackets stripped."""
    if host.startswith("["):
        return host[1 : host.index("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    """``host[:port]`` on this machine (plain HTTP is fine there)."""
    return httpclient.is_loopback(_hostname(host))


def api_host(registry: str) -> str:
    """Where the registry's API lives (Docker Hub's is not docker.io)."""
    return _DOCKER_HUB_API if registry == DOCKER_HUB else registry


def ecr_host(host: str) -> tuple[str, str] | None:
    """``(account, region)`` for an ECR registry host, else ``None``."""
    match = _ECR_HOST.match(_hostname(host))
    return (match["account"], match["region"]) if match else None


# --------------------------------------------------------------------------
# Credentials: the Docker config, credential helpers, ECR


def docker_config_path() -> Path:
    """``$DOCKER_CONFIG/config.json``, by default ``~/.docker/config.json``."""
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base if base else Path.home() / ".docker") / "config.json"


def _auth_key_host(key: str) -> str:
    text = key if "://" in key else f"//{key}"
    netloc = urlsplit(text).netloc or key
    return netloc.lower()


def _same_registry(key_host: str, registry: str) -> bool:
    if registry in _DOCKER_HUB_ALIASES:
        return key_host in _DOCKER_HUB_ALIASES
    return key_host == registry.lower()


def _run_helper(helper: str, registry: str) -> Credentials | None:
    server = _DOCKER_HUB_AUTH_KEY if registry in _DOCKER_HUB_ALIASES else registry
    try:
        done = subprocess.run(
            [f"docker-credential-{helper}", "get"],
            input=server,
            capture_output=True,
            text=True,
            timeout=HELPER_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise RegistryError(
            f"credential helper docker-credential-{helper} (for {registry}, from "
            f"{docker_config_path()}) is not on PATH"
        ) from None
    except subprocess.TimeoutExpired:
        raise RegistryError(
            f"credential helper docker-credential-{helper} did not answer for {registry} "
            f"within {HELPER_TIMEOUT:.0f} s"
        ) from None
    if done.returncode != 0:
        # "credentials not found in native keychain" and the like: anonymous.
        return None
    try:
        data = json.loads(done.stdout)
        username, secret = str(data["Username"]), str(data["Secret"])
    except (ValueError, KeyError, TypeError):
        raise RegistryError(
            f"credential helper docker-credential-{helper} gave an unreadable answer for {registry}"
        ) from None
    if username == "<token>":  # an identity token, which this client does not exchange
        return None
    return Credentials(username, secret)


def docker_credentials(registry: str, config_path: Path | None = None) -> Credentials | None:
    """Credentials for ``registry`` as docker/skopeo find them, or ``None``."""
    path = config_path or docker_config_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RegistryError(
            f"cannot read Docker credentials from {path}: {exc.strerror or exc}"
        ) from None
    except ValueError as exc:
        raise RegistryError(f"cannot read Docker credentials from {path}: {exc}") from None
    if not isinstance(data, dict):
        raise RegistryError(f"cannot read Docker credentials from {path}: not a JSON object")
    helpers = data.get("credHelpers") or {}
    if isinstance(helpers, dict):
        for key, helper in helpers.items():
            if _same_registry(_auth_key_host(key), registry) and isinstance(helper, str):
                return _run_helper(helper, registry)
    auths = data.get("auths") or {}
    if isinstance(auths, dict):
        for key, entry in auths.items():
            if not (_same_registry(_auth_key_host(key), registry) and isinstance(entry, dict)):
                continue
            if entry.get("auth"):
                try:
                    decoded = base64.b64decode(str(entry["auth"]), validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    decoded = ""
                username, sep, password = decoded.partition(":")
                if not sep or not username:
                    raise RegistryError(
                        f"the auths entry for {key} in {path} is not base64 of user:password"
                    )
                return Credentials(username, password)
            if entry.get("username") and entry.get("password"):
                return Credentials(str(entry["username"]), str(entry["password"]))
    store = data.get("credsStore")
    if isinstance(store, str) and store:
        return _run_helper(store, registry)
    return None


EcrClientFactory = Callable[[str], Any]


def _default_ecr_client(region: str) -> Any:
    import boto3  # heavy: only when an ECR host is used

    return boto3.client("ecr", region_name=region)


class EcrTokens:
    """ECR registry credentials from boto3, cached per host until they expire."""

    def __init__(
        self,
        client_factory: EcrClientFactory = _default_ecr_client,
        clock: Callable[[], float] = time.time,
        margin_seconds: float = 300.0,
    ) -> None:
        self._factory = client_factory
        self._clock = clock
        self._margin = margin_seconds
        self._cache: dict[str, tuple[Credentials, float]] = {}

    def credentials(self, host: str) -> Credentials:
        found = ecr_host(host)
        if found is None:
            raise RegistryError(f"{host} is not an ECR registry host")
        cached = self._cache.get(host)
        if cached is not None and self._clock() < cached[1] - self._margin:
            return cached[0]
        account, region = found
        try:
            answer = self._factory(region).get_authorization_token(registryIds=[account])
            data = answer["authorizationData"][0]
            decoded = base64.b64decode(data["authorizationToken"]).decode("utf-8")
        except RegistryError:
            raise
        except Exception as exc:  # noqa: BLE001 - botocore raises many kinds; one line out
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RegistryError(
                f"authentication failed for {host}: ECR get_authorization_token: {detail} "
                "(check AWS credentials and region)"
            ) from None
        username, _, password = decoded.partition(":")
        expires = data.get("expiresAt")
        if isinstance(expires, datetime):
            expires_at = expires.astimezone(UTC).timestamp()
        else:
            expires_at = self._clock() + 12 * 3600.0  # ECR tokens live 12 hours
        creds = Credentials(username, password)
        self._cache[host] = (creds, expires_at)
        return creds


# --------------------------------------------------------------------------
# The client


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
        for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return scheme.lower(), params


def _retry_after(response: Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _failure(exc: HttpError, service: str) -> str:
    if isinstance(exc, HttpTlsError):
        hint = "TLS handshake failed (a plain-HTTP registry? list it in insecureRegistries)"
        return f"cannot reach {service}: {hint}"
    return failure(exc, service)


@dataclass
class _Token:
    header: str
    expires: float


class RegistryClient:
    """Talks to OCI registries. ``session`` is the HTTP transport (``httpclient.Session``)."""

    def __init__(
        self,
        *,
        insecure_registries: Iterable[str] = (),
        docker_config: Path | None = None,
        session: Transport | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        max_retry_sleep: float = DEFAULT_MAX_RETRY_SLEEP,
        sleep: Callable[[float], None] = time.sleep,
        ecr: EcrTokens | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.insecure_registries = frozenset(h.lower() for h in insecure_registries)
        self.docker_config = docker_config
        self.session: Transport = session or Session()
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_retry_sleep = max_retry_sleep
        self._sleep = sleep
        self._clock = clock
        self._ecr = ecr or EcrTokens()
        self._tokens: dict[tuple[str, str], _Token] = {}
        self._basic_hosts: set[str] = set()
        self._credentials: dict[str, Credentials | None] = {}

    # -- plumbing -----------------------------------------------------------

    def scheme(self, registry: str) -> str:
        plain = is_loopback(registry) or registry.lower() in self.insecure_registries
        return "http" if plain else "https"

    def base_url(self, registry: str) -> str:
        return f"{self.scheme(registry)}://{api_host(registry)}"

    def _credentials_for(self, registry: str) -> Credentials | None:
        if ecr_host(registry):
            return self._ecr.credentials(registry)
        if registry not in self._credentials:
            self._credentials[registry] = docker_credentials(registry, self.docker_config)
        return self._credentials[registry]

    def _auth_failed(self, registry: str) -> RegistryError:
        if ecr_host(registry):
            return RegistryError(
                f"authentication failed for {registry}: check the AWS credentials and that "
                "they may pull from this repository"
            )
        where = self.docker_config or docker_config_path()
        return RegistryError(
            f"authentication failed for {registry}: check credentials in "
            f"$DOCKER_CONFIG/config.json ({where})"
        )

    def _timeout_seconds(self) -> float:
        return self.timeout if isinstance(self.timeout, float | int) else max(self.timeout)

    def _send(self, method: str, url: str, registry: str, headers: Mapping[str, str]) -> Response:
        """One HTTP exchange, retried on 429/5xx and timeouts; errors as RegistryError."""
        attempts = self.retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self.session.request(
                    method, url, headers=dict(headers), timeout=self.timeout
                )
            except HttpTimeout:
                if last:
                    raise RegistryError(
                        f"registry {registry} did not answer within "
                        f"{self._timeout_seconds():g} s ({method} {urlsplit(url).path}, "
                        f"{attempts} attempts)"
                    ) from None
                self._sleep(min(self.backoff * 2**attempt, self.max_retry_sleep))
                continue
            except HttpError as exc:
                service = f"registry {registry} at {self.base_url(registry)}"
                raise RegistryError(_failure(exc, service)) from None
            if response.status_code in _RETRY_STATUSES and not last:
                wait = _retry_after(response)
                if wait is None:
                    wait = self.backoff * 2**attempt
                response.close()
                self._sleep(min(wait, self.max_retry_sleep))
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _authorize(self, registry: str, scope: str, challenge_header: str) -> str:
        """Answer a 401 challenge; returns the Authorization header to retry with."""
        scheme, params = _parse_challenge(challenge_header)
        creds = self._credentials_for(registry)
        if scheme == "basic":
            if creds is None:
                raise self._auth_failed(registry)
            self._basic_hosts.add(registry)
            return creds.basic_header()
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(
                f"registry {registry} asks for unsupported authentication {scheme or '(none)'}"
            )
        realm = params["realm"]
        realm_parts = urlsplit(realm)
        if realm_parts.scheme not in ("http", "https"):
            raise RegistryError(f"registry {registry} sent an invalid token realm {realm!r}")
        if (
            realm_parts.scheme == "http"
            and creds is not None
            and not (is_loopback(realm_parts.netloc) or registry in self.insecure_registries)
        ):
            raise RegistryError(
                f"registry {registry} wants credentials sent to {realm} over plain HTTP; refused"
            )
        query: dict[str, str] = {}
        if params.get("service"):
            query["service"] = params["service"]
        query["scope"] = params.get("scope") or scope
        headers = {"Accept": "application/json"}
        if creds is not None:
            headers["Authorization"] = creds.basic_header()
        try:
            response = self.session.request(
                "GET", realm, params=query, headers=headers, timeout=self.timeout
            )
        except HttpError as exc:
            service = f"token service {realm_parts.netloc} for {registry}"
            raise RegistryError(_failure(exc, service)) from None
        if response.status_code in (401, 403):
            raise self._auth_failed(registry)
        if response.status_code != 200:
            raise RegistryError(
                f"token service {realm_parts.netloc} for {registry} answered "
                f"{response.status_code} {response.reason}"
            )
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
            expires_in = float(body.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            token = None
            expires_in = 60.0
        if not isinstance(token, str) or not token:
            raise RegistryError(f"token service {realm_parts.netloc} for {registry} sent no token")
        header = f"Bearer {token}"
        self._tokens[(registry, scope)] = _Token(header, self._clock() + max(expires_in - 5, 1))
        return header

    def _call(
        self, method: str, registry: str, path_or_url: str, *, scope: str, accept: str | None
    ) -> Response:
        url = urljoin(self.base_url(registry) + "/", path_or_url)
        headers: dict[str, str] = {}
        if accept:
            headers["Accept"] = accept
        token = self._tokens.get((registry, scope))
        if token is not None and token.expires > self._clock():
            headers["Authorization"] = token.header
        elif registry in self._basic_hosts or ecr_host(registry):
            creds = self._credentials_for(registry)
            if creds is not None:
                headers["Authorization"] = creds.basic_header()
        response = self._send(method, url, registry, headers)
        if response.status_code == 401:
            challenge = response.headers.get("WWW-Authenticate", "")
            response.close()
            if "Authorization" in headers and not challenge.lower().startswith("bearer"):
                raise self._auth_failed(registry)
            headers["Authorization"] = self._authorize(registry, scope, challenge)
            response = self._send(method, url, registry, headers)
            if response.status_code == 401:
                response.close()
                raise self._auth_failed(registry)
        if response.status_code == 403:
            response.close()
            raise RegistryError(
                f"registry {registry} denied access ({scope}): the credentials lack permission"
            )
        return response

    def _unexpected(self, response: Response, registry: str, what: str) -> RegistryError:
        detail = ""
        try:
            errors = response.json().get("errors") or []
            if errors:
                detail = f": {errors[0].get('code', '')} {errors[0].get('message', '')}".rstrip()
        except (ValueError, AttributeError, TypeError):
            pass
        status = f"{response.status_code} {response.reason or ''}".strip()
        tries = f" after {self.retries + 1} attempts" if response.status_code >= 429 else ""
        return RegistryError(f"registry {registry} answered {status} for {what}{tries}{detail}")

    # -- the API --------------------------------------------------------------

    def _manifest(self, method: str, ref: ImageRef, reference: str) -> Response:
        return self._call(
            method,
            ref.registry,
            f"/v2/{ref.repository}/manifests/{reference}",
            scope=f"repository:{ref.repository}:pull",
            accept=ACCEPT,
        )

    @staticmethod
    def _not_found(ref: ImageRef, reference: str) -> RegistryError:
        kind = (
            "digest" if reference.startswith(tuple(f"{a}:" for a in DIGEST_HEX_LENGTHS)) else "tag"
        )
        return RegistryError(f"{kind} {reference} not found in {ref.name}")

    @staticmethod
    def _check_media_type(response: Response, ref: ImageRef) -> None:
        media_type = (response.headers.get("Content-Type") or "").split(";")[0].strip()
        if media_type.startswith("application/vnd.docker.distribution.manifest.v1"):
            raise RegistryError(
                f"{ref} is a Docker schema 1 manifest ({media_type}); push it again with a "
                "Docker v2 or OCI manifest"
            )

    def resolve(self, ref: ImageRef) -> str:
        """The digest ``ref``'s tag points to now (the index digest for a multi-arch
        image); for a ref with only a digest, that digest once the registry has it.
        """
        reference = ref.tag or ref.reference
        response = self._manifest("HEAD", ref, reference)
        response.close()
        if response.status_code == 404:
            raise self._not_found(ref, reference)
        if response.status_code == 200:
            self._check_media_type(response, ref)
            header = response.headers.get("Docker-Content-Digest")
            if header:
                try:
                    digest: str | None = parse_digest(header.strip())
                except InvalidReferenceError:  # a malformed header: hash the body instead
                    digest = None
                if digest is not None:
                    if ref.digest and ref.tag is None and digest != ref.digest:
                        raise RegistryError(
                            f"registry {ref.registry} answered digest {digest} for {ref}"
                        )
                    return digest
        elif response.status_code not in (405, 501):
            raise self._unexpected(response, ref.registry, f"HEAD {ref}")
        return self._digest_by_get(ref, reference)

    def _digest_by_get(self, ref: ImageRef, reference: str) -> str:
        response = self._manifest("GET", ref, reference)
        if response.status_code == 404:
            response.close()
            raise self._not_found(ref, reference)
        if response.status_code != 200:
            raise self._unexpected(response, ref.registry, f"GET {ref}")
        self._check_media_type(response, ref)
        body: bytes = response.content
        computed = "sha256:" + hashlib.sha256(body).hexdigest()
        expected = ref.digest if ref.tag is None else None
        if expected is not None and not expected.startswith("sha256:"):
            algorithm = expected.split(":", 1)[0]
            computed = f"{algorithm}:" + hashlib.new(algorithm, body).hexdigest()
        if expected is not None and computed != expected:
            raise RegistryError(
                f"registry {ref.registry} served a manifest for {ref} whose content hashes "
                f"to {computed}"
            )
        return computed

    def manifest_digest_matches(self, ref: ImageRef | str, digest: str) -> bool:
        """True if the registry serves, for ``digest`` in ``ref``'s repository, a
        manifest whose bytes hash to ``digest``; False if it is gone or differs."""
        image = _as_ref(ref)
        parse_digest(digest)
        pinned = ImageRef(image.registry, image.repository, None, digest)
        response = self._manifest("GET", pinned, digest)
        if response.status_code == 404:
            response.close()
            return False
        if response.status_code != 200:
            raise self._unexpected(response, image.registry, f"GET {pinned}")
        algorithm, _, hex_part = digest.partition(":")
        return bool(hashlib.new(algorithm, response.content).hexdigest() == hex_part)

    def list_tags(self, name: ImageRef | str, *, page_size: int = 100) -> list[str]:
        """Every tag of the repository, following ``Link`` pagination."""
        image = _as_ref(name)
        url: str | None = f"/v2/{image.repository}/tags/list?n={page_size}"
        tags: list[str] = []
        seen: set[str] = set()
        for _ in range(MAX_TAG_PAGES):
            if url is None:
                return tags
            if url in seen:
                raise RegistryError(f"registry {image.registry} sent a tag page loop at {url}")
            seen.add(url)
            response = self._call(
                "GET",
                image.registry,
                url,
                scope=f"repository:{image.repository}:pull",
                accept="application/json",
            )
            if response.status_code == 404:
                response.close()
                raise RegistryError(f"repository {image.name} not found")
            if response.status_code != 200:
                raise self._unexpected(response, image.registry, f"the tags of {image.name}")
            try:
                page = response.json().get("tags") or []
            except (ValueError, AttributeError):
                raise RegistryError(
                    f"registry {image.registry} sent an unreadable tag list for {image.name}"
                ) from None
            tags.extend(str(tag) for tag in page)
            url = response.links.get("next")
        raise RegistryError(
            f"registry {image.registry} has more than {MAX_TAG_PAGES} pages of tags "
            f"for {image.name}"
        )


def _env_number(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise RegistryError(f"${name} must be a number >= 0, got {text!r}")
    return value


def client_for_stack(insecure_registries: Iterable[str] = ()) -> RegistryClient:
    """The client the commands use: the stack's insecure registries, and timeouts
    and retries from ``PIPELINE_REGISTRY_TIMEOUT`` (seconds per call) and
    ``PIPELINE_REGISTRY_RETRIES``."""
    timeout = _env_number("PIPELINE_REGISTRY_TIMEOUT", 0.0)
    retries = int(_env_number("PIPELINE_REGISTRY_RETRIES", DEFAULT_RETRIES))
    return RegistryClient(
        insecure_registries=insecure_registries,
        timeout=(min(timeout, DEFAULT_TIMEOUT[0]), timeout) if timeout else DEFAULT_TIMEOUT,
        retries=retries,
    )


def _as_ref(value: ImageRef | str) -> ImageRef:
    if isinstance(value, ImageRef):
        return value
    name = value.split("@", 1)[0]
    last_slash = name.rfind("/")
    if name.rfind(":") > last_slash:
        name = name[: name.rfind(":")]
    registry, repository = parse_name(name)
    return ImageRef(registry, repository)


__all__ = [
    "ACCEPT",
    "INDEX_MEDIA_TYPES",
    "MANIFEST_MEDIA_TYPES",
    "Credentials",
    "EcrTokens",
    "RegistryClient",
    "api_host",
    "client_for_stack",
    "docker_config_path",
    "docker_credentials",
    "ecr_host",
    "is_loopback",
]
