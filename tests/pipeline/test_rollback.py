"""``rollback``, ``hold`` and ``history``: planning (pure) and the commands on real files."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.commands.adapters import Adapters
from pipeline.errors import PipelineError
from pipeline.project import Project
from pipeline.promotion.rollback import plan_rollback, rollback_choices
from pipeline.records.model import Deployment, DeployResult, Hold, Promotion, Record, Rollback
from pipeline.records.stores import Store, open_store
from pipeline.stacks.edit import unified_diff
from pipeline.stacks.image import ImageSetting
from pipeline.stacks.stackfile import read_image, write_image

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REPO = "registry.example.internal/cv/model"
A, B, C, X = ("sha256:" + ch * 64 for ch in "abcf")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def deployed(
    digest: str, hours: float, result: DeployResult = "succeeded", stack: str = "prod"
) -> Deployment:
    finished = T0 + timedelta(hours=hours)
    tag = f"t{digest[7]}"
    return Deployment(
        stack,
        result,
        f"{REPO}:{tag}@{digest}",
        digest,
        finished - timedelta(minutes=5),
        finished,
    )


# A, B, A again, a failed X, then C (what prod pins now).
HISTORY = (
    deployed(A, 1),
    deployed(B, 2),
    deployed(A, 3),
    deployed(X, 4, "failed"),
    deployed(C, 5),
)


def test_choices_are_earlier_successful_digests_newest_first_once_each() -> None:
    assert [d.digest for d in rollback_choices(HISTORY, C)] == [A, B]


def test_the_default_is_the_one_before_the_current() -> None:
    assert plan_rollback("prod", HISTORY, C).to.digest == A


def test_steps_go_further_back() -> None:
    assert plan_rollback("prod", HISTORY, C, steps=2).to.digest == B


def test_an_undeployed_current_digest_rolls_back_to_what_last_ran() -> None:
    assert plan_rollback("prod", HISTORY, X).to.digest == C


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 3}, "only 2 earlier"),
        ({"to_digest": X}, "never successfully deployed"),
        ({"to_digest": C}, "already pins"),
    ],
)
def test_impossible_rollbacks_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        plan_rollback("prod", HISTORY, C, **kwargs)  # type: ignore[arg-type]


def test_nothing_to_roll_back_to() -> None:
    with pytest.raises(PipelineError, match="nothing to roll back to"):
        plan_rollback("prod", (deployed(C, 1),), C)


# -- the commands -------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PIPELINE_STORE", raising=False)
    monkeypatch.setenv("PIPELINE_ACTOR", "ana")
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml"):
        (tmp_path / name).write_bytes((PROJECT_ROOT / name).read_bytes())
    write_image(tmp_path / "Pulumi.prod.yaml", ImageSetting(REPO, "tc", C))
    store = open_store(None, Project(tmp_path))
    store.add_many(HISTORY)
    store.close()
    return tmp_path


def cli(root: Path, *argv: str, adapters: Adapters | None = None) -> int:
    return main(["--project-dir", str(root), *argv], adapters)


def records(root: Path) -> tuple[list[Rollback], list[Hold]]:
    store = open_store(None, Project(root))
    try:
        return store.rollbacks("prod"), store.holds("prod")
    finally:
        store.close()


def test_rollback_writes_the_file_records_it_and_holds_the_stack(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(root, "rollback", "prod") == 0
    assert read_image(root / "Pulumi.prod.yaml") == ImageSetting(REPO, "ta", A)
    (rollback,), (hold,) = records(root)
    assert (rollback.from_digest, rollback.to_digest, rollback.actor) == (C, A, "ana")
    assert hold.action == "placed"
    out = capsys.readouterr().out
    assert f"-    digest: {C}" in out
    assert "hold prod --release" in out


def test_a_rolled_back_stack_refuses_promotion_until_released(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(None, Project(root))
    store.add(deployed(B, 1, stack="staging"))
    store.close()
    assert cli(root, "rollback", "prod") == 0  # back to A; staging's candidate is B
    others = ["source-succeeded", "soak", "verified", "digest-resolves", "tests-passed",
              "vulnerabilities", "model-quality", "model-compatible"]  # fmt: skip
    promote = ["promote", "--from", "staging", "--to", "prod"]
    skips = [arg for gate in others for arg in ("--skip-gate", gate)]
    before = (root / "Pulumi.prod.yaml").read_bytes()
    capsys.readouterr()
    assert cli(root, *promote, *skips) == 3
    out = capsys.readouterr().out
    assert "not-on-hold           FAIL" in out
    assert "not-already-deployed  pass" in out
    assert (root / "Pulumi.prod.yaml").read_bytes() == before
    assert cli(root, "hold", "prod", "--release") == 0
    assert cli(root, *promote, *skips) == 0
    assert read_image(root / "Pulumi.prod.yaml").digest == B


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--to", X], "never successfully deployed"),
        (["--to", "sha256:abc"], "has 3 hex digits"),
        (["--steps", "9"], "only 2 earlier"),
    ],
)
def test_a_refused_rollback_exits_1_and_changes_nothing(
    root: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    before = (root / "Pulumi.prod.yaml").read_bytes()
    assert cli(root, "rollback", "prod", *argv) == 1
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert (root / "Pulumi.prod.yaml").read_bytes() == before
    assert records(root) == ([], [])


@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "without-digest"])
def test_a_concurrent_change_fails_the_rollback_instead_of_losing_it(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pinned: bool
) -> None:
    prod = root / "Pulumi.prod.yaml"
    if not pinned:
        prod.write_text(prod.read_text().replace(f"    digest: {C}\n", ""))
        assert read_image(prod).digest is None

    def someone_else_writes_meanwhile(
        location: str | None,
        project: Project | None,
        *,
        create: bool = True,
        readonly: bool = False,
    ) -> Store:
        write_image(prod, ImageSetting(REPO, "tb", B))
        return open_store(location, project, create=create, readonly=readonly)

    adapters = Adapters(open_store=someone_else_writes_meanwhile)
    assert cli(root, "rollback", "prod", adapters=adapters) == 1
    err = capsys.readouterr().err
    assert f"but the stack has {B}; nothing written" in err
    assert err.count("\n") == 1
    assert read_image(prod).digest == B
    assert records(root) == ([], [])


def test_rollback_dry_run_writes_and_records_nothing(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (root / "Pulumi.prod.yaml").read_bytes()
    assert cli(root, "rollback", "prod", "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"+    digest: {A}" in out
    assert (root / "Pulumi.prod.yaml").read_bytes() == before
    assert records(root) == ([], [])
    assert cli(root, "rollback", "prod") == 0
    path = root / "Pulumi.prod.yaml"
    assert unified_diff(path, before.decode(), path.read_text()) in out


def test_hold_and_release(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(root, "hold", "prod", "--reason", "incident 31") == 0
    assert cli(root, "hold", "prod", "--release") == 0
    assert cli(root, "hold", "prod", "--release") == 0
    assert "not on hold" in capsys.readouterr().out
    _, holds = records(root)
    assert [(h.action, h.reason) for h in holds] == [("placed", "incident 31"), ("released", "")]


def test_hold_on_an_unknown_stack_is_refused(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(root, "hold", "qa") == 1
    assert "unknown stack 'qa'" in capsys.readouterr().err


def test_history_lists_every_kind_newest_first(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(None, Project(root))
    store.add(
        Promotion("staging", "prod", f"{REPO}:tc@{C}", C, T0 + timedelta(hours=4, minutes=30))
    )
    store.close()
    assert cli(root, "rollback", "prod") == 0
    capsys.readouterr()
    assert cli(root, "history", "prod", "--json") == 0
    events = json.loads(capsys.readouterr().out)
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["hold", "rollback"]  # recorded now, hold after rollback
    assert kinds[2:] == [
        "deployment",
        "promotion",
        "deployment",
        "deployment",
        "deployment",
        "deployment",
    ]
    times = [e.get("finished") or e["at"] for e in events]
    assert times == sorted(times, reverse=True)
    assert events[2]["digest"] == C


def test_history_limit_and_table(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(root, "history", "prod", "--limit", "2") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["TIME", "(UTC)", "EVENT", "DIGEST"]
    assert lines[1].startswith("2026-03-02 14:00:00  deploy")
    assert lines[2].startswith("2026-03-02 13:00:00  deploy")
    assert "FAIL" not in lines[2]
    assert "failed" in lines[2]
    assert lines[3] == "(3 older events not shown; --limit N)"


def test_a_mutable_tag_is_dropped_and_a_bare_repository_is_accepted(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(None, Project(root))
    store.add_many(
        [
            # A reader recorded the repository alone beside the digest.
            Deployment(
                "prod", "succeeded", REPO, B, T0 + timedelta(hours=6), T0 + timedelta(hours=7)
            ),
            deployed(C, 8),
            Deployment(
                "staging", "succeeded", f"{REPO}:latest@{A}", A, T0, T0 + timedelta(minutes=3)
            ),
        ]
    )
    store.close()
    assert cli(root, "rollback", "prod") == 0
    assert read_image(root / "Pulumi.prod.yaml") == ImageSetting(REPO, None, B)
    assert cli(root, "hold", "prod", "--release") == 0
    others = ["soak", "verified", "digest-resolves", "tests-passed", "vulnerabilities",
              "model-quality", "model-compatible"]  # fmt: skip
    skips = [arg for gate in others for arg in ("--skip-gate", gate)]
    assert cli(root, "promote", "--from", "staging", "--to", "prod", *skips) == 0
    assert read_image(root / "Pulumi.prod.yaml") == ImageSetting(REPO, None, A)


def test_skipping_every_gate_still_needs_something_to_promote(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.promotion.gates import GATE_NAMES

    skips = [arg for gate in GATE_NAMES for arg in ("--skip-gate", gate)]
    before = (root / "Pulumi.prod.yaml").read_bytes()
    assert cli(root, "promote", "--from", "staging", "--to", "prod", *skips) == 3
    assert "nothing to promote: no successful deployment of staging" in capsys.readouterr().err
    assert (root / "Pulumi.prod.yaml").read_bytes() == before


def _unparseable(root: Path) -> None:
    (root / "Pulumi.prod.yaml").write_text("config:\n  cv-platform:image: [oops\n")


def _bad_reference(root: Path) -> None:
    store = open_store(None, Project(root))
    store.add(Deployment("prod", "succeeded", "Bad Name", B, T0, T0 + timedelta(hours=9)))
    store.close()


@pytest.mark.parametrize(
    ("argv", "prepare", "fragment"),
    [
        (["rollback", "qa"], None, "unknown stack 'qa'"),
        (["rollback", "prod"], _unparseable, "Pulumi.prod.yaml:3: malformed YAML"),
        (["rollback", "prod", "--dry-run"], _unparseable, "Pulumi.prod.yaml:3: malformed YAML"),
        (["rollback", "prod", "--to", B], _bad_reference, "not a usable reference"),
        (["rollback", "prod", "--to", "sha256:" + "b" * 63], None, "has 63 hex digits"),
        (["rollback", "prod", "--to", "md5:" + "b" * 32], None, "unsupported algorithm 'md5'"),
        (["history", "qa"], None, "unknown stack 'qa'"),
        (["hold", "qa", "--release"], None, "unknown stack 'qa'"),
    ],
    ids=[
        "unknown stack",
        "malformed yaml",
        "malformed yaml dry run",
        "recorded reference",
        "digest length",
        "digest algorithm",
        "history unknown stack",
        "release unknown stack",
    ],
)
def test_bad_input_exits_1_with_one_line_and_changes_nothing(
    root: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    prepare: Callable[[Path], None] | None,
    fragment: str,
) -> None:
    if prepare is not None:
        prepare(root)
    before = {p.name: p.read_bytes() for p in root.glob("Pulumi.*yaml")}
    recorded = records(root)
    assert cli(root, *argv) == 1
    err = capsys.readouterr().err
    assert fragment in err
    assert err.count("\n") == 1
    assert {p.name: p.read_bytes() for p in root.glob("Pulumi.*yaml")} == before
    assert records(root) == recorded


def test_history_json_honours_the_limit_newest_first(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(root, "history", "prod", "--json", "--limit", "2") == 0
    events = json.loads(capsys.readouterr().out)
    assert [(e["event"], e["digest"], e["result"]) for e in events] == [
        ("deployment", C, "succeeded"),
        ("deployment", X, "failed"),
    ]


class FlakyStore:
    """A real store whose ``add_many`` runs ``before`` first and can refuse a record kind."""

    def __init__(
        self,
        inner: Store,
        *,
        refuse: type | None = None,
        before: Callable[[list[object]], None] | None = None,
    ) -> None:
        self.inner = inner
        self.refuse = refuse
        self.before = before

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def add_many(self, records: Iterable[Record]) -> list[Record]:
        from pipeline.errors import StoreError

        batch = list(records)
        if self.before is not None:
            self.before(list(batch))
        if self.refuse is not None and any(isinstance(r, self.refuse) for r in batch):
            raise StoreError("record store: cannot append: database or disk is full")
        return self.inner.add_many(batch)


def opener(**kwargs: object) -> Callable[..., Store]:
    def open_flaky(
        location: str | None,
        project: Project | None,
        *,
        create: bool = True,
        readonly: bool = False,
    ) -> Store:
        store = open_store(location, project, create=create, readonly=readonly)
        return FlakyStore(store, **kwargs)  # type: ignore[arg-type, return-value]

    return open_flaky


def test_a_store_failure_after_the_promotion_write_says_the_file_was_written(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(None, Project(root))
    store.add(deployed(B, 1, stack="staging"))
    store.close()
    skips = [arg for gate in ("soak", "verified", "digest-resolves", "tests-passed",
                              "vulnerabilities", "model-quality", "model-compatible")
             for arg in ("--skip-gate", gate)]  # fmt: skip
    argv = ["promote", "--from", "staging", "--to", "prod", *skips]
    assert cli(root, *argv, adapters=Adapters(open_store=opener(refuse=Promotion))) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"Pulumi.prod.yaml was written (sha256:{C[7:19]} -> " in err
    assert "but the promotion was not recorded" in err
    assert "database or disk is full" in err


def test_rollback_records_its_hold_before_the_file_changes(root: Path) -> None:
    seen: list[tuple[str, str | None]] = []

    def look(batch: list[object]) -> None:
        for record in batch:
            seen.append((type(record).__name__, read_image(root / "Pulumi.prod.yaml").digest))

    assert cli(root, "rollback", "prod", adapters=Adapters(open_store=opener(before=look))) == 0
    assert seen == [("Hold", C), ("Rollback", A)]


def test_a_store_that_cannot_hold_leaves_the_file_as_it_was(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (root / "Pulumi.prod.yaml").read_bytes()
    assert cli(root, "rollback", "prod", adapters=Adapters(open_store=opener(refuse=Hold))) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "database or disk is full" in err
    assert (root / "Pulumi.prod.yaml").read_bytes() == before
    assert records(root) == ([], [])


def test_a_rollback_that_cannot_be_recorded_leaves_the_stack_written_and_held(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(root, "rollback", "prod", adapters=Adapters(open_store=opener(refuse=Rollback))) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"Pulumi.prod.yaml was written (sha256:{C[7:19]} -> sha256:{A[7:19]}" in err
    assert "but the rollback was not recorded" in err
    assert read_image(root / "Pulumi.prod.yaml").digest == A
    rollbacks, holds = records(root)
    assert rollbacks == []
    assert [h.action for h in holds] == ["placed"]


def test_promote_checks_holds_again_under_the_lock(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A hold placed after the gates were evaluated (a rollback in another process, which
    # holds under the same lock) still stops the promotion.
    store = open_store(None, Project(root))
    store.add(deployed(B, 1, stack="staging"))
    store.close()
    calls = 0

    class HoldsLate(FlakyStore):
        def holds(self, stack: str) -> list[Hold]:
            nonlocal calls
            calls += 1
            if calls == 2:
                other = open_store(None, Project(root))
                other.add(Hold("prod", "placed", T0 + timedelta(hours=9), "rolled back elsewhere"))
                other.close()
            return self.inner.holds(stack)

    def open_late(
        location: str | None,
        project: Project | None,
        *,
        create: bool = True,
        readonly: bool = False,
    ) -> Store:
        store = open_store(location, project, create=create, readonly=readonly)
        return HoldsLate(store)  # type: ignore[return-value]

    before = (root / "Pulumi.prod.yaml").read_bytes()
    skips = [arg for gate in ("soak", "verified", "digest-resolves", "tests-passed",
                              "vulnerabilities", "model-quality", "model-compatible")
             for arg in ("--skip-gate", gate)]  # fmt: skip
    argv = ["promote", "--from", "staging", "--to", "prod", *skips]
    assert cli(root, *argv, adapters=Adapters(open_store=open_late)) == 3
    assert calls == 2
    err = capsys.readouterr().err
    assert "prod was placed on hold while the gates were evaluated" in err
    assert "rolled back elsewhere" in err
    assert (root / "Pulumi.prod.yaml").read_bytes() == before


HOSTILE_REASON = "\x1b[2J\x1b[31mincident 42\x1b[0m\nfake row\r\x07"


def test_history_prints_a_stored_reason_on_one_line_with_controls_escaped(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(root, "hold", "prod", "--reason", HOSTILE_REASON) == 0
    capsys.readouterr()
    assert cli(root, "history", "prod", "--limit", "1") == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\r" not in out
    _header, row, older = out.splitlines()
    cells = re.split(r"\s{2,}", row)
    assert cells[1:] == ["hold", "-", "-", r"\x1b[2J\x1b[31mincident 42\x1b[0m fake row \x07"]
    assert older.startswith("(")


def test_history_json_keeps_the_stored_reason_exactly(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(root, "hold", "prod", "--reason", HOSTILE_REASON) == 0
    capsys.readouterr()
    assert cli(root, "history", "prod", "--limit", "1", "--json") == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out  # JSON escapes it as \u001b
    assert json.loads(out)[0]["reason"] == HOSTILE_REASON


def test_promote_gate_table_escapes_a_hold_reason(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(root, "hold", "prod", "--reason", HOSTILE_REASON) == 0
    capsys.readouterr()
    cli(root, "promote", "--from", "staging", "--to", "prod", "--dry-run")
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err
    assert "\\x1b[31mincident 42" in captured.out + captured.err
