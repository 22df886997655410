"""Image references and digests: Docker's reference grammar, the one copy of it.

The program (``infra.config`` validates ``cv-platform:image``), the policy pack
(images pinned by digest in prod) and the pipeline (``set-image``, ``promote``,
``record``) all read references here, so what one accepts the others accept.
The module is pure and light (``re`` and ``typing`` only): ``infra`` and
``policy`` import it without pulling in the rest of ``pipeline``.

``parse_ref`` accepts what ``docker pull`` accepts with a tag or digest:

    [HOST[:PORT]/]PATH[:TAG][@sha256:HEX]

plus, when the caller knows the stack's repository, a bare ``TAG``, a bare
``sha256:<hex>`` or ``TAG@sha256:<hex>``. The first path component is a
registry host when it contains ``.`` or ``:`` or is ``localhost`` (Docker's
rule); otherwise the image is on Docker Hub (``docker.io``, with ``library/``
for one-component names). Errors say what is wrong and the expected form.

Digests are ``sha256:`` and 64 lowercase hex digits, nothing else: sha256 is
the algorithm every registry produces, and the one the program deploys by. OCI
also registers sha384 and sha512; a reference that uses them is refused here,
at the first step, rather than accepted by one tool and refused by the next.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from pipeline.errors import ConfigError

DOCKER_HUB = "docker.io"
DIGEST_ALGORITHM = "sha256"
DIGEST_HEX_LENGTH = 64

EXPECTED_FORMS = (
    "expected REPO:TAG, REPO@sha256:<64 hex>, REPO:TAG@sha256:<64 hex>, "
    "or a bare TAG or sha256:<64 hex> for the stack's repository"
)

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])"
_REGISTRY_HOST = re.compile(rf"^{_HOST}(?::[0-9]+)?\Z")
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_TAG = re.compile(r"^[\w][\w.-]{0,127}\Z", re.ASCII)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}\Z")
_ALGORITHM = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[+._-][A-Za-z][A-Za-z0-9]*)*\Z")
_ECR_HOST = (
    r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\Z"
)
_NAME_MAX = 255
MAX_PORT = 65535


class InvalidReferenceError(ConfigError):
    """An image reference or digest that does not follow the grammar."""


# NamedTuples rather than frozen dataclasses on set-image's path: ``dataclasses``
# imports ``inspect`` and compiles each class's methods at import, a large part of the
# start-up of a command CI runs after every build.
class ImageRef(NamedTuple):
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


# -- predicates: for callers with messages of their own (infra.config, policy) --------


def is_digest(text: str) -> bool:
    """``sha256:`` and 64 lowercase hex digits."""
    return bool(_DIGEST.match(text))


def is_tag(text: str) -> bool:
    """Up to 128 of ``[A-Za-z0-9_.-]``, not starting with ``.`` or ``-``."""
    return bool(_TAG.match(text))


def is_registry_host(text: str) -> bool:
    """``host[:port]``: DNS names, IPv4 or a bracketed IPv6 address; a port is 1..65535."""
    return bool(_REGISTRY_HOST.match(text)) and port_problem(text) is None


def port_problem(host: str) -> str | None:
    """Why the port of ``host[:port]`` cannot be one (out of range), else None."""
    head, colon, port = host.rpartition(":")
    if not colon or "]" in port or (head.startswith("[") and not head.endswith("]")):
        return None  # no port (a bare IPv6 address's colons are inside the brackets)
    if not port.isdecimal() or not port.isascii():
        return None  # not a port at all: the grammar says so
    if not 1 <= int(port) <= MAX_PORT:
        return f"port {port[:10]} is out of range (1-{MAX_PORT})"
    return None


def is_path_component(text: str) -> bool:
    """One lowercase component of a repository path (``cv-platform``, ``model_server``)."""
    return bool(_PATH_COMPONENT.match(text))


def names_registry(component: str) -> bool:
    """Whether a reference's first path component is a registry host (Docker's rule)."""
    return "." in component or ":" in component or component == "localhost"


def pinned_digest(image: str) -> str | None:
    """The digest ``image`` is pinned to (``...@sha256:<hex>`` at its end), else None."""
    _, at, digest = image.rpartition("@")
    return digest if at and is_digest(digest) else None


def short_digest(digest: str | None) -> str:
    """``sha256:0123456789ab``: enough to tell digests apart in a table or a message."""
    if not digest:
        return "-"
    algorithm, _, hex_part = digest.partition(":")
    return f"{algorithm}:{hex_part[:12]}"


def ecr_host(host: str) -> tuple[str, str] | None:
    """``(account, region)`` for an ECR registry host (a port is ignored), else ``None``."""
    name = hostname(host)
    if ".dkr.ecr" not in name:
        return None  # the common case, without compiling the pattern
    match = re.match(_ECR_HOST, name)
    return (match["account"], match["region"]) if match else None


def hostname(host: str) -> str:
    """``host[:port]`` (or ``[v6]:port``) without the port, brackets stripped."""
    if host.startswith("["):
        return host[1 : host.index("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


# -- parsers: one clear line per error ---------------------------------------------------


def parse_digest(text: str) -> str:
    """Validate ``sha256:<64 hex>`` and return it unchanged."""
    algorithm, sep, hex_part = text.partition(":")
    if not sep or not algorithm or not _ALGORITHM.match(algorithm):
        raise InvalidReferenceError(f"invalid digest {text!r}: expected sha256:<64 hex digits>")
    if algorithm != DIGEST_ALGORITHM:
        raise InvalidReferenceError(
            f"digest {text} uses unsupported algorithm {algorithm!r}: only sha256 digests are "
            "accepted (what every registry produces, and what the program deploys by)"
        )
    if not re.fullmatch(r"[0-9a-fA-F]*", hex_part):
        raise InvalidReferenceError(
            f"digest {text} has characters that are not hex digits; "
            f"sha256 needs {DIGEST_HEX_LENGTH} lowercase hex digits"
        )
    if len(hex_part) != DIGEST_HEX_LENGTH:
        raise InvalidReferenceError(
            f"digest {text} has {len(hex_part)} hex digits; sha256 needs {DIGEST_HEX_LENGTH}"
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
    if slash and names_registry(first):
        registry, path = first, rest
        problem = port_problem(registry) if _REGISTRY_HOST.match(registry) else None
        if problem is not None:
            raise InvalidReferenceError(
                f"invalid registry host {registry!r} in {text!r}: {problem}"
            )
        if not is_registry_host(registry):
            raise InvalidReferenceError(
                f"invalid registry host {registry!r} in {text!r}: expected HOST[:PORT]"
            )
    else:
        registry, path = DOCKER_HUB, text
    if not path:
        raise InvalidReferenceError(f"reference {text!r} has a registry but no repository path")
    for component in path.split("/"):
        if is_path_component(component):
            continue
        if component and is_path_component(component.lower()):
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


def parse_tag(tag: str, whole: str | None = None) -> str:
    """Validate a tag; ``whole`` is the reference it came from, for the message."""
    if not is_tag(tag):
        if len(tag) > 128:
            raise InvalidReferenceError(
                f"tag {tag[:20]}... is {len(tag)} characters; the limit is 128"
            )
        raise InvalidReferenceError(
            f"invalid tag {tag!r} in {whole or tag!r}: a tag is letters, digits, '_', '.' and "
            "'-', not starting with '.' or '-'"
        )
    return tag


def _looks_like_digest(text: str) -> bool:
    """``ALGORITHM:...`` with a digest algorithm OCI registers (then it is no tag)."""
    algorithm, sep, _ = text.partition(":")
    return bool(sep) and algorithm in ("sha256", "sha384", "sha512")


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
        tag = parse_tag(head, raw) if head else None
        return ImageRef(registry, repository, tag, digest)
    if head == "":
        raise InvalidReferenceError(f"image reference {raw!r} has no repository; {EXPECTED_FORMS}")

    # A ':' after the last '/' separates the tag; one before it is a port.
    last_slash = head.rfind("/")
    colon = head.rfind(":")
    if colon > last_slash:
        name, tag = head[:colon], parse_tag(head[colon + 1 :], raw)
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
    "DIGEST_ALGORITHM",
    "DOCKER_HUB",
    "ImageRef",
    "InvalidReferenceError",
    "ecr_host",
    "hostname",
    "is_digest",
    "is_path_component",
    "is_registry_host",
    "is_tag",
    "names_registry",
    "parse_digest",
    "parse_name",
    "parse_ref",
    "parse_tag",
    "pinned_digest",
    "port_problem",
    "short_digest",
]
