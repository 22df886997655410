"""Offline preview on a temporary git repository holding a copy of the real program."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.errors import PipelineError
from pipeline.io.process import Completed
from pipeline.preview.diff import Snapshot, diff_snapshots
from pipeline.preview.offline import offline_preview, resolve_ref

LB_SERVICE = """
import pulumi_kubernetes as k8s

if pulumi.get_stack() == "staging":
    k8s.core.v1.Service(
        "public-lb",
        metadata={"name": "public-lb", "namespace": "cv-staging"},
        spec={
            "type": "LoadBalancer",
            "selector": {"app.kubernetes.io/name": "model-server"},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
        },
    )
"""
DEBUG_DEPLOYMENT = """
if pulumi.get_stack() == "staging":
    k8s.apps.v1.Deployment(
        "debug",
        metadata={"name": "debug", "namespace": "cv-staging"},
        spec={
            "selector": {"matchLabels": {"app": "debug"}},
            "template": {
                "metadata": {"labels": {"app": "debug"}},
                "spec": {"containers": [{
                    "name": "shell",
                    "image": "busybox:1.36",
                    "env": [{"name": "DB_PASSWORD", "value": "hunter2-offline-Zz19"}],
                }]},
            },
        },
    )
"""
PLAINTEXT = "hunter2-offline-Zz19"

# Eight real renders (two trees, one or two stacks, three previews): a few seconds of CPU.
pytestmark = pytest.mark.slow


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def _commit(repo: Path, message: str) -> str:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def _preview(repo: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--project-dir", str(repo), "preview", "--offline", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


# What the program needs is the project minus the tooling, tests and caches; copying by
# exclusion keeps up with assets the program reads (infra/, model/, ...).
_NOT_PROGRAM = frozenset(
    {
        ".git",
        ".venv",
        ".tools",
        "tests",
        "bench",
        "docs",
        "build",
        "render",
        ".pipeline",
        ".ci",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "__pycache__",
    }
)


def _copy_program(project_root: Path, repo: Path) -> None:
    for entry in project_root.iterdir():
        if entry.name in _NOT_PROGRAM:
            continue
        if entry.is_dir():
            shutil.copytree(
                entry, repo / entry.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy2(entry, repo / entry.name)


@dataclass(frozen=True)
class Runs:
    repo: Path
    replicas: tuple[int, str, str]
    added: tuple[int, str, str]
    uncommitted: tuple[int, str, str]


@pytest.fixture(scope="module")
def runs(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    if not (project_root / "__main__.py").is_file():
        pytest.skip("the Pulumi program (__main__.py) is not in the project yet")
    repo = tmp_path_factory.mktemp("repo")
    _copy_program(project_root, repo)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "preview@test.invalid")
    _git(repo, "config", "user.name", "preview test")
    base = _commit(repo, "the program as it is")

    prod = repo / "Pulumi.prod.yaml"
    text = prod.read_text()
    assert "cv-platform:replicas: 3\n" in text
    prod.write_text(text.replace("cv-platform:replicas: 3\n", "cv-platform:replicas: 4\n"))
    replicas_commit = _commit(repo, "prod: 4 replicas")

    # pytest's capsys is function-scoped: capture by hand around main().
    import contextlib
    import io

    def run(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--project-dir", str(repo), "preview", "--offline", *args])
        return code, out.getvalue(), err.getvalue()

    replicas = run("--base", base)

    with (repo / "__main__.py").open("a") as fh:
        fh.write(LB_SERVICE)
    _commit(repo, "staging: a public load balancer")
    added = run("--base", replicas_commit, "--stack", "staging")

    with (repo / "__main__.py").open("a") as fh:
        fh.write(DEBUG_DEPLOYMENT)  # not committed: the working tree is what is previewed
    # No --base: the merge-base of HEAD and main (no origin here), i.e. HEAD on main itself.
    uncommitted = run("--stack", "staging")
    return Runs(repo, replicas, added, uncommitted)


def _section(body: str, stack: str) -> str:
    match = re.search(rf"### `{stack}`:.*?(?=\n### `|\Z)", body, re.S)
    assert match is not None, f"no section for {stack}"
    return match.group(0)


def test_replicas_commit_shows_exactly_the_replica_change(runs: Runs) -> None:
    code, body, err = runs.replicas
    assert code == 0, err
    prod = _section(body, "prod")
    rows = re.findall(r"^\| `(kubernetes:[^`]+)` \| `([^`]+)` \| (\w+) \| (.*) \|$", prod, re.M)
    # The stack's replicas are the Deployment's and the autoscaler's floor: nothing else moves.
    changed = {(t, n, op) for t, n, op, _ in rows}
    assert ("kubernetes:apps/v1:Deployment", "cv-prod/model-server", "update") in changed or (
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "cv-prod/model-server",
        "update",
    ) in changed
    assert all(op == "update" for _, _, op in changed)
    whys = {w for *_, why in rows for w in re.findall(r"`([^`]+)`", why)}
    assert whys <= {"spec.replicas", "spec.minReplicas"}
    diffs = re.findall(r"```diff\n(.*?)\n```", prod, re.S)
    changed_lines = [
        line
        for d in diffs
        for line in d.splitlines()
        if line[:1] in ("+", "-") and not line.startswith(("+++", "---"))
    ]
    assert sorted(changed_lines) == sorted(
        line
        for line in changed_lines
        if re.fullmatch(r"[-+]\s+(spec\.)?(replicas|minReplicas): [34]", line)
    )
    # The field's full path comes first, so the setting is named, not just a hunk of YAML.
    assert re.search(r"^- spec\.(replicas|minReplicas): 3\n\+ spec\.\1: 4$", prod, re.M)
    assert any(line.endswith(": 3") and line.startswith("-") for line in changed_lines)
    assert any(line.endswith(": 4") and line.startswith("+") for line in changed_lines)
    assert "0 to create · " in prod
    assert " · 0 to replace · 0 to delete · " in prod


def test_replicas_commit_leaves_staging_unchanged(runs: Runs) -> None:
    staging = _section(runs.replicas[1], "staging")
    assert "0 to create · 0 to update · 0 to replace · 0 to delete" in staging
    assert "No changes." in staging


def test_added_object_is_a_create_with_its_manifest(runs: Runs) -> None:
    _code, body, _ = runs.added
    staging = _section(body, "staging")
    assert "1 to create · 0 to update · 0 to replace · 0 to delete" in staging
    assert "| `kubernetes:core/v1:Service` | `cv-staging/public-lb` | create |" in staging
    assert "type: LoadBalancer" in staging
    assert "### `prod`" not in body  # only the stack asked for


def test_violating_manifest_is_named_with_its_rule(runs: Runs) -> None:
    code, body, err = runs.added
    assert code == 1  # a mandatory rule is broken
    assert "mandatory policy violation" in err
    assert (
        "| `load-balancer-source-ranges` | `kubernetes:core/v1:Service` `cv-staging/public-lb` "
        "in `service-cv-staging-public-lb.yaml` | mandatory | Service of type LoadBalancer has "
        "no spec.loadBalancerSourceRanges | yes |" in body
    )


def test_working_tree_changes_are_previewed_and_secrets_stay_out(runs: Runs) -> None:
    _code, body, err = runs.uncommitted
    staging = _section(body, "staging")
    assert "| `kubernetes:apps/v1:Deployment` | `cv-staging/debug` | create |" in staging
    assert "env DB_PASSWORD holds a literal secret" in staging
    # The base already had the load balancer violation; the new ones are marked new.
    assert re.search(r"`load-balancer-source-ranges` .* \| no \|", staging)
    assert PLAINTEXT not in body
    assert PLAINTEXT not in err
    assert "value: '[secret]'" in staging
    assert "_offline render: merge-base of HEAD and main (" in staging


def test_no_worktree_is_left_behind(runs: Runs) -> None:
    listing = _git(runs.repo, "worktree", "list", "--porcelain")
    assert listing.count("worktree ") == 1


def test_failed_render_still_removes_the_worktree(runs: Runs) -> None:
    def failing(cmd: Sequence[str], cwd: str | None = None, **options: object) -> Completed:
        return Completed(1, "", "render: error: boom\n")

    with pytest.raises(PipelineError, match=r"rendering staging at .* failed: render: error: boom"):
        offline_preview(runs.repo, ["staging"], "HEAD", runner=failing)
    listing = _git(runs.repo, "worktree", "list", "--porcelain")
    assert listing.count("worktree ") == 1


def test_unknown_base_ref_is_one_line(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _preview(runs.repo, capsys, "--base", "no-such-branch")
    assert code == 1
    assert out == ""
    assert err.strip().splitlines() == [
        f"python -m pipeline preview: error: unknown git ref 'no-such-branch': no such commit "
        f"in {runs.repo}"
    ]


def test_not_a_git_repository(
    tmp_path: Path, project_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml"):
        shutil.copy2(project_root / name, tmp_path / name)
    code, _out, err = _preview(tmp_path, capsys, "--base", "main")
    assert code == 1
    assert "is not inside a git repository" in err


def test_diff_of_plain_snapshots_estimates_replace_for_immutable_fields() -> None:
    def deployment(selector: str, replicas: int) -> dict[str, object]:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "m", "namespace": "ns"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": selector}}},
        }

    base = Snapshot(
        {"deployment-ns-m.yaml": deployment("a", 1)},
        ({"type": "docker:index/volume:Volume", "name": "data", "inputs": {"name": "d"}},),
    )
    head = Snapshot({"deployment-ns-m.yaml": deployment("b", 2)}, ())
    changes, counts = diff_snapshots(base, head)
    assert counts == {"create": 0, "update": 0, "replace": 1, "delete": 1, "same": 0}
    replace = next(c for c in changes if c.op == "replace")
    assert replace.paths == ("spec.selector.matchLabels.app", "spec.replicas")
    delete = next(c for c in changes if c.op == "delete")
    assert (delete.type, delete.name) == ("docker:index/volume:Volume", "data")


def test_default_base_is_the_merge_base_with_origin_main_else_main(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "preview@test.invalid")
    _git(repo, "config", "user.name", "preview test")
    (repo / "f").write_text("1")
    first = _commit(repo, "one")
    (repo / "f").write_text("2")
    second = _commit(repo, "two")
    _git(repo, "checkout", "-q", "-b", "feature")
    (repo / "f").write_text("3")
    _commit(repo, "three")
    assert resolve_ref(repo, None)[1:] == (second, f"merge-base of HEAD and main ({second[:10]})")
    # A fetched origin/main wins over a stale local main.
    _git(repo, "update-ref", "refs/remotes/origin/main", first)
    assert resolve_ref(repo, None)[1] == first
    _git(repo, "update-ref", "-d", "refs/remotes/origin/main")
    _git(repo, "branch", "-q", "-m", "main", "trunk")
    with pytest.raises(
        PipelineError, match=r"no common commit of HEAD and origin/main or main .*: give --base REF"
    ):
        resolve_ref(repo, None)
