"""``set-image STACK REF``: pin a stack to an image, tag resolved to its digest.

The order matters: everything that can refuse (the reference grammar, the
stack's settings, mutable tags, the registry) runs before the stack file is
touched, and the write itself is a locked compare-and-swap when
``--expect-digest`` is given, so a refused or failed run changes nothing.

This is the command CI runs after every build, so its imports are kept to what
it uses (``python -X importtime -m pipeline set-image ...`` shows them).
"""

from __future__ import annotations

import argparse

from pipeline.commands.options import examples

TYPE_CHECKING = False  # not typing's: start-up skips typing; mypy reads this alike

if TYPE_CHECKING:
    from pipeline.commands.adapters import Adapters
    from pipeline.images.client import RegistryClient
    from pipeline.images.refs import ImageRef
    from pipeline.stacks.image import ImageSetting
    from pipeline.stacks.stackfile import StackEdit


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Resolve REF in the registry and write cv-platform:image in Pulumi.STACK.yaml (only "
        "the image lines change). REF: repo:tag, repo@sha256:..., repo:tag@sha256:..., or a "
        "bare tag or digest for the stack's current repository. Digests are sha256."
    )
    parser.epilog = examples(
        "set-image staging 9f3c2ab",
        "set-image staging registry.example.internal/cv-platform/model-server:9f3c2ab --dry-run",
        'set-image staging 9f3c2ab --expect-digest "$current"',
    )
    parser.add_argument("stack", metavar="STACK")
    parser.add_argument("ref", metavar="REF")
    parser.add_argument("--dry-run", action="store_true", help="print the file diff, write nothing")
    parser.add_argument(
        "--expect-digest",
        metavar="DIGEST",
        help="write only if the stack's current digest is DIGEST (compare-and-swap)",
    )
    parser.add_argument(
        "--allow-mutable",
        action="store_true",
        help="accept a mutable tag such as latest (never for prod)",
    )


def resolve_setting(ref: ImageRef, client: RegistryClient) -> ImageSetting:
    """The ``{repository, tag, digest}`` to write for ``ref``, checked in the registry."""
    from pipeline.errors import PipelineError
    from pipeline.images.refs import ImageRef
    from pipeline.stacks.image import ImageSetting

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


def run(args: argparse.Namespace, adapters: Adapters) -> int:
    from pipeline.images.refs import parse_digest, parse_ref
    from pipeline.project import find_project
    from pipeline.stacks.policy import check_mutable, stack_policy
    from pipeline.stacks.stackfile import read_image, write_image

    project = find_project(args.project_dir)
    path = project.existing_stack_file(args.stack)
    current = read_image(path)
    policy = stack_policy(project, args.stack)
    ref = parse_ref(args.ref, default_repository=current.repository or policy.default_repository)
    expect = parse_digest(args.expect_digest) if args.expect_digest is not None else None
    check_mutable(ref, args.stack, policy, allow_mutable=args.allow_mutable)
    new = resolve_setting(ref, adapters.registry(policy.insecure_registries))
    edit = write_image(path, new, expect_digest=expect, dry_run=args.dry_run)
    print(report(args.stack, edit, dry_run=args.dry_run))
    return 0
