"""``promote`` end to end: real stack files, the record store, and a real registry."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.project import Project
from pipeline.promotion.gates import GATE_NAMES
from pipeline.records.model import (
    CiRun,
    Deployment,
    Hold,
    ModelCard,
    Record,
    Rollback,
    Verification,
)
from pipeline.records.stores import open_store
from pipeline.stacks.edit import unified_diff
from pipeline.stacks.image import ImageSetting
from pipeline.stacks.stackfile import read_image, write_image
from tests.registry_fixture import PushedImages

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STACK_FILES = ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml")


@dataclasses.dataclass(frozen=True)
class Setup:
    """A project with the real stack files: staging requires a verification (as committed),
    so every successful staging deployment ``add`` stores is verified too, unless
    ``verify=False`` (the tests of the other gates need not say so each time)."""

    root: Path
    images: PushedImages

    @property
    def prod(self) -> Path:
        return self.root / "Pulumi.prod.yaml"

    @property
    def image(self) -> str:
        return f"{self.images.name}:v1@{self.images.v1.digest}"

    def add(self, *records: Record, cards: bool = True, verify: bool = True) -> None:
        """Append ``records``; each CI run also records its image's model card, as CI does,
        and each successful deployment a passing verification, as the Verify stage does
        (``cards=False``, ``verify=False``: without)."""
        made = [
            model_card(r.digest) for r in records if cards and isinstance(r, CiRun) and r.digest
        ]
        verified = [
            self.verification(r)
            for r in records
            if verify and isinstance(r, Deployment) and r.result == "succeeded"
        ]
        store = open_store(None, Project(self.root))
        store.add_many([*records, *made, *verified])
        store.close()

    def verification(self, deployed: Deployment, result: str = "passed") -> Verification:
        since = deployed.finished + timedelta(seconds=30)
        return Verification(
            stack=deployed.stack,
            digest=deployed.digest or "",
            image=deployed.image,
            result=result,  # type: ignore[arg-type]
            since=since,
            until=since + timedelta(minutes=5),
            requests=2033.0,
            error_ratio=0.0 if result == "passed" else 0.25,
            p95_seconds=0.004,
            min_requests=100,
            max_error_ratio=0.01,
            max_p95_ms=250.0,
            reason="" if result == "passed" else "error ratio 25.00% > 1.00%",
        )

    def promotions(self) -> list[object]:
        store = open_store(None, Project(self.root))
        try:
            return list(store.promotions("prod"))
        finally:
            store.close()

    def deployed(self, minutes_ago: float = 120, **changes: object) -> Deployment:
        finished = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        base = Deployment(
            stack="staging",
            result="succeeded",
            image=self.image,
            digest=self.images.v1.digest,
            started=finished - timedelta(minutes=4),
            finished=finished,
            commit="4e1d07c",
        )
        return dataclasses.replace(base, **changes)  # type: ignore[arg-type]

    def built(self, **changes: object) -> CiRun:
        base = CiRun(
            image=self.image,
            digest=self.images.v1.digest,
            commit="4e1d07c",
            started=datetime.now(UTC) - timedelta(hours=3),
            build_seconds=300.0,
            test_seconds=90.0,
            passed=212,
            scan_critical=0,
            scan_high=3,
        )
        return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def setup(tmp_path: Path, registry_images: PushedImages, monkeypatch: pytest.MonkeyPatch) -> Setup:
    root = tmp_path / "project"
    root.mkdir()
    for name in STACK_FILES:
        (root / name).write_bytes((PROJECT_ROOT / name).read_bytes())
    monkeypatch.setenv(
        "DOCKER_CONFIG", str(registry_images.server.docker_config(tmp_path / "docker"))
    )
    monkeypatch.delenv("PIPELINE_STORE", raising=False)
    current_model(root)
    return Setup(root, registry_images)


def model_card(digest: str, **changes: object) -> ModelCard:
    from tests.pipeline.recordkit import model_card as card

    return card(digest, **changes)


def current_model(root: Path) -> None:
    """Prod runs a model already: its last successful deployment (the digest the committed
    Pulumi.prod.yaml pins) and that image's model card."""
    digest = read_image(root / "Pulumi.prod.yaml").digest
    assert digest is not None
    finished = datetime.now(UTC) - timedelta(days=3)
    store = open_store(None, Project(root))
    store.add_many(
        [
            Deployment("prod", "succeeded", f"registry.example.internal/cv/model@{digest}", digest,
                       finished - timedelta(minutes=4), finished),
            model_card(digest),
        ]
    )  # fmt: skip
    store.close()


def promote(setup: Setup, *extra: str) -> int:
    return main(
        ["--project-dir", str(setup.root), "promote", "--from", "staging", "--to", "prod", *extra]
    )


def gate_rows(output: str) -> dict[str, str]:
    rows = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] in ("pass", "FAIL", "skipped"):
            rows[parts[0]] = parts[1]
    return rows


def test_promotion_with_every_gate_passing_pins_prod_and_is_recorded(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    before = read_image(setup.prod)
    setup.add(setup.deployed(), setup.built())
    assert promote(setup) == 0
    out = capsys.readouterr().out
    assert set(gate_rows(out).values()) == {"pass"}
    assert list(gate_rows(out)) == list(GATE_NAMES)
    assert "verified              pass    verification #1 (" in out
    assert "passed: 2033 requests, error ratio 0.00%, p95 4 ms" in out
    assert read_image(setup.prod) == ImageSetting(setup.images.name, "v1", setup.images.v1.digest)
    (promotion,) = setup.promotions()
    assert promotion.digest == setup.images.v1.digest  # type: ignore[attr-defined]
    assert promotion.previous_digest == before.digest  # type: ignore[attr-defined]
    assert promotion.skipped_gates == ()  # type: ignore[attr-defined]


def test_the_digest_promoted_is_the_last_successful_deployment_not_the_newest_tag(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    # v2 was pushed after v1 (and is `latest`), but staging last ran v1 successfully.
    v2 = f"{setup.images.name}:v2@{setup.images.v2.digest}"
    setup.add(
        setup.deployed(300, image=v2, digest=setup.images.v2.digest),
        setup.deployed(120),
        setup.deployed(60, image=v2, digest=setup.images.v2.digest, result="failed"),
        setup.built(),
    )
    assert promote(setup, "--skip-gate", "source-succeeded") == 0
    assert read_image(setup.prod).digest == setup.images.v1.digest


def held(setup: Setup) -> None:
    setup.add(setup.deployed(), setup.built(), Hold("prod", "placed", datetime.now(UTC), "freeze"))


def already_there(setup: Setup) -> None:
    setup.add(setup.deployed(), setup.built())
    write_image(setup.prod, ImageSetting(setup.images.name, "v1", setup.images.v1.digest))


def gone_from_registry(setup: Setup) -> None:
    missing = "sha256:" + "0" * 64
    setup.add(
        setup.deployed(image=f"{setup.images.name}:v9@{missing}", digest=missing),
        setup.built(digest=missing),
    )


def rolled_back(setup: Setup) -> None:
    # prod ran v1 once and was rolled back from it; the hold is released, the rejection stays.
    now = datetime.now(UTC)
    v1 = setup.images.v1.digest
    setup.add(
        setup.deployed(),
        setup.built(),
        Rollback("prod", v1, "sha256:" + "9" * 64, setup.image, now - timedelta(hours=1)),
        Hold("prod", "placed", now - timedelta(hours=1), "rolled back"),
        Hold("prod", "released", now - timedelta(minutes=30)),
    )


def worse_model(setup: Setup) -> None:
    setup.add(setup.deployed(), setup.built(), cards=False)
    setup.add(model_card(setup.images.v1.digest, accuracy=0.95))


def other_signature(setup: Setup) -> None:
    setup.add(setup.deployed(), setup.built(), cards=False)
    outputs = '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 10]}}]'
    setup.add(model_card(setup.images.v1.digest, outputs=outputs, version="1.1.0"))


FAILURES: dict[str, Callable[[Setup], None]] = {
    "source-succeeded": lambda s: s.add(s.deployed(), s.deployed(30, result="failed"), s.built()),
    "soak": lambda s: s.add(s.deployed(minutes_ago=5), s.built()),
    "digest-resolves": gone_from_registry,
    "tests-passed": lambda s: s.add(s.deployed(), s.built(failed=2)),
    "vulnerabilities": lambda s: s.add(s.deployed(), s.built(scan_critical=1)),
    "not-on-hold": held,
    "not-already-deployed": already_there,
    "model-quality": worse_model,
    "model-compatible": other_signature,
    "not-rejected": rolled_back,
    "verified": lambda s: s.add(s.deployed(), s.built(), verify=False),
}


@pytest.mark.parametrize("failing", sorted(FAILURES))
def test_a_failing_gate_exits_3_and_leaves_prod_byte_identical(
    setup: Setup, failing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    FAILURES[failing](setup)
    before = setup.prod.read_bytes()
    assert promote(setup) == 3
    captured = capsys.readouterr()
    rows = gate_rows(captured.out)
    assert rows[failing] == "FAIL"
    assert [name for name, status in rows.items() if status == "FAIL"] == [failing]
    assert setup.prod.read_bytes() == before
    assert setup.promotions() == []
    assert captured.err.count("\n") == 1
    assert f"refused by {failing}" in captured.err


def test_a_skipped_gate_is_shown_and_recorded(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.add(setup.deployed(minutes_ago=5), setup.built(failed=1))
    assert promote(setup, "--skip-gate", "tests-passed", "--skip-gate", "soak") == 0
    rows = gate_rows(capsys.readouterr().out)
    assert rows["soak"] == rows["tests-passed"] == "skipped"
    (promotion,) = setup.promotions()
    assert promotion.skipped_gates == ("soak", "tests-passed")  # type: ignore[attr-defined]


def test_dry_run_prints_the_diff_and_changes_nothing(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.add(setup.deployed(), setup.built())
    before = setup.prod.read_bytes()
    assert promote(setup, "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"+    digest: {setup.images.v1.digest}" in out
    assert setup.prod.read_bytes() == before
    assert setup.promotions() == []
    # The diff shown is exactly what the real promotion then writes.
    assert promote(setup) == 0
    real = unified_diff(setup.prod, before.decode(), setup.prod.read_text())
    assert real.startswith("--- a/Pulumi.prod.yaml\n")
    assert real in out


def test_an_unknown_gate_name_is_a_usage_error(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    assert promote(setup, "--skip-gate", "soak-time") == 2
    assert "unknown gate soak-time" in capsys.readouterr().err


def test_nothing_recorded_for_the_source_refuses_with_exit_3(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    before = setup.prod.read_bytes()
    assert promote(setup) == 3
    assert "no deployment of staging recorded" in capsys.readouterr().out
    assert setup.prod.read_bytes() == before


@pytest.mark.parametrize("pinned", [True, False], ids=["prod-pinned", "prod-without-digest"])
def test_a_concurrent_change_to_the_target_fails_the_promotion_instead_of_losing_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    pinned: bool,
) -> None:
    from pipeline.commands.adapters import Adapters
    from pipeline.promotion.gates import DigestCheck

    monkeypatch.delenv("PIPELINE_STORE", raising=False)
    for name in STACK_FILES:
        (tmp_path / name).write_bytes((PROJECT_ROOT / name).read_bytes())
    prod = tmp_path / "Pulumi.prod.yaml"
    if not pinned:  # a first promotion: prod has no digest yet, still compare-and-swap
        text = prod.read_text()
        prod.write_text(text.replace(f"    digest: {read_image(prod).digest}\n", ""))
        assert read_image(prod).digest is None
    repo = "registry.example.internal/cv/model"
    candidate, theirs = "sha256:" + "c" * 64, "sha256:" + "d" * 64
    finished = datetime.now(UTC) - timedelta(hours=2)
    store = open_store(None, Project(tmp_path))
    store.add_many(
        [
            Deployment("staging", "succeeded", f"{repo}:c@{candidate}", candidate,
                       finished - timedelta(minutes=3), finished),
            CiRun(image=repo, digest=candidate, passed=10, scan_critical=0, scan_high=0),
            model_card(candidate),
        ]
    )  # fmt: skip
    store.close()
    if pinned:
        current_model(tmp_path)

    def someone_else_writes_meanwhile(ref: object, insecure: object) -> DigestCheck:
        write_image(prod, ImageSetting(repo, "d", theirs))
        return DigestCheck(True, "served")

    adapters = Adapters(check_digest=someone_else_writes_meanwhile)
    argv = ["--project-dir", str(tmp_path), "promote", "--from", "staging", "--to", "prod"]
    argv += ["--skip-gate", "verified"]
    if not pinned:  # prod never ran a model: the model gates refuse unless skipped
        argv += ["--skip-gate", "model-quality", "--skip-gate", "model-compatible"]
    code = main(argv, adapters)
    assert code == 1
    assert "nothing written" in capsys.readouterr().err
    assert read_image(prod).digest == theirs
    assert open_store(None, Project(tmp_path)).promotions() == []


# -- bad input: exit 1 (3 for a gate), one line, every file byte-identical -------------


def _snapshot(setup: Setup) -> dict[str, bytes]:
    return {name: (setup.root / name).read_bytes() for name in STACK_FILES}


def _refused(capsys: pytest.CaptureFixture[str], code: int, expected: int, fragment: str) -> str:
    captured = capsys.readouterr()
    assert code == expected, captured
    assert captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err
    assert fragment in captured.out + captured.err
    return captured.out


def _unparseable(setup: Setup, stack: str) -> None:
    (setup.root / f"Pulumi.{stack}.yaml").write_text("config:\n  cv-platform:image: [oops\n")


BAD_INPUT: dict[str, tuple[list[str], Callable[[Setup], None], str]] = {
    "unknown target": (["--to", "qa"], lambda s: None, "unknown stack 'qa'"),
    "unknown source": (["--from", "qa"], lambda s: None, "unknown stack 'qa'"),
    "malformed target": ([], lambda s: _unparseable(s, "prod"), "Pulumi.prod.yaml"),
    "malformed source": ([], lambda s: _unparseable(s, "staging"), "Pulumi.staging.yaml"),
    "recorded reference": (
        [],
        lambda s: s.add(s.deployed(image="Registry.Example/Bad Name", digest="sha256:" + "a" * 64)),
        "not a usable reference",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_exits_1_with_one_line_and_changes_nothing(
    setup: Setup, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, prepare, fragment = BAD_INPUT[case]
    prepare(setup)
    before = _snapshot(setup)
    flags = {"--from": "staging", "--to": "prod"}
    flags.update(zip(argv[::2], argv[1::2], strict=True))
    code = main(
        ["--project-dir", str(setup.root), "promote", *(x for kv in flags.items() for x in kv)]
    )
    _refused(capsys, code, 1, fragment)
    assert _snapshot(setup) == before
    assert setup.promotions() == []


@pytest.mark.parametrize("case", ["401", "500", "timeout", "refused"])
def test_registry_failures_refuse_the_digest_gate_and_change_nothing(
    setup: Setup,
    case: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from tests.pipeline.fake_registry import MANIFEST_DIGEST, Script, fake_registry

    scripts = {
        "500": (Script(fail_status=500, fail_first=99), "answered 500"),
        "timeout": (Script(delay=1.0), "did not answer within 0.2 s"),
    }
    monkeypatch.setenv("PIPELINE_REGISTRY_RETRIES", "0")
    monkeypatch.setenv("PIPELINE_REGISTRY_TIMEOUT", "0.2")

    def attempt(host: str, digest: str, fragment: str) -> None:
        image = f"{host}/cv/model:v1@{digest}"
        setup.add(
            setup.deployed(image=image, digest=digest), setup.built(image=image, digest=digest)
        )
        before = _snapshot(setup)
        out = _refused(capsys, promote(setup), 3, "refused by digest-resolves")
        assert [n for n, s in gate_rows(out).items() if s == "FAIL"] == ["digest-resolves"]
        row = next(line for line in out.splitlines() if line.startswith("digest-resolves"))
        assert fragment in row
        assert "not-the-password" not in out
        assert _snapshot(setup) == before
        assert setup.promotions() == []

    if case == "401":
        server = setup.images.server
        bad = server.docker_config(tmp_path / "bad-docker", password="not-the-password")
        monkeypatch.setenv("DOCKER_CONFIG", str(bad))
        attempt(server.host, setup.images.v1.digest, f"authentication failed for {server.host}")
    elif case == "refused":
        # Bound but not listening: connections are refused, and no other test
        # can take the port meanwhile (as it could after free_port()).
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            attempt(f"127.0.0.1:{holder.getsockname()[1]}", MANIFEST_DIGEST, "connection refused")
    else:
        script, fragment = scripts[case]
        with fake_registry(script) as host:
            attempt(host, MANIFEST_DIGEST, fragment)


def test_a_skipped_verified_gate_does_not_read_the_source_verification_setting(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    staging = setup.root / "Pulumi.staging.yaml"
    staging.write_text(staging.read_text() + "  cv-platform:verification: 5\n")
    setup.add(setup.deployed(), setup.built(), verify=False)
    assert promote(setup) == 1  # the gate needs the setting, and it is not an object
    assert "cv-platform:verification" in capsys.readouterr().err
    assert promote(setup, "--skip-gate", "verified") == 0
    assert read_image(setup.prod).digest == setup.images.v1.digest
