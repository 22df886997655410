"""The commit time of a build, from the local git checkout.

CI runs in a checkout of the commit it builds; that commit's time is where DORA's
lead time starts. Anything unavailable (no git, a shallow clone, not a sha) gives
None, never an error: the run is still worth recording.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from pipeline.io.process import ProcessTimeout, Runner, run
from pipeline.records.model import parse_time

GIT_TIMEOUT = 10.0
_SHA = re.compile(r"^[0-9a-fA-F]{7,64}\Z")


def commit_time(
    commit: str | None, repo: Path | None = None, runner: Runner = run
) -> datetime | None:
    """The committer time of ``commit`` in ``repo`` (default: the working directory)."""
    if not commit or not _SHA.match(commit):
        return None
    argv = ["git"]
    if repo is not None:
        argv += ["-C", str(repo)]
    argv += ["show", "-s", "--format=%cI", commit]
    try:
        done = runner(argv, timeout=GIT_TIMEOUT)
    except (OSError, ProcessTimeout):
        return None
    if done.returncode != 0:
        return None
    try:
        return parse_time(done.stdout.strip())
    except ValueError:
        return None


__all__ = ["commit_time"]
