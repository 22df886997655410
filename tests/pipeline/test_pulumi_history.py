"""Reading `pulumi stack history --json` / `pulumi stack output --json` (recorded output).

The fixtures in tests/pipeline/fixtures/pulumi were written by hand in the
format of pulumi/pulumi's ``updateInfoJSON`` (pkg/cmd/pulumi/stack/stack_history.go):
newest first, RFC 5424 times with milliseconds, ``endTime``/``resourceChanges``
absent while in progress, config values as {value, objectValue, secret}.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.io.process import Completed
from pipeline.io.pulumi import PulumiCli, PulumiError
from pipeline.records.sources import pulumi_history

FIXTURES = Path(__file__).parent / "fixtures" / "pulumi"
D = {n: "sha256:" + str(n) * 64 for n in (2, 3, 5, 7)}
REPO = "registry.cv.example:5000/cv/model"


def history() -> Any:
    return json.loads((FIXTURES / "staging-history.json").read_text(encoding="utf-8"))


def outputs() -> Any:
    return json.loads((FIXTURES / "staging-outputs.json").read_text(encoding="utf-8"))


def imported() -> pulumi_history.HistoryImport:
    return pulumi_history.deployments_from_history(
        "staging", pulumi_history.parse_history(history()), outputs()
    )


def test_each_finished_update_becomes_one_deployment_oldest_first() -> None:
    result = imported()
    assert [d.key for d in result.deployments] == [
        "pulumi:staging:1",
        "pulumi:staging:2",
        "pulumi:staging:3",
        "pulumi:staging:5",
        "pulumi:staging:7",
    ]
    assert [d.result for d in result.deployments] == [
        "succeeded",
        "succeeded",
        "succeeded",
        "failed",
        "succeeded",
    ]


def test_previews_refreshes_and_in_progress_updates_are_ignored_and_counted() -> None:
    result = imported()
    assert (result.ignored_previews, result.ignored_in_progress, result.ignored_other) == (1, 1, 1)


def test_times_are_aware_utc_from_the_rfc5424_strings() -> None:
    latest = imported().deployments[-1]
    assert latest.started == datetime(2026, 11, 20, 14, 0, 1, tzinfo=UTC)
    assert latest.finished == datetime(2026, 11, 20, 14, 3, 31, tzinfo=UTC)
    assert latest.duration_seconds == 210


def test_digest_from_config_object_string_value_and_latest_output() -> None:
    by_key = {d.key: d for d in imported().deployments}
    assert by_key["pulumi:staging:7"].digest == D[7]
    assert by_key["pulumi:staging:7"].image == f"{REPO}:9f8e7d6@{D[7]}"
    assert by_key["pulumi:staging:5"].digest == D[5]
    assert by_key["pulumi:staging:3"].digest == D[3]  # only "value" (older CLIs)
    assert by_key["pulumi:staging:3"].image == f"{REPO}:3c3c3c3@{D[3]}"
    assert by_key["pulumi:staging:1"].digest is None  # no image configured yet


RUNNING = "sha256:" + "e" * 64


def _without_in_progress() -> list[Any]:
    return [e for e in history() if e.get("result") != "in-progress"]


def test_latest_update_takes_the_running_digest_from_the_stack_output() -> None:
    # The config said one digest; what the stack exports as running wins for the latest.
    out = {**outputs(), "imageDigest": RUNNING}
    result = pulumi_history.deployments_from_history(
        "staging", pulumi_history.parse_history(_without_in_progress()), out
    )
    assert result.deployments[-1].digest == RUNNING
    assert result.deployments[-2].digest == D[5]


def test_output_digest_is_not_given_to_an_update_older_than_one_in_progress() -> None:
    # While version 8 runs, the outputs may already describe its image, not version 7's.
    out = {**outputs(), "imageDigest": RUNNING}
    result = pulumi_history.deployments_from_history(
        "staging", pulumi_history.parse_history(history()), out
    )
    assert result.deployments[-1].key == "pulumi:staging:7"
    assert result.deployments[-1].digest == D[7]


def test_a_failed_latest_update_keeps_the_digest_it_tried() -> None:
    # After a failed update the outputs still name the image before it.
    entries = [e for e in _without_in_progress() if e["version"] <= 5]
    out = {**outputs(), "imageDigest": D[2]}
    result = pulumi_history.deployments_from_history(
        "staging", pulumi_history.parse_history(entries), out
    )
    assert (result.deployments[-1].key, result.deployments[-1].result) == (
        "pulumi:staging:5",
        "failed",
    )
    assert result.deployments[-1].digest == D[5]


def test_commit_comes_from_git_head() -> None:
    by_key = {d.key: d for d in imported().deployments}
    assert by_key["pulumi:staging:7"].commit == "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
    assert by_key["pulumi:staging:2"].commit is None
    assert all(d.source == "pulumi" for d in by_key.values())


def test_zone_less_and_epoch_times_are_read_as_utc() -> None:
    entries = [
        {
            "version": 1,
            "kind": "update",
            "startTime": "2026-11-20T10:00:00",
            "endTime": 1795168860,
            "result": "succeeded",
            "config": {},
            "environment": {},
        }
    ]
    result = pulumi_history.deployments_from_history("prod", pulumi_history.parse_history(entries))
    (d,) = result.deployments
    assert d.started == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert d.finished == datetime(2026, 11, 20, 10, 1, tzinfo=UTC)
    assert result.zone_less == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"version": 1}, "expected a JSON array"),
        ([{"kind": "update"}], "no integer 'version'"),
        ([{"version": 1, "kind": "update", "startTime": "yesterday"}], "not an ISO 8601 time"),
        ([{"version": 1, "kind": "update"}], "startTime is missing"),
    ],
)
def test_malformed_history_is_one_clear_error(data: Any, message: str) -> None:
    with pytest.raises(PulumiError, match=message):
        pulumi_history.parse_history(data)


class Recorded:
    """A runner that replays recorded pulumi output and remembers the argv."""

    def __init__(self, returncode: int = 0, stderr: str = "") -> None:
        self.calls: list[tuple[list[str], str | None]] = []
        self.returncode = returncode
        self.stderr = stderr

    def __call__(self, argv: Sequence[str], cwd: str | None = None, **options: object) -> Completed:
        self.calls.append((list(argv), cwd))
        name = "staging-history.json" if "history" in argv else "staging-outputs.json"
        body = (FIXTURES / name).read_text(encoding="utf-8") if self.returncode == 0 else ""
        return Completed(self.returncode, body, self.stderr)


def test_adapter_asks_for_every_update_not_the_default_ten() -> None:
    runner = Recorded()
    cli = PulumiCli(cwd="/srv/cv-platform", runner=runner)
    assert len(cli.history("staging")) == 8
    assert cli.outputs("staging")["imageDigest"] == D[7]
    argv, cwd = runner.calls[0]
    assert argv[:4] == ["pulumi", "stack", "history", "--json"]
    assert argv[argv.index("--page-size") + 1] == "0"
    assert argv[argv.index("--stack") + 1] == "staging"
    assert cwd == "/srv/cv-platform"
    assert runner.calls[1][0][:4] == ["pulumi", "stack", "output", "--json"]


def test_missing_pulumi_cli_is_one_clear_error() -> None:
    def missing(argv: Sequence[str], cwd: str | None = None, **options: object) -> Completed:
        raise FileNotFoundError(2, "No such file or directory", argv[0])

    with pytest.raises(PulumiError, match=r"the pulumi CLI is not installed or not on PATH"):
        PulumiCli(runner=missing).history("staging")


def test_failing_pulumi_reports_its_last_stderr_line() -> None:
    runner = Recorded(returncode=255, stderr="warning: x\nerror: no stack named 'staging' found\n")
    with pytest.raises(PulumiError, match=r"failed \(exit 255\): error: no stack named 'staging'"):
        PulumiCli(runner=runner).history("staging")


def test_non_json_output_is_a_clear_error() -> None:
    def chatty(argv: Sequence[str], cwd: str | None = None, **options: object) -> Completed:
        return Completed(0, "Version: 7\nUpdateKind: update\n", "")

    with pytest.raises(PulumiError, match=r"not JSON"):
        PulumiCli(runner=chatty).history("staging")


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `pulumi` executable on PATH that prints the recorded output (real subprocess)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "pulumi"
    script.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        "fixtures = os.environ['FAKE_PULUMI_FIXTURES']\n"
        "args = sys.argv[1:]\n"
        "with open(os.path.join(fixtures, 'argv.log'), 'a') as log:\n"
        "    log.write(' '.join(args) + '\\n')\n"
        "stack = args[args.index('--stack') + 1]\n"
        "kind = 'history' if 'history' in args else 'outputs'\n"
        "path = os.path.join(fixtures, f'{stack}-{kind}.json')\n"
        "if not os.path.exists(path):\n"
        "    sys.stderr.write(f\"error: no stack named '{stack}' found\\n\")\n"
        "    sys.exit(255)\n"
        "sys.stdout.write(open(path).read())\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    data = tmp_path / "pulumi-data"
    data.mkdir()
    for name in ("staging-history.json", "staging-outputs.json"):
        (data / name).write_bytes((FIXTURES / name).read_bytes())
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_PULUMI_FIXTURES", str(data))
    return data


def test_real_subprocess_adapter_reads_recorded_output(fake_pulumi: Path) -> None:
    cli = PulumiCli()
    assert [u["version"] for u in cli.history("staging")] == [8, 7, 6, 5, 4, 3, 2, 1]
    with pytest.raises(PulumiError, match=r"no stack named 'prod' found"):
        cli.history("prod")
