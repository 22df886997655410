"""Commit times from the local git checkout: of a build, and of what a deployment brought.

CI runs in a checkout of the commit it builds; that commit's time is where DORA's
lead time starts. A deployment brings every commit since the stack's previous
successful deployment (``git log PREVIOUS..HEAD``), each with its own lead time;
the deploy bot's stack-file commits (a ``Built-From:`` trailer) are the pipeline's
bookkeeping, not changes, and are left out. Anything unavailable (no git, a
shallow clone, not a sha) gives None, never an error: the record is still worth
keeping.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from pipeline.io.process import ProcessTimeout, Runner, run
from pipeline.records.model import CiRun, Deployment, Record, change_entry, parse_time, utc

GIT_TIMEOUT = 10.0
# At most this many commits per deployment (a first deployment of a long history).
MAX_CHANGES = 1000
BOT_TRAILER = "Built-From: "
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
    record: Record, history: History, repo: Path | None = None, runner: Runner = run
) -> tuple[Record, str]:
    """A deployment of a commit with the commits it brought to its stack, and a note.

    A deployment's head is the commit of the CI run that built its digest (a rollback
    redeploys an older image from a newer checkout), else its own ``commit``.
    """
    if not isinstance(record, Deployment) or not record.commit:
        return record, ""

    def head(d: Deployment) -> str | None:
        runs = [r for r in history.ci_runs_for_digest(d.digest) if r.commit] if d.digest else []
        return max(runs, key=lambda r: r.id or 0).commit if runs else d.commit

    earlier = [(d, head(d)) for d in history.deployments(record.stack)]
    changes, note = deployment_changes(record, head(record), earlier, repo, runner)
    return replace(record, changes=changes), note


__all__ = ["History", "commit_time", "commits_between", "deployment_changes", "with_changes"]
