"""Offline preview, the shell: render every stack at the working tree and at a git ref.

No Pulumi CLI, no cloud credentials: both trees are rendered by ``python -m pipeline render``
(the program under Pulumi's mocks). Each render runs in its own process: the program's
modules (``infra.*``) are cached per interpreter, so two trees can never share one, and
the renders run in parallel. The base tree is a temporary ``git worktree`` that is always
removed, even on error. The current ``pipeline`` code renders both trees, so a base that
predates a render fix is still rendered the same way. The diff itself is
``pipeline.preview.diff``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.io.process import Completed, ProcessTimeout, Runner, last_line, run
from pipeline.preview.diff import Snapshot, StackDiff, diff_snapshots

# Where `python -m pipeline` finds this same pipeline package: renders run from there.
TOOL_ROOT = Path(__file__).resolve().parents[2]
RENDER_TIMEOUT = 300.0
# Without --base, the preview compares with where HEAD left the first of these that exists.
DEFAULT_TRUNKS = ("origin/main", "main")
GIT_TIMEOUT = 60.0


def _git(args: Sequence[str], cwd: Path, runner: Runner = run) -> Completed:
    try:
        return runner(["git", *args], str(cwd), timeout=GIT_TIMEOUT)
    except FileNotFoundError:
        raise PipelineError("git is not installed: the offline preview needs it") from None
    except ProcessTimeout:
        raise PipelineError(f"`git {args[0]}` did not finish in {GIT_TIMEOUT:.0f} s") from None


def _last(text: str) -> str:
    return last_line(text) or "no output"


def resolve_ref(root: Path, ref: str | None, git: Runner = run) -> tuple[Path, str, str]:
    """The repository's top level, the commit ``ref`` names, and a label for it.

    Without ``ref``: the merge-base of HEAD with origin/main (else main), the commit a pull
    request's branch left the trunk at, so the preview shows the branch's changes only.
    """
    if ref is not None and ref.startswith("-"):
        raise PipelineError(f"unknown git ref {ref!r}")
    top = _git(["rev-parse", "--show-toplevel"], root, git)
    if top.returncode != 0:
        raise PipelineError(f"{root} is not inside a git repository: {_last(top.stderr)}")
    where = top.stdout.strip()
    if ref is None:
        for trunk in DEFAULT_TRUNKS:
            base = _git(["merge-base", "HEAD", trunk], root, git)
            if base.returncode == 0 and base.stdout.strip():
                sha = base.stdout.strip()
                return Path(where), sha, f"merge-base of HEAD and {trunk} ({sha[:10]})"
        raise PipelineError(
            f"no common commit of HEAD and {' or '.join(DEFAULT_TRUNKS)} in {where} (no such "
            "branch, no commit yet, or a shallow clone): give --base REF"
        )
    found = _git(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], root, git
    )
    sha = found.stdout.strip()
    if found.returncode != 0 or not sha:
        raise PipelineError(f"unknown git ref {ref!r}: no such commit in {where}")
    return Path(where), sha, f"{ref} ({sha[:10]})"


@contextmanager
def base_worktree(top: Path, sha: str, git: Runner = run) -> Iterator[Path]:
    """A detached worktree of ``sha`` in a temporary directory, removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="cv-preview-"))
    path = tmp / "base"
    added = _git(["worktree", "add", "--detach", "--quiet", str(path), sha], top, git)
    try:
        if added.returncode != 0:
            raise PipelineError(f"git worktree add failed: {_last(added.stderr)}")
        yield path
    finally:
        if path.exists():
            _git(["worktree", "remove", "--force", str(path)], top, git)
        shutil.rmtree(tmp, ignore_errors=True)
        _git(["worktree", "prune"], top, git)


def render_command(project_dir: Path, stack: str, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pipeline",
        "--project-dir",
        str(project_dir),
        "render",
        stack,
        "--out",
        str(out),
    ]


def _render(runner: Runner, project_dir: Path, stack: str, out: Path, label: str) -> Snapshot:
    try:
        done = runner(
            render_command(project_dir, stack, out), str(TOOL_ROOT), timeout=RENDER_TIMEOUT
        )
    except ProcessTimeout:
        raise PipelineError(f"rendering {stack} at {label} timed out") from None
    if done.returncode != 0:
        raise PipelineError(f"rendering {stack} at {label} failed: {_last(done.stderr)}")
    return Snapshot.load(out)


def _has_program(root: Path) -> bool:
    return (root / "Pulumi.yaml").is_file() and (root / "__main__.py").is_file()


def offline_preview(
    project_root: Path,
    stacks: Sequence[str],
    base_ref: str | None,
    runner: Runner = run,
    jobs: int | None = None,
    git: Runner = run,
) -> list[StackDiff]:
    """Diff each stack's render at ``base_ref`` (None: see ``resolve_ref``) against the tree.

    ``runner`` starts the renders, ``git`` runs git (both the one process runner type).
    """
    top, sha, label = resolve_ref(project_root, base_ref, git)
    rel = project_root.resolve().relative_to(top.resolve())
    workers = jobs or max(1, min(4, os.cpu_count() or 1))
    with (
        base_worktree(top, sha, git) as tree,
        tempfile.TemporaryDirectory(prefix="cv-preview-render-") as tmp,
    ):
        base_root = tree / rel
        out = Path(tmp)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            head_jobs = {
                s: pool.submit(
                    _render, runner, project_root, s, out / f"head-{s}", "the working tree"
                )
                for s in stacks
            }
            base_jobs = {
                s: pool.submit(_render, runner, base_root, s, out / f"base-{s}", label)
                for s in stacks
                if _has_program(base_root) and (base_root / f"Pulumi.{s}.yaml").is_file()
            }
            # Every render finishes before the worktree goes away; the first error wins.
            pending = [*head_jobs.values(), *base_jobs.values()]
            errors = [e for e in (f.exception() for f in pending) if e is not None]
        if errors:
            raise errors[0]
        diffs = []
        for stack in stacks:
            head = head_jobs[stack].result()
            notes: tuple[str, ...] = ()
            if stack in base_jobs:
                base = base_jobs[stack].result()
            else:
                base = Snapshot()
                notes = (f"Stack {stack} has no program or stack file at {label}: all new.",)
            changes, counts = diff_snapshots(base, head)
            diffs.append(StackDiff(stack, label, tuple(changes), counts, head, base, notes))
    return diffs
