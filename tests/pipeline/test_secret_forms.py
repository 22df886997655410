"""The preview comment scrubs known secrets in every form they take: escaped, encoded, line
by line, and leaves ordinary text alone."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pipeline.preview.comment import build_comment
from pipeline.preview.pulumi_json import parse_preview
from pipeline.preview.redact import redact_text
from pipeline.preview.report import report_from_preview
from pipeline.secrets import SECRET_PLACEHOLDER

KUBECONFIG = (
    "apiVersion: v1\n"
    "clusters:\n"
    "- cluster:\n"
    "    certificate-authority-data: Q2VydGlmaWNhdGVBdXRob3JpdHlEYXRhMTIzNDU2Nzg5MA==\n"
    "    server: https://10.20.30.40:6443\n"
    "  name: prod\n"
    "users:\n"
    "- name: deployer\n"
    "  user:\n"
    "    token: tok-9f8e7d6c5b4a39281706f5e4d3c2b1a0\n"
)
# Quotes, a backslash, non-ASCII (two- and four-byte), Markdown and URL specials.
AWKWARD = "pa\"ss\\wo'rd-é✓😀|<&>+ /%@"
SECRETS = {
    "quotes and backslash": "q\"u'o\\te-Secret1",
    "non-ascii": "pässwörd-✓-日本-😀",
    "markdown and url specials": AWKWARD,
    "multi-line kubeconfig": KUBECONFIG,
}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _yaml(text: str) -> str:
    return yaml.safe_dump({"data": {"kubeconfig": text}}, width=1000)


FORMS: dict[str, Callable[[str], str]] = {
    "as is": lambda s: s,
    "json": lambda s: json.dumps({"value": s}),
    "json ascii-escaped": lambda s: json.dumps({"value": s}, ensure_ascii=True),
    "json inside json": lambda s: json.dumps(json.dumps({"value": s})),
    "yaml": _yaml,
    "yaml unicode": lambda s: yaml.safe_dump({"k": s}, width=1000, allow_unicode=True),
    "yaml double-quoted": lambda s: yaml.safe_dump({"k": s}, default_style='"'),
    "url-encoded": lambda s: "https://h.example/?p=" + quote(s, safe=""),
    "form-encoded": lambda s: "p=" + quote_plus(s),
    "base64": lambda s: "data:\n  key: " + _b64(s),
    "urlsafe base64": lambda s: base64.urlsafe_b64encode(s.encode()).decode(),
    "base64 of user:secret": lambda s: json.dumps({"auths": {"r": {"auth": _b64("u:" + s)}}}),
    "basic auth header": lambda s: "Authorization: Basic " + _b64("deployer:" + s),
    "base64 at an odd offset": lambda s: _b64("ab" + s + "c"),
}


def _leaks(out: str, secret: str) -> list[str]:
    """The parts of ``secret`` (whole, lines of 16+ characters) still readable in ``out``."""
    parts = [secret] + [line.strip() for line in secret.splitlines() if len(line.strip()) >= 16]
    return [p for p in parts if p in out]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("secret", SECRETS.values(), ids=list(SECRETS))
def test_each_form_of_a_known_secret_is_scrubbed(secret: str, form: str) -> None:
    shown = FORMS[form](secret)
    out = redact_text(f"before\n{shown}\nafter", [secret])
    assert shown not in out
    assert SECRET_PLACEHOLDER in out
    assert out.startswith("before\n")
    assert out.endswith("\nafter")


@pytest.mark.parametrize("secret", SECRETS.values(), ids=list(SECRETS))
def test_base64_of_a_secret_leaves_no_fragment_beside_the_placeholder(secret: str) -> None:
    out = redact_text('"auth": "' + _b64("user:" + secret) + '"', [secret])
    assert out == f'"auth": "{SECRET_PLACEHOLDER}"'


def test_each_long_line_of_a_multi_line_secret_is_scrubbed_on_its_own() -> None:
    token_line = "    token: tok-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
    out = redact_text(f"log: {token_line.strip()}\nnext", [KUBECONFIG])
    assert "tok-9f8e7d6c5b4a39281706f5e4d3c2b1a0" not in out
    assert out.endswith("\nnext")


def test_a_long_word_of_a_multi_line_secret_is_scrubbed_inside_other_text() -> None:
    out = redact_text("ca=Q2VydGlmaWNhdGVBdXRob3JpdHlEYXRhMTIzNDU2Nzg5MA== ok", [KUBECONFIG])
    assert out == f"ca={SECRET_PLACEHOLDER} ok"


def test_a_multi_line_secret_single_quoted_and_folded_by_yaml_is_scrubbed() -> None:
    secret = "line one of it's key\nline two of the key"
    shown = yaml.safe_dump({"data": {"key": secret}}, width=1000)
    assert "\n\n" in shown  # folded: each break a blank line
    assert redact_text(shown, [secret]) == f"data:\n  key: '{SECRET_PLACEHOLDER}'\n"


@pytest.mark.parametrize(
    "secret",
    ["a long secret with spaces that YAML wraps " * 3, "00" + "\x1f" * 11 + "\U00010000" * 3 + "0"],
    ids=["at spaces", "between escapes"],
)
def test_a_long_secret_wrapped_by_yaml_double_quoting_is_scrubbed(secret: str) -> None:
    shown = yaml.safe_dump({"k": secret}, default_style='"', width=40)
    assert "\\\n" in shown or "\n  " in shown  # wrapped over lines
    assert redact_text(shown, [secret]) == f'"k": "{SECRET_PLACEHOLDER}"\n'


def test_a_kubeconfig_in_a_configmap_diff_never_reaches_the_comment() -> None:
    urn = "urn:pulumi:prod::cv-platform::kubernetes:core/v1:ConfigMap::access"
    old = {"data": {"kubeconfig": "old"}}
    new = {"data": {"kubeconfig": KUBECONFIG}}
    step = {
        "op": "update",
        "urn": urn,
        "oldState": {"urn": urn, "type": "kubernetes:core/v1:ConfigMap", "inputs": old},
        "newState": {"urn": urn, "type": "kubernetes:core/v1:ConfigMap", "inputs": new},
        "diffReasons": ["data"],
        "detailedDiff": {"data.kubeconfig": {"kind": "update", "inputDiff": True}},
    }
    created = dict(step, op="create", urn=urn + "-copy", oldState=None, detailedDiff={})
    preview = {"steps": [step, created], "changeSummary": {"update": 1, "create": 1}}
    report = report_from_preview("prod", parse_preview(preview))
    unscrubbed = build_comment([report])
    assert "tok-9f8e7d6c5b4a39281706f5e4d3c2b1a0" in unscrubbed  # the test shows a real leak
    body = build_comment([report], secret_values=[KUBECONFIG])
    assert "tok-9f8e7d6c5b4a39281706f5e4d3c2b1a0" not in body
    assert "Q2VydGlmaWNhdGVBdXRob3JpdHlEYXRhMTIzNDU2Nzg5MA" not in body
    assert "10.20.30.40:6443" not in body
    assert "access" in body  # the resource is still named


def test_unknown_basic_credentials_are_scrubbed_and_prose_about_them_is_not() -> None:
    text = (
        "Basic authentication is on.\nAuthorization: Basic " + _b64("someone:anything") + "\n"
        "Bearer tokens rotate; Authorization: Bearer ghp_1234567890abcdefGHIJ"
    )
    assert redact_text(text, []) == (
        "Basic authentication is on.\nAuthorization: Basic [secret]\n"
        "Bearer tokens rotate; Authorization: Bearer [secret]"
    )


ORDINARY = """\
## Infrastructure preview
| `prod` | 0 | 2 | 0 | 0 | 14 | ok |
- image: registry.example.com:5000/cv/model@sha256:\
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
+ replicas: 3
apiVersion: v1
kind: ConfigMap
users:
- name: deployer
data: {"threshold": "0.75", "labels": "aGVsbG8gd29ybGQsIG5vdGhpbmcgaGVyZQ=="}
Basic authentication stays configured; a Bearer token is read from the vault.
"""


def test_ordinary_text_is_not_scrubbed_for_a_kubeconfig_that_shares_its_short_lines() -> None:
    assert redact_text(ORDINARY, [*SECRETS.values()]) == ORDINARY


secrets_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    min_size=6,
    max_size=40,
).filter(lambda s: s.strip() != "" and s not in SECRET_PLACEHOLDER)


@given(secret=secrets_text, form=st.sampled_from(sorted(FORMS)))
def test_any_secret_in_any_form_is_not_readable_after_scrubbing(secret: str, form: str) -> None:
    shown = FORMS[form](secret)
    # The placeholder as a NUL (absent from the secret) so it cannot complete a match.
    out = redact_text(f"x {shown} y", [secret]).replace(SECRET_PLACEHOLDER, "\x00")
    assert shown not in out
    assert secret not in out


@given(secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=12))
def test_ordinary_text_is_left_alone_whatever_the_secret(secret: str) -> None:
    # 12+ characters of an alphabet the ordinary text never strings together that long
    # without a break, so no form of the secret occurs in it.
    if any(secret in line for line in ORDINARY.split()):
        return
    assert redact_text(ORDINARY, [secret]) == ORDINARY
