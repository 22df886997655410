"""Commit times from the local git checkout: of a build, and of what a deployment brought.

CI runs in a checkout of the commit it builds; that commit's time is where DORA's
lead time starts. A deployment brings every commit since the stack's previous
successful deployment (``git log PREVIOUS..HEAD``), each with its own lead time;
the deploy bot's stack-file commits (a ``Built-From:`` trailer) are the pipeline's
bookkeeping, not changes, and are left out. Anything unavailable (no git, a
shallow clone, not a sha) gives None, never an error: the record is still worth
keeping.

A commit time is the committer's clock, not this machine's, and is often skewed: one
later than the record's own time (a CI run's start, a deployment's finish) or than
now is taken as that time, said in one note (``within_record``, and ``with_changes``
for the changes), so the lead time floors at 0 instead of the record being refused
by the limits (``pipeline.records.limits``) that hold the times a source gives.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pipeline.io.process import ProcessTimeout, Runner, run
from pipeline.records.limits import span_text
from pipeline.records.model import (
    CiRun,
    Deployment,
    Record,
    change_entry,
    parse_time,
    read_change,
    utc,
)

GIT_TIMEOUT = 10.0
# At most this many commits per deployment (a first deployment of a long history).
MAX_CHANGES = 1000
BOT_TRAILER = "Built-From: "
_FINISHED = "after the deployment finished"
_SHA = re.compile(r"^[0-9a-fA-F]{7,64}\Z")


def _show(commit: str | None, repo: Path | None, runner: Runner) -> tuple[str, datetime] | None:
    """The full sha and committer time of ``commit``, or None."""
    if not commit or not _SHA.match(commit):
        return None
    argv = ["git"]
    if repo is not None:
        argv += ["-C", str(repo)]
    argv += ["show", "-s", "--format=%H %cI", commit]
    try:
        done = runner(argv, timeout=GIT_TIMEOUT)
    except (OSError, ProcessTimeout):
        return None
    if done.returncode != 0:
        return None
    sha, _, when = done.stdout.strip().partition(" ")
    try:
        return sha, parse_time(when)
    except ValueError:
        return None


def commit_time(
    commit: str | None, repo: Path | None = None, runner: Runner = run
) -> datetime | None:
    """The committer time of ``commit`` in ``repo`` (default: the working directory)."""
    shown = _show(commit, repo, runner)
    return None if shown is None else shown[1]


def commits_between(
    base: str, head: str, repo: Path | None = None, runner: Runner = run
) -> list[tuple[str, datetime]] | None:
    """``(sha, committer time)`` of the commits in ``base..head``, newest first, without
    the deploy bot's; None when git cannot tell (an unknown commit, no git)."""
    if not (_SHA.match(base) and _SHA.match(head)):
        return None
    argv = ["git", *(["-C", str(repo)] if repo is not None else []), "log"]
    argv += [f"--max-count={MAX_CHANGES}", "--invert-grep", f"--grep=^{BOT_TRAILER}"]
    argv += ["--format=%H %cI", f"{base}..{head}", "--"]
    try:
        done = runner(argv, timeout=GIT_TIMEOUT)
    except (OSError, ProcessTimeout):
        return None
    if done.returncode != 0:
        return None
    found = []
    for line in done.stdout.splitlines():
        sha, _, when = line.partition(" ")
        try:
            found.append((sha, parse_time(when)))
        except ValueError:
            return None
    return found


def latest(record: Record, now: datetime | None = None) -> tuple[datetime, str]:
    """The latest a commit in ``record`` can have been made, and what that time is: the
    record's own (a CI run's start, a deployment's finish) unless past ``now``, else now."""
    now = utc(now or datetime.now(UTC))
    own, what = None, ""
    if isinstance(record, Deployment):
        own, what = record.finished, _FINISHED
    elif isinstance(record, CiRun):
        own, what = record.started, "after the CI run started"
    if own is not None and utc(own) <= now:
        return utc(own), what
    return now, "past this machine's clock"


def _clamp_note(ahead: Sequence[tuple[str, datetime]], bound: datetime, what: str) -> str:
    """One line for the commits in ``ahead`` (sha, git's time) taken as ``bound``."""
    if not ahead:
        return ""
    most = max(at for _, at in ahead) - bound
    at = f"{bound:%Y-%m-%dT%H:%M:%SZ}"
    if len(ahead) == 1:
        sha, when = ahead[0]
        said = f"commit {sha[:12]} is dated {when:%Y-%m-%dT%H:%M:%SZ}, {span_text(most)}"
    else:
        shas = ", ".join(sha[:12] for sha, _ in ahead)
        said = f"{len(ahead)} commits ({shas}) are dated up to {span_text(most)}"
    lead = " (a lead time of 0)" if what == _FINISHED else ""
    return (
        f"{said} {what} ({at}): the committer's clock runs ahead; "
        f"{'its' if len(ahead) == 1 else 'their'} commit time is taken as {at}{lead}"
    )


def within_record(record: Record, now: datetime | None = None) -> tuple[Record, str]:
    """``record`` with a ``commit_time`` later than ``latest`` taken as that time, and the
    note saying so ("" when it was not later, or ``record`` has no commit time)."""
    if not isinstance(record, (CiRun, Deployment)) or record.commit_time is None:
        return record, ""
    bound, what = latest(record, now)
    if utc(record.commit_time) <= bound:
        return record, ""
    note = _clamp_note([(record.commit or "?", utc(record.commit_time))], bound, what)
    return replace(record, commit_time=bound), note


def _changes_within(
    changes: Sequence[str], bound: datetime, said: str | None
) -> tuple[tuple[str, ...], list[tuple[str, datetime]]]:
    """``changes`` with each commit time later than ``bound`` taken as it, and those commits
    (sha, git's time) but the one ``said`` already names (a sha or its prefix)."""
    kept: list[str] = []
    ahead: list[tuple[str, datetime]] = []
    for entry in changes:
        change = read_change(entry)
        if change is None or change[1] <= bound:
            kept.append(entry)
            continue
        sha, at = change
        kept.append(change_entry(sha, bound))
        if not (said and sha.lower().startswith(said.lower())):
            ahead.append((sha, at))
    return tuple(kept), ahead


def deployment_changes(
    deployment: Deployment,
    head: str | None,
    earlier: Sequence[tuple[Deployment, str | None]],
    repo: Path | None = None,
    runner: Runner = run,
) -> tuple[tuple[str, ...], str]:
    """The commits a successful ``deployment`` of ``head`` brought, and a note when unsure.

    ``earlier`` holds the stack's recorded deployments with their head commits; the
    base is the head of the last successful one finished before this one. Without
    one (the stack's first deployment) or when git cannot read the range, only the
    head commit counts.
    """
    if deployment.result != "succeeded" or not head:
        return (), ""
    previous = [
        (d, commit)
        for d, commit in earlier
        if d.result == "succeeded" and commit and utc(d.finished) < utc(deployment.finished)
    ]
    base = max(previous, key=lambda item: utc(item[0].finished))[1] if previous else None
    if base is not None:
        found = commits_between(base, head, repo, runner)
        if found is not None:
            return tuple(change_entry(sha, at) for sha, at in found), ""
    shown = _show(head, repo, runner)
    if shown is None:
        return (), f"commit {head} is not in the local git checkout: no lead time for it"
    note = "" if base is None else f"git cannot list {base}..{head}: only {head} is counted"
    return (change_entry(*shown),), note


class History(Protocol):
    """What ``with_changes`` asks of the record store."""

    def deployments(self, stack: str | None = None) -> list[Deployment]: ...

    def ci_runs_for_digest(self, digest: str) -> list[CiRun]: ...


def with_changes(
    record: Record,
    history: History,
    repo: Path | None = None,
    runner: Runner = run,
    now: datetime | None = None,
) -> tuple[Record, str]:
    """A deployment of a commit with the commits it brought to its stack, and a note.

    A deployment's head is the commit of the CI run that built its digest (a rollback
    redeploys an older image from a newer checkout), else its own ``commit``. A change
    dated later than ``latest(record, now)`` is taken as that time; the note names it,
    unless it is the record's own commit, whose time ``within_record`` has checked
    against the same bound (give the same ``now``) and said.
    """
    if not isinstance(record, Deployment) or not record.commit:
        return record, ""

    def head(d: Deployment) -> str | None:
        runs = [r for r in history.ci_runs_for_digest(d.digest) if r.commit] if d.digest else []
        return max(runs, key=lambda r: r.id or 0).commit if runs else d.commit

    earlier = [(d, head(d)) for d in history.deployments(record.stack)]
    changes, note = deployment_changes(record, head(record), earlier, repo, runner)
    bound, what = latest(record, now)
    said = record.commit if record.commit_time is not None else None
    changes, ahead = _changes_within(changes, bound, said)
    notes = [text for text in (note, _clamp_note(ahead, bound, what)) if text]
    return replace(record, changes=changes), "; ".join(notes)


__all__ = [
    "History",
    "commit_time",
    "commits_between",
    "deployment_changes",
    "latest",
    "with_changes",
    "within_record",
]
