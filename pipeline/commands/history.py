"""``history STACK``: a stack's deployments, verifications, promotions, rollbacks and
holds, newest first, with the model (version and accuracy, from its card) beside each
digest, and the waivers and readmissions of the digests the stack ran."""

from __future__ import annotations

import argparse

from pipeline.commands.options import examples, positive_int

TYPE_CHECKING = False  # not typing's: start-up skips typing; mypy reads this alike

if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any

    from pipeline.commands.adapters import Adapters
    from pipeline.records.model import ModelCard, Record


_EVENT_ORDER = {
    "deployment": 0,
    "verification": 1,
    "promotion": 2,
    "rollback": 3,
    "hold": 4,
    "waiver": 5,
    "readmission": 6,
}


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Every event the record store holds for STACK, newest first: deployments (with "
        "their result and duration), verifications (with what they measured), promotions "
        "into and out of it (with skipped gates), rollbacks, holds placed and released, "
        "waivers of its digests' findings and readmissions; the model (version and "
        "accuracy, from the image's model card) beside each digest. --json prints every "
        "field."
    )
    parser.epilog = examples(
        "history prod",
        "history prod --limit 50 --json",
        "history staging --store s3://cv-platform-records/pipeline",
    )
    parser.add_argument("stack", metavar="STACK")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=20,
        metavar="N",
        help="show the newest N events (default 20)",
    )


def _event(record: Record, stack: str) -> tuple[datetime, str, str, str]:
    """(time, event, digest, detail) of one record, for the table."""
    from pipeline.images.refs import short_digest as short
    from pipeline.records.model import (
        Deployment,
        Hold,
        Promotion,
        Readmission,
        Rollback,
        Verification,
        Waiver,
    )

    if isinstance(record, Verification):
        from pipeline.verification.decide import summary

        return record.until, "verify", short(record.digest), summary(record)
    if isinstance(record, Deployment):
        return (
            record.finished,
            "deploy",
            short(record.digest),
            f"{record.result} in {record.duration_seconds:.0f} s ({record.source})",
        )
    if isinstance(record, Promotion):
        direction = "promoted in" if record.target_stack == stack else "promoted out"
        detail = f"{direction}: {record.source_stack} -> {record.target_stack}"
        if record.skipped_gates:
            detail += f", skipped {', '.join(record.skipped_gates)}"
        return record.at, "promote", short(record.digest), detail
    if isinstance(record, Rollback):
        return record.at, "rollback", short(record.to_digest), f"from {short(record.from_digest)}"
    if isinstance(record, Waiver):
        detail = f"{record.finding} until {record.expires:%Y-%m-%d %H:%M}: {record.reason}"
        return record.at, "waive", short(record.digest), detail
    if isinstance(record, Readmission):
        return record.at, "readmit", short(record.digest), record.reason
    assert isinstance(record, Hold)
    name = "hold" if record.action == "placed" else "release"
    return record.at, name, "-", record.reason


def _digest(record: Record) -> str | None:
    """The digest an event is about (a rollback's: the one it returned to)."""
    found = getattr(record, "to_digest", None) or getattr(record, "digest", None)
    return found if isinstance(found, str) else None


def _model(card: ModelCard | None) -> str:
    return "-" if card is None else f"{card.name} {card.version} ({card.accuracy:.4f})"


def _jsonable(record: Record, card: ModelCard | None) -> dict[str, Any]:
    from dataclasses import fields
    from datetime import datetime

    out: dict[str, Any] = {"event": type(record).__name__.lower()}
    if _digest(record) is not None:
        out["model"] = (
            None
            if card is None
            else {"name": card.name, "version": card.version, "accuracy": card.accuracy}
        )
    for item in fields(record):
        value = getattr(record, item.name)
        if isinstance(value, datetime):
            value = value.isoformat().replace("+00:00", "Z")
        elif isinstance(value, tuple):
            value = list(value)
        out[item.name] = value
    return out


def run(args: argparse.Namespace, adapters: Adapters) -> int:
    import json

    from pipeline.commands.output import table
    from pipeline.project import find_project

    project = find_project(args.project_dir)
    project.existing_stack_file(args.stack)
    store = adapters.open_store(args.store, project, create=False, readonly=True)
    try:
        records: list[Record] = [
            *store.deployments(args.stack),
            *store.promotions(args.stack),
            *store.rollbacks(args.stack),
            *store.holds(args.stack),
            *store.readmissions(args.stack),
            *store.verifications(args.stack),
        ]
        ran = {d for d in map(_digest, records) if d is not None}
        records += [w for w in store.waivers() if w.digest in ran]
        # The newest card of each digest (lists come back oldest first).
        cards = {card.digest: card for card in store.model_cards() if card.digest in ran}
    finally:
        store.close()

    def newest_first(record: Record) -> tuple[datetime, int, int]:
        when = _event(record, args.stack)[0]
        kind = type(record).__name__.lower()
        return (when, _EVENT_ORDER[kind], record.id or 0)

    records.sort(key=newest_first, reverse=True)
    shown = records[: args.limit]
    if args.json:
        print(json.dumps([_jsonable(r, cards.get(_digest(r) or "")) for r in shown], indent=2))
        return 0
    if not shown:
        print(f"no history for {args.stack} in {store.location}")
        return 0
    rows = []
    for record in shown:
        when, event, digest, detail = _event(record, args.stack)
        model = _model(cards.get(_digest(record) or "")) if _digest(record) else "-"
        rows.append((when.isoformat(" ", "seconds")[:19], event, digest, model, detail))
    print(table(("TIME (UTC)", "EVENT", "DIGEST", "MODEL", "DETAIL"), rows))
    if len(records) > len(shown):
        print(f"({len(records) - len(shown)} older events not shown; --limit N)")
    return 0
