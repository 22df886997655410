"""Every effect a command has outside its own process, in one replaceable bundle.

``Adapters()`` is the real world: processes, the record store, the registry, ECR,
Jenkins, GitHub, CloudWatch, Prometheus, the clock (and waiting) and who is acting.
Commands receive it from ``pipeline.cli.main(argv, adapters=None)`` and never reach
for those themselves, so a test passes ``Adapters(check_digest=fake)`` instead of
patching a module.
Each real adapter imports what it needs when it is first called: building the
bundle costs nothing, and ``--help`` stays light.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from pipeline.io.process import Runner, run

if TYPE_CHECKING:
    from datetime import datetime

    from pipeline.images.client import RegistryClient
    from pipeline.images.refs import ImageRef
    from pipeline.preview.github import GitHubClient
    from pipeline.project import Project
    from pipeline.promotion.gates import DigestCheck, ScanFindings
    from pipeline.records.sources.jenkins import JenkinsClient
    from pipeline.records.stores import Store
    from pipeline.verification.prometheus import PrometheusClient


class StoreOpener(Protocol):
    def __call__(
        self,
        location: str | None,
        project: Project | None,
        *,
        create: bool = True,
        readonly: bool = False,
    ) -> Store: ...


def open_store(
    location: str | None, project: Project | None, *, create: bool = True, readonly: bool = False
) -> Store:
    from pipeline.records.stores import open_store as open_real

    return open_real(location, project, create=create, readonly=readonly)


def registry(insecure_registries: Sequence[str]) -> RegistryClient:
    """The registry client for a stack (its insecure registries; timeouts from the env)."""
    from pipeline.images.client import client_for_stack

    return client_for_stack(insecure_registries)


def check_digest(ref: ImageRef, insecure_registries: Sequence[str]) -> DigestCheck:
    """Ask the registry whether ``ref``'s digest still serves the same manifest."""
    from pipeline.errors import RegistryError
    from pipeline.images.refs import short_digest
    from pipeline.promotion.gates import DigestCheck

    assert ref.digest is not None
    try:
        matches = registry(insecure_registries).manifest_digest_matches(ref, ref.digest)
    except RegistryError as exc:
        return DigestCheck(False, str(exc))
    if matches:
        return DigestCheck(True, f"{ref.registry} serves {short_digest(ref.digest)}")
    return DigestCheck(
        False, f"{ref.registry} no longer serves {short_digest(ref.digest)} in {ref.repository}"
    )


def ecr_findings(ref: ImageRef) -> ScanFindings:
    """ECR's scan counts for ``ref``'s digest (``describe_image_scan_findings``)."""
    from pipeline.images.ecr import scan_counts
    from pipeline.images.refs import short_digest
    from pipeline.promotion.gates import findings_from_counts

    assert ref.digest is not None
    return findings_from_counts(f"ECR scan of {short_digest(ref.digest)}", scan_counts(ref))


def jenkins() -> JenkinsClient:
    """A Jenkins reader with credentials and timeout from the environment."""
    from pipeline.records.sources.jenkins import client_from_env

    return client_from_env()


def github() -> GitHubClient:
    """A GitHub client with ``GITHUB_TOKEN`` and ``GITHUB_API_URL`` from the environment."""
    from pipeline.preview.github import GitHubClient, api_url_from_env, token_from_env

    return GitHubClient(token_from_env(), api_url_from_env())


def cloudwatch() -> Any:
    """A boto3 CloudWatch client (credentials, region and endpoint from the environment)."""
    import boto3

    return boto3.client("cloudwatch")


def prometheus(base_url: str) -> PrometheusClient:
    """A Prometheus HTTP API client (bearer token from ``PIPELINE_PROMETHEUS_TOKEN``)."""
    from pipeline.verification.prometheus import client_from_env

    return client_from_env(base_url)


def sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)


def now() -> datetime:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def actor() -> str:
    """Who acts, for the audit trail: PIPELINE_ACTOR, else the login name."""
    name = os.environ.get("PIPELINE_ACTOR") or os.environ.get("USER") or ""
    if not name:
        import getpass

        try:
            name = getpass.getuser()
        except (OSError, KeyError):
            name = ""
    return name


# A NamedTuple, not a frozen dataclass: every command builds one, and ``dataclasses``
# (with ``inspect``) is a large part of a command's start-up.
class Adapters(NamedTuple):
    """The real adapters by default; a test replaces the ones it needs."""

    run: Runner = run
    open_store: StoreOpener = open_store
    registry: Callable[[Sequence[str]], RegistryClient] = registry
    check_digest: Callable[[ImageRef, Sequence[str]], DigestCheck] = check_digest
    ecr_findings: Callable[[ImageRef], ScanFindings] = ecr_findings
    jenkins: Callable[[], JenkinsClient] = jenkins
    github: Callable[[], GitHubClient] = github
    cloudwatch: Callable[[], Any] = cloudwatch
    prometheus: Callable[[str], PrometheusClient] = prometheus
    now: Callable[[], datetime] = now
    sleep: Callable[[float], None] = sleep
    actor: Callable[[], str] = actor


__all__ = ["Adapters", "StoreOpener"]
