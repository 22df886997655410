"""``set-image STACK REF``: pin a stack to an image, tag resolved to its digest.

The order matters: everything that can refuse (the reference grammar, the
stack's settings, mutable tags, the registry) runs before the stack file is
touched, and the write itself is a locked compare-and-swap when
``--expect-digest`` is given, so a refused or failed run changes nothing.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from pipeline.errors import ConfigError, PipelineError
from pipeline.project import Project, find_project
from pipeline.refs import ImageRef, parse_digest, parse_ref
from pipeline.stackfile import ImageSetting, StackEdit, read_image, write_image

DEFAULT_MUTABLE_TAGS = ("latest",)


def _strings(value: Any, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"cv-platform:{key} must be a list of strings, got {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class ImagePolicy:
    """What a stack's settings say about the images it may pin."""

    mutable_tags: tuple[str, ...]
    insecure_registries: tuple[str, ...]
    prod: bool
    # Pulumi.yaml's default repository, for a bare tag when the stack sets none.
    default_repository: str | None


def stack_policy(project: Project, stack: str) -> ImagePolicy:
    """The stack's ``ImagePolicy``, from its settings merged with Pulumi.yaml's defaults."""
    from pipeline.stackconfig import load_stack_config

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


def check_mutable(
    ref: ImageRef, stack: str, mutable: tuple[str, ...], *, prod: bool, allow_mutable: bool
) -> None:
    """Refuse a tag the stack marks mutable (always for prod)."""
    if ref.tag is None or ref.tag not in mutable:
        return
    if prod:
        raise PipelineError(
            f"tag {ref.tag!r} is mutable (cv-platform:mutableTags) and {stack} is a prod stack: "
            "pin an immutable tag or a digest (--allow-mutable never applies to prod)"
        )
    if not allow_mutable:
        raise PipelineError(
            f"tag {ref.tag!r} is mutable (cv-platform:mutableTags): use an immutable tag "
            f"such as the git sha, or {ref.name}@<digest>, or pass --allow-mutable"
        )


def resolve_setting(ref: ImageRef, insecure: tuple[str, ...]) -> ImageSetting:
    """The ``{repository, tag, digest}`` to write for ``ref``, checked in the registry."""
    from pipeline.registry import client_for_stack

    client = client_for_stack(insecure)
    if ref.tag is None:
        return ImageSetting(ref.name, None, client.resolve(ref))
    digest = client.resolve(ImageRef(ref.registry, ref.repository, ref.tag, None))
    if ref.digest is not None and digest != ref.digest:
        raise PipelineError(
            f"tag {ref.tag} of {ref.name} now points to {digest}, not {ref.digest}: pass "
            f"{ref.name}@{ref.digest} to pin that digest, or {ref.name}:{ref.tag} to take "
            "the tag's current one"
        )
    return ImageSetting(ref.name, ref.tag, digest)


def report(stack: str, edit: StackEdit, *, dry_run: bool) -> str:
    if not edit.changed:
        return f"{stack}: already {edit.new} (nothing to change)"
    line = f"{stack}: {edit.old} -> {edit.new}"
    if dry_run:
        return f"{edit.diff}{line} (dry run: nothing written)"
    return line


def run(args: argparse.Namespace) -> int:
    project = find_project(args.project_dir)
    path = project.existing_stack_file(args.stack)
    current = read_image(path)
    policy = stack_policy(project, args.stack)
    ref = parse_ref(args.ref, default_repository=current.repository or policy.default_repository)
    expect = parse_digest(args.expect_digest) if args.expect_digest is not None else None
    check_mutable(
        ref, args.stack, policy.mutable_tags, prod=policy.prod, allow_mutable=args.allow_mutable
    )
    new = resolve_setting(ref, policy.insecure_registries)
    edit = write_image(path, new, expect_digest=expect, dry_run=args.dry_run)
    print(report(args.stack, edit, dry_run=args.dry_run))
    return 0
