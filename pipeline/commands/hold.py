"""``hold STACK``: place (or ``--release``) a hold that blocks promotion to a stack."""

from __future__ import annotations

import argparse

from pipeline.commands.options import examples

TYPE_CHECKING = False  # not typing's: start-up skips typing; mypy reads this alike

if TYPE_CHECKING:
    from pipeline.commands.adapters import Adapters


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Place a hold on STACK (promote refuses to write it while the hold is in force) or, "
        "with --release, lift it. A rollback places a hold itself. Holds are records: the "
        "history shows who placed and released each one."
    )
    parser.epilog = examples(
        'hold prod --reason "incident 42: error rate up"',
        "hold prod --release",
    )
    parser.add_argument("stack", metavar="STACK")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--reason", metavar="TEXT", default="", help="why the stack is held")
    group.add_argument("--release", action="store_true", help="release the hold")


def run(args: argparse.Namespace, adapters: Adapters) -> int:
    from pipeline.project import find_project
    from pipeline.promotion.gates import current_hold
    from pipeline.records.model import Hold

    project = find_project(args.project_dir)
    project.existing_stack_file(args.stack)
    # Only placing a hold may start a new store at an explicit location: releasing one
    # needs records that are already there.
    store = adapters.open_store(args.store, project, create=not args.release)
    try:
        held = current_hold(store.holds(args.stack))
        now = adapters.now()
        if args.release:
            if held is None:
                print(f"{args.stack} is not on hold; nothing recorded")
                return 0
            store.add(Hold(args.stack, "released", now, args.reason or "", actor=adapters.actor()))
            print(f"released the hold on {args.stack} (held since {held.at:%Y-%m-%d %H:%M} UTC)")
            return 0
        store.add(Hold(args.stack, "placed", now, args.reason, actor=adapters.actor()))
    finally:
        store.close()
    again = f" (already held since {held.at:%Y-%m-%d %H:%M} UTC)" if held else ""
    print(f"{args.stack} is on hold{again}: promotion to it is refused until --release")
    return 0
