"""``set-image STACK REF``: pin a stack to an image, tag resolved to its digest.

The order matters: everything that can refuse (the reference grammar, the
stack's settings, mutable tags, the registry) runs before the stack file is
touched, and the write itself is a locked compare-and-swap when
``--expect-digest`` is given, so a refused or failed run changes nothing.
"""

from __future__ import annotations

import argparse
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


def stack_policy(project: Project, stack: str) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """``(mutable tags, insecure registries, is prod)`` from the stack's settings."""
    from pipeline.stackconfig import load_stack_config

    cfg = load_stack_config(project, stack)
    mutable = _strings(cfg.get("mutableTags"), "mutableTags", DEFAULT_MUTABLE_TAGS)
    insecure = _strings(cfg.get("insecureRegistries"), "insecureRegistries", ())
    environment = str(cfg.get("environment") or stack)
    return mutable, insecure, environment == "prod" or stack == "prod"


def _default_repository(project: Project, stack: str, current: ImageSetting) -> str | None:
    if current.repository:
        return current.repository
    from pipeline.stackconfig import load_stack_config

    image = load_stack_config(project, stack).get("image")
    if isinstance(image, dict) and isinstance(image.get("repository"), str):
        return image["repository"] or None
    return None


def check_mutable(
    ref: ImageRef, stack: str, mutable: tuple[str, ...], *, prod: bool, allow_mutable: bool
) -> None:
    """Refuse a tag the stack marks mutable (always for prod)."""
    if ref.tag is None or ref.tag not in mutable:
        return
    if prod:
        raise PipelineError(
            f"tag {ref.tag!r} is mutable (cv-platform:mutableTags) and {stack} is prod: "
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
    mutable, insecure, prod = stack_policy(project, args.stack)
    ref = parse_ref(args.ref, default_repository=_default_repository(project, args.stack, current))
    expect = parse_digest(args.expect_digest) if args.expect_digest is not None else None
    check_mutable(ref, args.stack, mutable, prod=prod, allow_mutable=args.allow_mutable)
    new = resolve_setting(ref, insecure)
    edit = write_image(path, new, expect_digest=expect, dry_run=args.dry_run)
    print(report(args.stack, edit, dry_run=args.dry_run))
    return 0
