"""A small OCI distribution client: resolve tags to digests, verify digests, list tags.

What it speaks (distribution-spec v1.1):

- ``HEAD /v2/<name>/manifests/<reference>`` with all four manifest media types
  in ``Accept`` (so a multi-arch tag resolves to its *index* digest, which is
  what gets pinned), reading ``Docker-Content-Digest``; when the header is
  missing, ``GET`` the manifest and hash the bytes. Only those four media types
  are pinned (an HTML page, a blob or a schema 1 manifest is refused; a GET body
  must also be a schema 2 JSON document of one of them), and nothing larger than
  ``MAX_MANIFEST_BYTES`` is read or pinned.
- ``GET /v2/<name>/tags/list?n=...`` following ``Link: <...>; rel="next"``.
- Auth: anonymous, Basic, and the Bearer token flow from ``WWW-Authenticate``
  (realm/service/scope). Credentials come from ``$DOCKER_CONFIG/config.json``
  (``auths``, ``credHelpers``, ``credsStore``) as docker and skopeo read them;
  ECR hosts (``<account>.dkr.ecr.<region>.amazonaws.com``) get a token from
  boto3 ``get_authorization_token``, cached until it expires.
- Plain HTTP only for loopback hosts (as Docker allows) and hosts listed in the
  stack's ``insecureRegistries``; HTTPS with verification otherwise.
- The transport is ``pipeline.io.http`` (kept-alive connections, proxies from
  the environment, redirects that drop ``Authorization`` off-origin);
  ``requests`` alone cost about as much to import as the rest of a
  ``set-image`` run. Credentials and Bearer tokens are ``pipeline.images.auth``.
- Every call has a timeout; 429 and 5xx are retried a bounded number of times
  with exponential backoff, honouring ``Retry-After`` up to a maximum sleep.

Failures are ``RegistryError`` with one line naming the host and the cause.
Credentials never appear in messages.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from pipeline.errors import RegistryError
from pipeline.images.auth import RegistryAuth, is_local, registry_failure
from pipeline.images.ecr import EcrTokens
from pipeline.images.manifests import (
    ACCEPT,
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    MAX_MANIFEST_BYTES,
    check_body,
    check_media_type,
)
from pipeline.images.refs import (
    DIGEST_ALGORITHM,
    DOCKER_HUB,
    ImageRef,
    InvalidReferenceError,
    parse_digest,
    parse_name,
)
from pipeline.io.http import (
    MIB,
    HttpError,
    HttpTimeout,
    Response,
    Session,
    Transport,
    timeouts,
)

DEFAULT_TIMEOUT = (5.0, 30.0)  # connect within 5 s, the whole call within 35 s
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5
DEFAULT_MAX_RETRY_SLEEP = 10.0
MAX_TAG_PAGES = 1000
# A page of tags: 100 asked for, but some registries send every tag at once.
MAX_TAG_PAGE_BYTES = 16 * MIB

_DOCKER_HUB_API = "registry-1.docker.io"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def api_host(registry: str) -> str:
    """Where the registry's API lives (Docker Hub's is not docker.io)."""
    return _DOCKER_HUB_API if registry == DOCKER_HUB else registry


# --------------------------------------------------------------------------
# The client


def _retry_after(response: Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # only for a Retry-After given as a date

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


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
        self.auth = RegistryAuth(
            session=self.session,
            timeout=timeout,
            insecure_registries=self.insecure_registries,
            docker_config=docker_config,
            ecr=ecr,
            clock=clock,
        )

    # -- plumbing -----------------------------------------------------------

    def scheme(self, registry: str) -> str:
        plain = is_local(registry) or registry.lower() in self.insecure_registries
        return "http" if plain else "https"

    def base_url(self, registry: str) -> str:
        return f"{self.scheme(registry)}://{api_host(registry)}"

    def _timeout_seconds(self) -> float:
        """The longest one attempt may take (``pipeline.io.http.timeouts``)."""
        return timeouts(self.timeout)[2]

    def _send(
        self, method: str, url: str, registry: str, headers: Mapping[str, str], max_body: int
    ) -> Response:
        """One HTTP exchange, retried on 429/5xx and timeouts; errors as RegistryError."""
        attempts = self.retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self.session.request(
                    method, url, headers=dict(headers), timeout=self.timeout, max_body=max_body
                )
            except HttpTimeout as exc:
                if last:
                    verb = "finish answering" if exc.total else "answer"
                    tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
                    raise RegistryError(
                        f"registry {registry} did not {verb} within "
                        f"{self._timeout_seconds():g} s ({method} {urlsplit(url).path}, {tries})"
                    ) from None
                self._sleep(min(self.backoff * 2**attempt, self.max_retry_sleep))
                continue
            except HttpError as exc:
                service = f"registry {registry} at {self.base_url(registry)}"
                raise RegistryError(registry_failure(exc, service)) from None
            if response.status_code in _RETRY_STATUSES and not last:
                wait = _retry_after(response)
                if wait is None:
                    wait = self.backoff * 2**attempt
                response.close()
                self._sleep(min(wait, self.max_retry_sleep))
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(
        self,
        method: str,
        registry: str,
        path_or_url: str,
        *,
        scope: str,
        accept: str | None,
        max_body: int = MAX_MANIFEST_BYTES,
    ) -> Response:
        url = urljoin(self.base_url(registry) + "/", path_or_url)
        headers: dict[str, str] = {}
        if accept:
            headers["Accept"] = accept
        known = self.auth.header(registry, scope)
        if known is not None:
            headers["Authorization"] = known
        response = self._send(method, url, registry, headers, max_body)
        if response.status_code == 401:
            challenge = response.headers.get("WWW-Authenticate", "")
            response.close()
            if "Authorization" in headers and not challenge.lower().startswith("bearer"):
                raise self.auth.failed(registry)
            headers["Authorization"] = self.auth.answer(registry, scope, challenge)
            response = self._send(method, url, registry, headers, max_body)
            if response.status_code == 401:
                response.close()
                raise self.auth.failed(registry)
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
        kind = "digest" if reference.startswith(f"{DIGEST_ALGORITHM}:") else "tag"
        return RegistryError(f"{kind} {reference} not found in {ref.name}")

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
            labelled = check_media_type(response, ref)
            header = response.headers.get("Docker-Content-Digest") if labelled else None
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
        check_media_type(response, ref)
        check_body(response, ref)
        computed = _sha256(response.content)
        expected = ref.digest if ref.tag is None else None
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
        return _sha256(response.content) == digest

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
                max_body=MAX_TAG_PAGE_BYTES,
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


def _sha256(body: bytes) -> str:
    import hashlib  # only when a registry leaves out Docker-Content-Digest, or to verify

    return f"{DIGEST_ALGORITHM}:{hashlib.sha256(body).hexdigest()}"


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
    and retries from ``PIPELINE_REGISTRY_TIMEOUT`` (seconds one call may take in all,
    connecting included) and ``PIPELINE_REGISTRY_RETRIES``."""
    timeout = _env_number("PIPELINE_REGISTRY_TIMEOUT", 0.0)
    retries = int(_env_number("PIPELINE_REGISTRY_RETRIES", DEFAULT_RETRIES))
    return RegistryClient(
        insecure_registries=insecure_registries,
        timeout=timeout if timeout else DEFAULT_TIMEOUT,
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
    "RegistryClient",
    "api_host",
    "client_for_stack",
]
