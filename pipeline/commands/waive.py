"""``waive DIGEST --finding ID --reason TEXT --expires DATE``: accept a finding, for a while.

The vulnerabilities gate blocks on every finding at or above
``promotionBlockSeverity`` in any scan of the digest; a waiver accepts one
finding id (in every package it was found in) for that digest only, until it
expires. Waivers are records: the gate table and ``history`` list them.
"""

from __future__ import annotations

import argparse

from pipeline.commands.options import examples

TYPE_CHECKING = False  # not typing's: start-up skips typing; mypy reads this alike

if TYPE_CHECKING:
    from datetime import datetime

    from pipeline.commands.adapters import Adapters


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Accept a finding of DIGEST's scans until --expires: the vulnerabilities gate then "
        "passes it, and lists the waiver. The finding must be in a recorded scan of the "
        "digest; the reason is required and kept with who waived it."
    )
    parser.epilog = examples(
        'waive sha256:21b4... --finding CVE-2019-18224 --reason "not reachable: no IDN input" '
        "--expires 2026-04-01",
        'waive sha256:21b4... --finding CVE-1 --finding CVE-2 --reason "INC-31" '
        "--expires 2026-03-05T18:00:00Z",
    )
    parser.add_argument("digest", metavar="DIGEST", help="the image digest (sha256:...)")
    parser.add_argument(
        "--finding",
        action="append",
        required=True,
        metavar="ID",
        help="the finding's id as the scanner names it (CVE-..., GHSA-...); may be repeated",
    )
    parser.add_argument("--reason", required=True, metavar="TEXT", help="why it is acceptable")
    parser.add_argument(
        "--expires",
        required=True,
        metavar="DATE",
        help="when the waiver ends: a date (its start, 00:00 UTC, as Trivy's ignore files "
        "read it) or an ISO 8601 time",
    )


def expiry(text: str, now: datetime) -> datetime:
    """``--expires`` as aware UTC: a date means its start; it must be in the future."""
    from datetime import UTC, date, datetime

    from pipeline.errors import UsageError
    from pipeline.records.limits import MAX_WAIVER
    from pipeline.records.model import read_time

    try:
        when = datetime.combine(date.fromisoformat(text.strip()), datetime.min.time(), UTC)
    except ValueError:
        try:
            when = read_time(text)[0]
        except ValueError:
            raise UsageError(
                f"--expires {text!r}: not a date or an ISO 8601 time (e.g. 2026-04-01)"
            ) from None
    if when <= now:
        raise UsageError(f"--expires {text}: is not in the future (now {now:%Y-%m-%d %H:%M} UTC)")
    if when > now + MAX_WAIVER:
        raise UsageError(
            f"--expires {text}: more than {MAX_WAIVER.days} days ahead; a waiver must expire "
            "(waive the finding again when it does)"
        )
    return when


def run(args: argparse.Namespace, adapters: Adapters) -> int:
    from pipeline.errors import PipelineError, UsageError
    from pipeline.images.refs import parse_digest, short_digest
    from pipeline.project import locate_project
    from pipeline.records.model import Waiver

    digest = parse_digest(args.digest)
    reason = " ".join(args.reason.split())
    if not reason:
        raise UsageError("--reason must say why the finding is acceptable")
    now = adapters.now()
    expires = expiry(args.expires, now)
    findings = list(dict.fromkeys(f.strip() for f in args.finding))
    project = locate_project(args.project_dir, args.store)
    store = adapters.open_store(args.store, project, create=False)
    try:
        scans = store.scans(digest)
        found = {f.id for scan in scans for f in scan.findings}
        missing = [f for f in findings if f not in found]
        if missing:
            raise PipelineError(
                f"{', '.join(missing)}: in no recorded scan of {short_digest(digest)} "
                f"({len(scans)} scan(s)); check the id, or record the scan first (record scan)"
            )
        who = adapters.actor()
        stored = store.add_many(
            [Waiver(digest, finding, reason, expires, now, who) for finding in findings]
        )
    finally:
        store.close()
    for waiver in stored:
        assert isinstance(waiver, Waiver)
        print(
            f"waived {waiver.finding} for {short_digest(digest)} until "
            f"{waiver.expires:%Y-%m-%d %H:%M} UTC (waiver #{waiver.id}, by {who or 'unknown'})"
        )
    return 0
