"""Parsing `pulumi preview --json` output: real samples, and our own documented-format fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.preview.pulumi_json import PreviewFormatError, Urn, loads_preview, parse_preview
from pipeline.preview.values import parse_path, scrub
from pipeline.secrets import SECRET_PLACEHOLDER

FIXTURES = Path(__file__).parent / "fixtures" / "preview"
SAMPLE_NAMES = (
    "sample-preview-creates.json",
    "sample-preview-update.json",
    "sample-preview-deletes.json",
)


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_real_sample_counts_equal_change_summary(shared_fixtures: Path, name: str) -> None:
    path = shared_fixtures / "pulumi-preview" / name
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    raw = json.loads(path.read_text(encoding="utf-8"))
    result = loads_preview(path.read_text(encoding="utf-8"))
    # These samples were taken with --show-sames (or on an empty stack), so the logical steps
    # must add up to exactly what Pulumi summarised.
    assert result.step_counts() == raw["changeSummary"]
    for op, count in raw["changeSummary"].items():
        assert result.counts()[op] == count
    assert result.duration_ns == raw["duration"]


def test_real_update_sample_names_the_changed_property(shared_fixtures: Path) -> None:
    path = shared_fixtures / "pulumi-preview" / "sample-preview-update.json"
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    result = loads_preview(path.read_text(encoding="utf-8"))
    (step,) = result.changes
    assert (step.op, step.type, step.name, step.why) == (
        "update",
        "aws:lambda/function:Function",
        "docsHandler",
        ("code",),
    )
    # The archive is summarised, never expanded into the comment.
    assert step.changes[0].old is not None
    assert "[archive" in step.changes[0].old
    assert "exports.handler" not in (step.changes[0].new or "")


def test_replace_counts_once_and_keeps_replace_reasons() -> None:
    result = loads_preview(_fixture("replace.json"))
    assert result.counts() == {"create": 0, "update": 1, "replace": 1, "delete": 0, "same": 13}
    replace = next(s for s in result.steps if s.op == "replace")
    assert replace.why == ("spec.selector",)
    assert replace.parent_types == ("cv-platform:environment:ModelEnvironment",)
    assert [c.kind for c in replace.changes] == ["add-replace", "add"]
    assert replace.changes[0].replaces
    assert replace.changes[0].old is None
    assert replace.changes[0].new == '"model-server-prod"'
    # create-replacement and delete-replaced are halves of the one replace.
    assert [s.op for s in result.changes] == ["replace", "update"]


def test_update_detail_resolves_indexed_paths() -> None:
    result = loads_preview(_fixture("replace.json"))
    update = next(s for s in result.steps if s.op == "update")
    (change,) = update.changes
    assert (change.path, change.old, change.new) == ("spec.ports[0].port", "80", "8080")


def test_deletes_keep_old_state_and_protect_flag() -> None:
    result = loads_preview(_fixture("deletes.json"))
    assert result.counts()["delete"] == 3
    volume = next(s for s in result.steps if s.type == "docker:index/volume:Volume")
    assert volume.op == "delete"
    assert volume.new_inputs is None
    assert volume.old_inputs == {"name": "registry-data"}


def test_diagnostics_keep_severity_and_resource() -> None:
    result = loads_preview(_fixture("diagnostics.json"))
    assert [d.severity for d in result.diagnostics] == ["error", "warning", "info", "info#err"]
    assert result.errors[0].urn.endswith("::model-server-deployment")
    assert 'context "kind-cv-platform" does not exist' in result.errors[0].message


def test_secrets_never_survive_parsing() -> None:
    text = _fixture("secrets.json")
    result = loads_preview(text)
    dumped = json.dumps(
        [[s.old_inputs, s.new_inputs, [c.__dict__ for c in s.changes]] for s in result.steps]
    )
    for value in (
        "old-registry-pw-7Hq2",
        "new-registry-pw-9Zk4",
        "sig-wrapped-token-Lm55",
        "plain-db-pw-Qx81",
        "url-embedded-pw-Vb20",
    ):
        assert value in text  # the fixture really holds it...
        assert value not in dumped  # ...and parsing dropped it
    assert result.config["cv-platform:registryPassword"] == SECRET_PLACEHOLDER


def test_scrub_handles_every_signature() -> None:
    sig = "4dabf18193072939515e22adb298388d"
    value = {
        "s": {sig: "1b47061264138c4ac30d75fd1eb44270", "value": "hunter2"},
        "a": {sig: "c44067f5952c0a294b673a41bacd8c17", "text": "body", "hash": "ab" * 32},
        "o": {sig: "d0e6a833031e9bbcd3f4e8bde6ca49a4", "secret": True, "value": "x"},
        "u": "04da6b54-80e4-46f7-96ec-b56ff0331ba9",
        "x": {sig: "ffffffffffffffffffffffffffffffff", "value": "who knows"},
    }
    assert scrub(value) == {
        "s": SECRET_PLACEHOLDER,
        "a": "[asset sha256:abababababab]",
        "o": SECRET_PLACEHOLDER,
        "u": "[unknown]",
        "x": "[opaque]",
    }


def test_urn_with_parents_and_colons_in_name() -> None:
    urn = Urn.parse("urn:pulumi:prod::cv-platform::a:b:C$kubernetes:core/v1:Service::ns::svc")
    assert (urn.stack, urn.type, urn.parent_types, urn.name) == (
        "prod",
        "kubernetes:core/v1:Service",
        ("a:b:C",),
        "ns::svc",
    )


def test_property_path_syntax() -> None:
    assert parse_path('spec.template.spec.containers[0].env[2]["a.b/c"].value') == [
        "spec",
        "template",
        "spec",
        "containers",
        0,
        "env",
        2,
        "a.b/c",
        "value",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"hello": 1}', "none of steps"),
        ('{"steps": {}}', "steps is not a list"),
        ('{"changeSummary": {"create": "2"}}', "changeSummary"),
        ('{"steps": [{"op": "create"}]}', "steps[0] has no op or urn"),
    ],
)
def test_bad_documents_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(PreviewFormatError, match=message.replace("[", r"\[")):
        loads_preview(text)


def test_lines_printed_before_the_document_are_skipped() -> None:
    text = "warning: A new version of Pulumi is available.\n" + json.dumps(
        {"changeSummary": {"same": 3}}
    )
    assert loads_preview(text).counts()["same"] == 3


def test_an_empty_preview_is_valid() -> None:
    result = parse_preview({"changeSummary": {}, "duration": 1})
    assert result.counts() == {"create": 0, "update": 0, "replace": 0, "delete": 0, "same": 0}
