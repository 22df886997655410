"""What a stack's settings say about the images it may pin.

``cv-platform:mutableTags`` (tags never pinned without ``--allow-mutable``, and
never in prod), ``cv-platform:insecureRegistries`` (plain HTTP allowed), whether
the stack is a production one (named ``prod``, or ``cv-platform:environment:
prod``) and Pulumi.yaml's default repository for a bare tag. ``set-image``,
``promote`` and ``rollback`` all read a stack's policy here.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pipeline.errors import ConfigError, PipelineError
from pipeline.images.refs import ImageRef
from pipeline.project import Project

DEFAULT_MUTABLE_TAGS = ("latest",)


def _strings(value: Any, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"cv-platform:{key} must be a list of strings, got {value!r}")
    return tuple(value)


class ImagePolicy(NamedTuple):
    """What a stack's settings say about the images it may pin."""

    mutable_tags: tuple[str, ...]
    insecure_registries: tuple[str, ...]
    prod: bool
    # Pulumi.yaml's default repository, for a bare tag when the stack sets none.
    default_repository: str | None


def stack_policy(project: Project, stack: str) -> ImagePolicy:
    """The stack's ``ImagePolicy``, from its settings merged with Pulumi.yaml's defaults."""
    from pipeline.stacks.config import load_stack_config

    cfg = load_stack_config(project, stack)
    image = cfg.get("image")
    repository = image.get("repository") if isinstance(image, dict) else None
    environment = str(cfg.get("environment") or stack)
    return ImagePolicy(
        mutable_tags=_strings(cfg.get("mutableTags"), "mutableTags", DEFAULT_MUTABLE_TAGS),
        insecure_registries=_strings(cfg.get("insecureRegistries"), "insecureRegistries", ()),
        prod=environment == "prod" or stack == "prod",
        default_repository=repository if isinstance(repository, str) and repository else None,
    )


def check_mutable(ref: ImageRef, stack: str, policy: ImagePolicy, *, allow_mutable: bool) -> None:
    """Refuse a tag the stack marks mutable (always for prod)."""
    if ref.tag is None or ref.tag not in policy.mutable_tags:
        return
    if policy.prod:
        raise PipelineError(
            f"tag {ref.tag!r} is mutable (cv-platform:mutableTags) and {stack} is a prod stack: "
            "pin an immutable tag or a digest (--allow-mutable never applies to prod)"
        )
    if not allow_mutable:
        raise PipelineError(
            f"tag {ref.tag!r} is mutable (cv-platform:mutableTags): use an immutable tag "
            f"such as the git sha, or {ref.name}@<digest>, or pass --allow-mutable"
        )


__all__ = ["DEFAULT_MUTABLE_TAGS", "ImagePolicy", "check_mutable", "stack_policy"]
