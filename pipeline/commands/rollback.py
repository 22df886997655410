"""``rollback STACK``: back to an earlier successfully deployed digest, and hold the stack.

``pipeline.promotion.rollback`` picks the digest. Then, under the stack file's lock:
the hold is recorded, the file is written (a compare-and-swap on the digest read at
the start), and the rollback is recorded. ``promote`` checks holds under the same
lock, so no promotion undoes the rollback before someone looks.
"""

from __future__ import annotations

import argparse

from pipeline.commands.options import examples, positive_int

TYPE_CHECKING = False  # not typing's: start-up skips typing; mypy reads this alike

if TYPE_CHECKING:
    from pipeline.commands.adapters import Adapters


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Set STACK's cv-platform:image back to the digest of an earlier successful deployment "
        "(the one before the current digest, --steps N back, or --to DIGEST), record the "
        "rollback and place a hold on STACK: promotion to it is refused until "
        "`hold STACK --release`. Then run pulumi up for the stack."
    )
    parser.epilog = examples(
        "rollback prod --dry-run",
        "rollback prod",
        "rollback prod --steps 2",
        "rollback prod --to sha256:21b4...",
    )
    parser.add_argument("stack", metavar="STACK")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--to", dest="to_digest", metavar="DIGEST", help="the digest to return to")
    group.add_argument(
        "--steps",
        type=positive_int,
        metavar="N",
        help="go back N successful deployments (default 1)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the file diff, write nothing")


def run(args: argparse.Namespace, adapters: Adapters) -> int:
    from pipeline.commands.common import pinned_setting, roll_back
    from pipeline.commands.output import print_diff
    from pipeline.images.refs import parse_digest, short_digest
    from pipeline.project import find_project
    from pipeline.promotion.rollback import plan_rollback
    from pipeline.records.model import Rollback
    from pipeline.stacks.policy import stack_policy
    from pipeline.stacks.stackfile import NO_DIGEST, read_image, write_image

    if args.to_digest is not None:
        parse_digest(args.to_digest)
    project = find_project(args.project_dir)
    path = project.existing_stack_file(args.stack)
    current = read_image(path)
    expected = current.digest or NO_DIGEST
    store = adapters.open_store(args.store, project, create=False)
    try:
        plan = plan_rollback(
            args.stack,
            store.deployments(args.stack),
            current.digest,
            steps=args.steps,
            to_digest=args.to_digest,
        )
        image, setting = pinned_setting(plan.to, stack_policy(project, args.stack).mutable_tags)
        moved = f"{short_digest(current.digest)} -> {short_digest(plan.to.digest)}"
        if args.dry_run:
            edit = write_image(path, setting, expect_digest=expected, dry_run=True)
            print_diff(edit.diff)
            print(f"dry run: would roll {args.stack} back {moved}; nothing written or recorded")
            return 0
        now = adapters.now()
        how = f"--to {plan.to.digest}" if args.to_digest else f"--steps {args.steps or 1}"
        rollback = Rollback(
            stack=args.stack,
            from_digest=current.digest,
            to_digest=plan.to.digest or "",
            image=str(image),
            at=now,
            reason=f"rollback {how}",
            actor=adapters.actor(),
        )
        done = roll_back(
            store,
            path,
            rollback,
            setting,
            expect_digest=expected,
            hold_reason=f"rolled back {moved}",
            at=now,
        )
    finally:
        store.close()
    print_diff(done.edit.diff)
    print(
        f"rolled {args.stack} back {moved} "
        f"(deployed {plan.to.finished:%Y-%m-%d %H:%M} UTC); recorded rollback #{done.rollback.id}"
    )
    print(
        f"{args.stack} is on hold: promotion to it is refused until "
        f"`hold {args.stack} --release`. Next: pulumi up -s {args.stack}"
    )
    return 0
