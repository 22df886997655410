"""Docker's reference grammar: every accepted form, and the errors for bad ones."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.images.refs import ImageRef, InvalidReferenceError, parse_digest, parse_ref

HEX = "0123456789abcdef" * 4
DIGEST = f"sha256:{HEX}"
STACK_REPO = "registry.example.internal/cv-platform/model-server"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "registry.example.internal/cv/model:v1",
            ImageRef("registry.example.internal", "cv/model", "v1"),
        ),
        (
            f"registry.example.internal/cv/model@{DIGEST}",
            ImageRef("registry.example.internal", "cv/model", None, DIGEST),
        ),
        (
            f"registry.example.internal/cv/model:v1@{DIGEST}",
            ImageRef("registry.example.internal", "cv/model", "v1", DIGEST),
        ),
        ("127.0.0.1:5000/cv/model:9f3c2ab", ImageRef("127.0.0.1:5000", "cv/model", "9f3c2ab")),
        ("localhost/model:v1", ImageRef("localhost", "model", "v1")),
        ("localhost:5000/a/b/c:v1.2.3-rc_1", ImageRef("localhost:5000", "a/b/c", "v1.2.3-rc_1")),
        ("[::1]:5000/model:v1", ImageRef("[::1]:5000", "model", "v1")),
        ("nginx:1.25", ImageRef("docker.io", "library/nginx", "1.25")),
        ("team/model:v1", ImageRef("docker.io", "team/model", "v1")),
        ("r.io/a__b/c-d--e/f.g:V_1", ImageRef("r.io", "a__b/c-d--e/f.g", "V_1")),
        ("r.io/m:" + "a" * 128, ImageRef("r.io", "m", "a" * 128)),
    ],
)
def test_accepts_full_references(text: str, expected: ImageRef) -> None:
    assert parse_ref(text) == expected


@pytest.mark.parametrize(
    ("text", "tag", "digest"),
    [
        ("v2", "v2", None),
        ("9f3c2ab", "9f3c2ab", None),
        (DIGEST, None, DIGEST),
        (f"v2@{DIGEST}", "v2", DIGEST),
    ],
)
def test_bare_tag_and_digest_use_the_stack_repository(
    text: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_ref(text, default_repository=STACK_REPO)
    assert ref == ImageRef("registry.example.internal", "cv-platform/model-server", tag, digest)


def test_str_is_canonical_and_round_trips() -> None:
    ref = parse_ref(f"127.0.0.1:5000/cv/model:v1@{DIGEST}")
    assert str(ref) == f"127.0.0.1:5000/cv/model:v1@{DIGEST}"
    assert ref.name == "127.0.0.1:5000/cv/model"
    assert parse_ref(str(ref)) == ref
    assert str(parse_ref("nginx:1.25")) == "docker.io/library/nginx:1.25"


@pytest.mark.parametrize(
    ("text", "default", "message"),
    [
        ("sha256:abc", STACK_REPO, "digest sha256:abc has 3 hex digits; sha256 needs 64"),
        (f"r.io/m@sha256:{HEX}0", None, "has 65 hex digits; sha256 needs 64"),
        (f"r.io/m@sha512:{HEX * 2}", None, "unsupported algorithm 'sha512': only sha256"),
        ("sha384:" + HEX + HEX[:32], STACK_REPO, "unsupported algorithm 'sha384': only sha256"),
        (f"r.io/m@sha256:{HEX.upper()}", None, "uppercase"),
        (f"r.io/m@sha256:{'g' * 64}", None, "not hex digits"),
        ("r.io/m@md5:abc", None, "unsupported algorithm 'md5'"),
        ("r.io/m@", None, "invalid digest"),
        ("r.io/Cv/Model:v1", None, "must be lowercase"),
        ("r.io/cv/model:.v1", None, "invalid tag '.v1'"),
        ("r.io/cv/model:-v1", None, "invalid tag '-v1'"),
        ("r.io/cv/model:v1/x", None, "invalid repository path"),
        ("r.io/m:" + "a" * 129, None, "129 characters; the limit is 128"),
        ("r.io/cv//model:v1", None, "invalid repository path component ''"),
        ("r.io/cv/-model:v1", None, "invalid repository path component '-model'"),
        ("bad_host.io:x/m:v1", None, "invalid registry host"),
        ("r.io/cv/model", None, "has no tag or digest"),
        ("v1", None, "a bare tag needs the stack's repository"),
        (DIGEST, None, "bare digest but the stack has no image repository"),
        ("", None, "empty image reference"),
        ("r.io/m:v1 extra", None, "whitespace"),
        (f"r.io/m@{DIGEST}@{DIGEST}", None, "more than one '@'"),
        ("r.io/" + "a" * 300 + ":v1", None, "the limit is 255"),
        ("localhost:99999/cv/model:v1", None, "port 99999 is out of range (1-65535)"),
        ("localhost:0/cv/model:v1", None, "port 0 is out of range"),
        ("[::1]:65536/cv/model:v1", None, "port 65536 is out of range"),
        ("r.io:" + "9" * 40 + "/m:v1", None, "out of range"),
        ("[::1:5000/cv/model:v1", None, "invalid registry host '[::1:5000'"),
    ],
)
def test_rejects_bad_references_with_one_clear_line(
    text: str, default: str | None, message: str
) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        parse_ref(text, default_repository=default)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_reference_errors_are_config_errors_exit_1() -> None:
    assert issubclass(InvalidReferenceError, ConfigError)
    assert InvalidReferenceError("x").exit_code == 1


def test_grammar_errors_name_the_expected_form() -> None:
    with pytest.raises(InvalidReferenceError, match=r"expected REPO:TAG, REPO@sha256:<64 hex>"):
        parse_ref("r.io/cv/model")


def test_parse_digest_accepts_sha256_only() -> None:
    # One rule for the pipeline, the program and the policy pack: what the pipeline
    # accepts, the program deploys (it never did take sha384 or sha512).
    assert parse_digest(DIGEST) == DIGEST
    for other in ("sha512:" + HEX * 2, "sha384:" + HEX + HEX[:32]):
        with pytest.raises(InvalidReferenceError, match="only sha256 digests are accepted"):
            parse_digest(other)


def test_the_predicates_refuse_a_trailing_line_break() -> None:
    # `$` matches before a final newline; the grammar's anchors must not.
    from pipeline.images.refs import is_digest, is_path_component, is_registry_host, is_tag

    assert is_tag("v1")
    assert not is_tag("v1\n")
    assert is_digest(DIGEST)
    assert not is_digest(DIGEST + "\n")
    assert is_path_component("model")
    assert not is_path_component("model\n")
    assert is_registry_host("r.io:5000")
    assert not is_registry_host("r.io:5000\n")
    assert not is_registry_host("r.io:65536")
    with pytest.raises(InvalidReferenceError):
        parse_digest(DIGEST + "\n")
