"""What a registry may answer for a manifest: the four media types that are pinned.

``set-image`` and ``promote`` pin a digest only for an image manifest or index: an
OCI manifest or index, a Docker v2 manifest or manifest list. A registry (or a proxy
or login page in front of one) may answer anything else with 200: an HTML page, a
blob, a Docker schema 1 manifest. ``check_media_type`` reads the answer's
``Content-Type`` and ``Content-Length``; ``check_body`` reads a GET's body, which
must be a schema 2 JSON document of one of those types when the label says nothing.
Nothing larger than ``MAX_MANIFEST_BYTES`` is read or pinned.
"""

from __future__ import annotations

from pipeline.errors import RegistryError
from pipeline.images.refs import ImageRef
from pipeline.io.http import MIB, Response

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_MEDIA_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_MEDIA_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)

# The largest manifest or index the client reads: what registries accept (the
# distribution spec's 4 MiB) and what containerd pulls.
MAX_MANIFEST_BYTES = 4 * MIB
# Content types that say nothing about what a manifest is (the body must then say it).
_GENERIC_TYPES = frozenset({"", "application/json", "application/octet-stream", "text/plain"})


def _not_a_manifest(ref: ImageRef, media_type: str) -> str:
    return (
        f"registry {ref.registry} answered {media_type or 'no media type'} for {ref}, not an "
        "image manifest or index (OCI or Docker v2 manifest, OCI index, Docker manifest "
        "list); nothing pinned"
    )


def check_media_type(response: Response, ref: ImageRef) -> bool:
    """Whether the answer is a manifest or an index; refuses anything else.

    A HEAD without a Content-Type (or with a generic one) says nothing: False, and
    the caller GETs the manifest, whose body then has to be one (``check_body``).
    """
    media_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if media_type.startswith("application/vnd.docker.distribution.manifest.v1"):
        raise RegistryError(
            f"{ref} is a Docker schema 1 manifest ({media_type}); push it again with a "
            "Docker v2 or OCI manifest"
        )
    size = (response.headers.get("Content-Length") or "").strip()
    if size.isdigit() and int(size) > MAX_MANIFEST_BYTES:
        raise RegistryError(
            f"registry {ref.registry} answered {int(size):,} bytes for {ref}: larger than "
            f"any image manifest or index ({MAX_MANIFEST_BYTES // MIB} MiB); nothing pinned"
        )
    if media_type in MANIFEST_MEDIA_TYPES:
        return True
    if media_type in _GENERIC_TYPES:
        return False
    raise RegistryError(_not_a_manifest(ref, media_type))


def check_body(response: Response, ref: ImageRef) -> None:
    """The body of a GET is a manifest or an index (schema 2, a known media type)."""
    try:
        document = response.json()
    except ValueError:
        document = None
    declared = document.get("mediaType") if isinstance(document, dict) else None
    labelled = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if (
        not isinstance(document, dict)
        or document.get("schemaVersion") != 2
        or (declared is not None and declared not in MANIFEST_MEDIA_TYPES)
        or (declared is None and labelled not in MANIFEST_MEDIA_TYPES)
    ):
        shown = declared if isinstance(declared, str) else labelled
        raise RegistryError(_not_a_manifest(ref, shown[:80]))


__all__ = [
    "ACCEPT",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "INDEX_MEDIA_TYPES",
    "MANIFEST_MEDIA_TYPES",
    "MAX_MANIFEST_BYTES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "check_body",
    "check_media_type",
]
