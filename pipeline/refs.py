"""Image references: Docker's reference grammar, as a pure parser.

``parse_ref`` accepts what ``docker pull`` accepts with a tag or digest:

    [HOST[:PORT]/]PATH[:TAG][@ALGORITHM:HEX]

plus, when the caller knows the stack's repository, a bare ``TAG``, a bare
``sha256:<hex>`` or ``TAG@sha256:<hex>``. The first path component is a
registry host when it contains ``.`` or ``:`` or is ``localhost`` (Docker's
rule); otherwise the image is on Docker Hub (``docker.io``, with ``library/``
for one-component names). Errors say what is wrong and the expected form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.errors import ConfigError

DOCKER_HUB = "docker.io"

# Hex length of each digest algorithm OCI registers (image-spec descriptor.md).
DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}

EXPECTED_FORMS = (
    "expected REPO:TAG, REPO@sha256:<64 hex>, REPO:TAG@sha256:<64 hex>, "
    "or a bare TAG or sha256:<64 hex> for the stack's repository"
)

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])"
_DOMAIN_RE = re.compile(rf"^{_HOST}(?::[0-9]+)?$")
_PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
_ALGORITHM_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[+._-][A-Za-z][A-Za-z0-9]*)*$")
_NAME_MAX = 255


class InvalidReferenceError(ConfigError):
    """An image reference or digest that does not follow the grammar."""


@dataclass(frozen=True)
class ImageRef:
    """A parsed reference. ``registry`` is a host[:port]; ``repository`` its path."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``registry/repository``: the fully qualified repository name."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag."""
        if self.digest:
            return self.digest
        if self.tag:
            return self.tag
        raise InvalidReferenceError(f"{self.name} has neither a tag nor a digest")

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_digest(text: str) -> str:
    """Validate ``ALGORITHM:HEX`` (OCI digest) and return it unchanged."""
    algorithm, sep, hex_part = text.partition(":")
    if not sep or not algorithm or not _ALGORITHM_RE.match(algorithm):
        raise InvalidReferenceError(f"invalid digest {text!r}: expected sha256:<64 hex digits>")
    expected = DIGEST_HEX_LENGTHS.get(algorithm)
    if expected is None:
        known = ", ".join(DIGEST_HEX_LENGTHS)
        raise InvalidReferenceError(
            f"digest {text} uses unsupported algorithm {algorithm!r}: expected one of {known}"
        )
    if not re.fullmatch(r"[0-9a-fA-F]*", hex_part):
        raise InvalidReferenceError(
            f"digest {text} has characters that are not hex digits; "
            f"{algorithm} needs {expected} lowercase hex digits"
        )
    if len(hex_part) != expected:
        raise InvalidReferenceError(
            f"digest {text} has {len(hex_part)} hex digits; {algorithm} needs {expected}"
        )
    if hex_part != hex_part.lower():
        raise InvalidReferenceError(
            f"digest {text} has uppercase hex digits; digests are lowercase"
        )
    return text


def parse_name(text: str) -> tuple[str, str]:
    """Split a repository name into ``(registry, repository)``, validating both."""
    if not text:
        raise InvalidReferenceError(f"empty repository name; {EXPECTED_FORMS}")
    if len(text) > _NAME_MAX:
        raise InvalidReferenceError(
            f"repository name {text[:40]}... is {len(text)} characters; the limit is {_NAME_MAX}"
        )
    first, slash, rest = text.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
        if not _DOMAIN_RE.match(registry):
            raise InvalidReferenceError(
                f"invalid registry host {registry!r} in {text!r}: expected HOST[:PORT]"
            )
    else:
        registry, path = DOCKER_HUB, text
    if not path:
        raise InvalidReferenceError(f"reference {text!r} has a registry but no repository path")
    for component in path.split("/"):
        if _PATH_COMPONENT_RE.match(component):
            continue
        if component and _PATH_COMPONENT_RE.match(component.lower()):
            raise InvalidReferenceError(
                f"repository {path!r} must be lowercase (Docker reference grammar): "
                f"use {path.lower()!r}"
            )
        raise InvalidReferenceError(
            f"invalid repository path component {component!r} in {text!r}: use lowercase "
            "letters and digits separated by '.', '_', '__' or '-'"
        )
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return registry, path


def _parse_tag(tag: str, whole: str) -> str:
    if not _TAG_RE.match(tag):
        if len(tag) > 128:
            raise InvalidReferenceError(
                f"tag {tag[:20]}... is {len(tag)} characters; the limit is 128"
            )
        raise InvalidReferenceError(
            f"invalid tag {tag!r} in {whole!r}: a tag is letters, digits, '_', '.' and '-', "
            "not starting with '.' or '-'"
        )
    return tag


def _looks_like_digest(text: str) -> bool:
    algorithm, sep, _ = text.partition(":")
    return bool(sep) and algorithm in DIGEST_HEX_LENGTHS


def parse_ref(text: str, *, default_repository: str | None = None) -> ImageRef:
    """Parse ``text`` into an :class:`ImageRef` that has a tag, a digest or both.

    ``default_repository`` (``registry/path``) is used for a bare tag, a bare
    digest or ``TAG@DIGEST``; without it those forms are an error.
    """
    raw = text.strip()
    if not raw:
        raise InvalidReferenceError(f"empty image reference; {EXPECTED_FORMS}")
    if any(ch.isspace() for ch in raw):
        raise InvalidReferenceError(f"image reference {raw!r} contains whitespace")

    head, at, digest_text = raw.partition("@")
    if at and "@" in digest_text:
        raise InvalidReferenceError(f"image reference {raw!r} has more than one '@'")
    digest = parse_digest(digest_text) if at else None

    # Bare forms: a digest, a tag, or TAG@DIGEST for the stack's repository.
    bare_digest = not at and _looks_like_digest(raw)
    bare_tag = "/" not in head and ":" not in head and head != ""
    if bare_digest or (default_repository is not None and (bare_tag or head == "")):
        if default_repository is None:
            raise InvalidReferenceError(
                f"{raw!r} is a bare digest but the stack has no image repository yet; "
                "pass REPO@DIGEST"
            )
        registry, repository = parse_name(default_repository)
        if bare_digest:
            return ImageRef(registry, repository, None, parse_digest(raw))
        tag = _parse_tag(head, raw) if head else None
        return ImageRef(registry, repository, tag, digest)
    if head == "":
        raise InvalidReferenceError(f"image reference {raw!r} has no repository; {EXPECTED_FORMS}")

    # A ':' after the last '/' separates the tag; one before it is a port.
    last_slash = head.rfind("/")
    colon = head.rfind(":")
    if colon > last_slash:
        name, tag = head[:colon], _parse_tag(head[colon + 1 :], raw)
    else:
        name, tag = head, None
    registry, repository = parse_name(name)
    if tag is None and digest is None:
        hint = " (a bare tag needs the stack's repository)" if bare_tag else ""
        raise InvalidReferenceError(
            f"image reference {raw!r} has no tag or digest{hint}; {EXPECTED_FORMS}"
        )
    return ImageRef(registry, repository, tag, digest)


__all__ = [
    "DIGEST_HEX_LENGTHS",
    "DOCKER_HUB",
    "ImageRef",
    "InvalidReferenceError",
    "parse_digest",
    "parse_name",
    "parse_ref",
]
