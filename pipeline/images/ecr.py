"""Amazon ECR: registry credentials from ``get_authorization_token``, and an image's
scan counts from ``describe_image_scan_findings``.

boto3 is imported only when an ECR host is used; credentials, region and endpoint
come from the environment as boto3 reads them. An ECR host is recognised by the one
reference grammar (``pipeline.images.refs.ecr_host``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pipeline.errors import RegistryError
from pipeline.images.credentials import Credentials
from pipeline.images.refs import ImageRef, ecr_host, short_digest

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
        import base64

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


def scan_counts(
    ref: ImageRef, client_factory: EcrClientFactory = _default_ecr_client
) -> dict[str, int]:
    """ECR's finding counts by severity (as ECR names them) for ``ref``'s digest.

    Refuses a scan that is not COMPLETE: an unfinished scan has no counts to judge.
    """
    found = ecr_host(ref.registry)
    if found is None or ref.digest is None:
        raise RegistryError(f"{ref} is not an image in ECR pinned by digest")
    account, region = found
    try:
        answer = client_factory(region).describe_image_scan_findings(
            registryId=account,
            repositoryName=ref.repository,
            imageId={"imageDigest": ref.digest},
            maxResults=1,
        )
    except Exception as exc:  # noqa: BLE001 - botocore errors of every kind mean "no findings"
        what = f"ECR scan of {short_digest(ref.digest)}"
        response = getattr(exc, "response", None)
        if isinstance(response, dict) and "Error" in response:
            code = response["Error"].get("Code", "")
            message = response["Error"].get("Message", "")
            raise RegistryError(f"{what}: {code}: {message}") from None
        raise RegistryError(f"{what}: {exc}") from None
    status = answer.get("imageScanStatus", {}).get("status", "UNKNOWN")
    if status != "COMPLETE":
        raise RegistryError(f"ECR scan of {short_digest(ref.digest)} is {status}, not COMPLETE")
    counts = answer.get("imageScanFindings", {}).get("findingSeverityCounts", {})
    return {str(severity): int(count) for severity, count in counts.items()}


__all__ = ["EcrTokens", "scan_counts"]
