"""Who the registry client is to each registry: Basic credentials and Bearer tokens.

A registry answers ``401`` with ``WWW-Authenticate``: ``Basic`` (send the Docker
config's credentials) or ``Bearer realm=...,service=...,scope=...`` (ask the token
service, with the credentials when there are any, and send the token). Tokens are
cached per registry and scope until they expire; Basic hosts and ECR hosts get
their credentials up front on later calls. Credentials are never sent over plain
HTTP to a token service off this machine, and never appear in a message.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

from pipeline.errors import RegistryError
from pipeline.images.credentials import Credentials, docker_config_path, docker_credentials
from pipeline.images.ecr import EcrTokens
from pipeline.images.refs import ecr_host, hostname
from pipeline.io import http as httpclient
from pipeline.io.http import MIB, HttpError, HttpTlsError, Timeout, Transport, failure
from pipeline.io.urls import BadUrl, shown, split

# ASCII: parameter names are HTTP tokens, and a Unicode \w costs a visible part of start-up.
# A token answer is a JSON object with a token of a few KiB.
MAX_TOKEN_ANSWER_BYTES = MIB
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))', re.ASCII)


def is_local(host: str) -> bool:
    """``host[:port]`` on this machine (plain HTTP is fine there)."""
    return httpclient.is_loopback(hostname(host))


def registry_failure(exc: HttpError, service: str) -> str:
    """One line for a request to a registry (or its token service) that got no answer."""
    if isinstance(exc, HttpTlsError):
        hint = "TLS handshake failed (a plain-HTTP registry? list it in insecureRegistries)"
        return f"cannot reach {service}: {hint}"
    return failure(exc, service)


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``WWW-Authenticate`` as (lowercase scheme, parameters)."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
        for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return scheme.lower(), params


class _Token(NamedTuple):
    header: str
    expires: float


class RegistryAuth:
    """Answers challenges and remembers the answers, per registry (and scope)."""

    def __init__(
        self,
        *,
        session: Transport,
        timeout: Timeout,
        insecure_registries: Iterable[str] = (),
        docker_config: Path | None = None,
        ecr: EcrTokens | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._timeout = timeout
        self._insecure = frozenset(h.lower() for h in insecure_registries)
        self._docker_config = docker_config
        self._ecr = ecr or EcrTokens()
        self._clock = clock
        self._tokens: dict[tuple[str, str], _Token] = {}
        self._basic_hosts: set[str] = set()
        self._credentials: dict[str, Credentials | None] = {}

    def _credentials_for(self, registry: str) -> Credentials | None:
        if ecr_host(registry):
            return self._ecr.credentials(registry)
        if registry not in self._credentials:
            self._credentials[registry] = docker_credentials(registry, self._docker_config)
        return self._credentials[registry]

    def failed(self, registry: str) -> RegistryError:
        """The error for credentials the registry (or its token service) refused."""
        if ecr_host(registry):
            return RegistryError(
                f"authentication failed for {registry}: check the AWS credentials and that "
                "they may pull from this repository"
            )
        where = self._docker_config or docker_config_path()
        return RegistryError(
            f"authentication failed for {registry}: check credentials in "
            f"$DOCKER_CONFIG/config.json ({where})"
        )

    def header(self, registry: str, scope: str) -> str | None:
        """The ``Authorization`` to send before any challenge, if one is known."""
        token = self._tokens.get((registry, scope))
        if token is not None and token.expires > self._clock():
            return token.header
        if registry in self._basic_hosts or ecr_host(registry):
            creds = self._credentials_for(registry)
            if creds is not None:
                return creds.basic_header()
        return None

    def answer(self, registry: str, scope: str, challenge_header: str) -> str:
        """Answer a 401 challenge; returns the Authorization header to retry with."""
        scheme, params = parse_challenge(challenge_header)
        creds = self._credentials_for(registry)
        if scheme == "basic":
            if creds is None:
                raise self.failed(registry)
            self._basic_hosts.add(registry)
            return creds.basic_header()
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(
                f"registry {registry} asks for unsupported authentication {scheme or '(none)'}"
            )
        realm = params["realm"]
        try:
            realm_parts = split(realm)
        except BadUrl as exc:
            raise RegistryError(f"registry {registry} sent an invalid token realm: {exc}") from None
        if (
            realm_parts.scheme == "http"
            and creds is not None
            and not (is_local(realm_parts.netloc) or registry in self._insecure)
        ):
            raise RegistryError(
                f"registry {registry} wants credentials sent to {shown(realm)} over plain HTTP; "
                "refused"
            )
        token, expires_in = self._token(registry, realm, params, scope, creds)
        header = f"Bearer {token}"
        self._tokens[(registry, scope)] = _Token(header, self._clock() + max(expires_in - 5, 1))
        return header

    def _token(
        self,
        registry: str,
        realm: str,
        params: dict[str, str],
        scope: str,
        creds: Credentials | None,
    ) -> tuple[str, float]:
        """A token from the token service at ``realm``, and its lifetime in seconds."""
        service = split(realm).netloc.rpartition("@")[2]
        query: dict[str, str] = {}
        if params.get("service"):
            query["service"] = params["service"]
        query["scope"] = params.get("scope") or scope
        headers = {"Accept": "application/json"}
        if creds is not None:
            headers["Authorization"] = creds.basic_header()
        try:
            response = self._session.request(
                "GET",
                realm,
                params=query,
                headers=headers,
                timeout=self._timeout,
                max_body=MAX_TOKEN_ANSWER_BYTES,
            )
        except HttpError as exc:
            raise RegistryError(
                registry_failure(exc, f"token service {service} for {registry}")
            ) from None
        if response.status_code in (401, 403):
            raise self.failed(registry)
        if response.status_code != 200:
            raise RegistryError(
                f"token service {service} for {registry} answered "
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
            raise RegistryError(f"token service {service} for {registry} sent no token")
        return token, expires_in
