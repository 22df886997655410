"""The forms a known secret value takes in a pull-request comment, to scrub every one.

A secret reaches a comment not only as itself. The details show values as JSON
(``"a\\"b"``, ``\\u00e9``, Go's ``\\u003c``), manifests as YAML (double-quoted with
YAML's escapes, or single-quoted with a multi-line value folded into separate lines),
diagnostics quote URLs (``%40``, ``+``), Kubernetes Secrets and docker configs carry
base64 (also of ``user:password`` and in ``Authorization: Basic ...``), and the
Markdown itself escapes ``|`` in tables and ``<&>`` in titles.

``Scrubber`` replaces, in this order: ``Basic``/``Bearer`` credentials (whoever's they
are); whole base64 runs that decode to text holding a known secret, a line or a word of
one; a multi-line one folded the way YAML single-quotes it, a long one wrapped the way
YAML double-quotes it; then every literal form
``forms_of`` lists. A multi-line value also gives each of its lines that say more than
structure (at least ``MIN_LINE`` characters, with a digit or a symbol: a kubeconfig's
``- name: deployer`` is no secret) and its long words that mix letters and digits. Pure.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

import yaml

from pipeline.secrets import SECRET_PLACEHOLDER

MIN_LINE = 16  # a line of a multi-line secret shorter than this is scrubbed only with it
MIN_WORD = 16  # a word (letters and digits mixed) of a multi-line secret
MIN_ENCODED = 8  # a base64 fragment shorter than this is too likely to occur by chance
MIN_FORM = 4  # no form shorter than this is replaced (pipeline.preview.redact's minimum)

_B64_RUN = re.compile(rf"[A-Za-z0-9+/_-]{{{MIN_ENCODED},}}={{0,2}}")  # "u:" + the shortest secret
# RFC 7617 Basic: base64 of user:password; RFC 6750 Bearer: a token68.
_AUTH = re.compile(r"\b(Basic|Bearer)([ \t]+)([A-Za-z0-9+/._~-]+=*)", re.IGNORECASE)
_MIN_BEARER = 16
_STRUCTURE = frozenset(" \t-:_'\"")
_WORD_BREAK = re.compile(r"[\s\"'`,;:]+|=(?=[^=\s])")  # key=value, not base64 padding
_HEX_ESCAPE = re.compile(r"%[0-9A-F]{2}")
_GO_JSON = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _escaped(value: str) -> set[str]:
    """JSON and YAML escapes of ``value``, without the quotes around them."""
    found = {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    # Go's encoding/json (Pulumi's) also escapes HTML characters and line separators.
    for form in list(found):
        for char, escape in _GO_JSON.items():
            form = form.replace(char, escape)
        found.add(form)
    found |= {json.dumps(form)[1:-1] for form in list(found)}  # JSON inside a JSON string
    found |= _yaml_double_quoted(value)
    found.add(value.replace("'", "''"))  # YAML single-quoted
    return found


def _yaml_double_quoted(value: str) -> set[str]:
    """``value`` as YAML writes it double-quoted on one line, with and without
    escaping non-ASCII characters, without the quotes."""
    found = set()
    for unicode in (False, True):
        dumped = yaml.safe_dump(value, default_style='"', width=2**31, allow_unicode=unicode)
        found.add(dumped.rstrip("\n").removesuffix("...").rstrip("\n")[1:-1])
    return found


def _mixed(word: str) -> bool:
    """Whether ``word`` mixes letters and digits, as keys, tokens and hashes do."""
    return any(c.isdigit() for c in word) and any(c.isalpha() for c in word)


def _url_encoded(value: str) -> set[str]:
    found = {quote(value, safe=""), quote(value), quote_plus(value)}
    return found | {_HEX_ESCAPE.sub(lambda m: m.group().lower(), form) for form in found}


def _markdown(value: str) -> set[str]:
    """How the comment's Markdown writes ``value``: table cells, HTML titles."""
    cell = value.replace("\n", " ").replace("|", "\\|")
    html = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return {cell, html}


def _base64(value: str) -> set[str]:
    """Base64 of ``value`` standalone and at each of the 3 byte alignments inside more."""
    raw = value.encode("utf-8")
    found: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode("ascii")
        found |= {whole, whole.rstrip("=")}
        for skip in range(3):
            # The groups made only of this value's bytes, when it starts `skip` bytes
            # before a 3-byte boundary of the encoded whole.
            usable = (len(raw) - skip) // 3 * 3
            if usable > 0:
                found.add(encode(raw[skip : skip + usable]).decode("ascii"))
    return {form for form in found if len(form) >= MIN_ENCODED}


def _pieces(value: str) -> set[str]:
    """The lines and long mixed words of a multi-line value."""
    if "\n" not in value and "\r" not in value:
        return set()
    pieces = {line.strip() for line in value.splitlines() if _revealing_line(line.strip())}
    return pieces | revealing_words([value])


def _revealing_line(line: str) -> bool:
    # Long enough, and more than YAML structure and words: a kubeconfig's
    # "- name: deployer" says nothing, its server, key and token lines do.
    return len(line) >= MIN_LINE and any(not (c.isalpha() or c in _STRUCTURE) for c in line)


def forms_of(value: str) -> set[str]:
    """Every literal form of ``value`` to scrub (see the module doc)."""
    found = {value} | _escaped(value) | _url_encoded(value) | _markdown(value) | _base64(value)
    for piece in _pieces(value):
        found |= {piece} | _escaped(piece) | _url_encoded(piece) | _base64(piece)
    return {form for form in found if len(form) >= MIN_FORM}


def folded(value: str) -> re.Pattern[str] | None:
    """A multi-line ``value`` as YAML writes it single-quoted: each ``\\n`` a blank line,
    each next line indented (``'a\\n\\n    b'``); a Unicode break (NEL, LS, PS) kept
    as itself with the next line indented; quotes doubled."""
    parts = re.split(r"([\n\x85\u2028\u2029])", value.replace("'", "''"))
    if len(parts) < 3:
        return None
    pattern = "".join(
        re.escape(part)
        if i % 2 == 0
        else (r"\n(?:[ ]*\n)+[ ]*" if part == "\n" else re.escape(part) + "[ ]*")
        for i, part in enumerate(parts)
    )
    return re.compile(pattern)


def yaml_wrapped(value: str) -> re.Pattern[str] | None:
    """``value`` double-quoted by YAML past its line width: the emitter may break the
    line between any two characters (an escaped break, ``\\`` at the end of a line)
    or at a space (a plain break, or an escaped one and the space as ``\\ ``), and
    indents what follows."""
    # What wraps is the escaped text (``\u0100`` is six characters), not the value.
    escaped = {form for form in _yaml_double_quoted(value) if len(form) >= MIN_LINE}
    if not escaped:
        return None
    gap = r"(?:\\\n[ ]*)?"
    patterns = [
        gap.join(r"(?: |\\ |\n[ ]*)" if c == " " else re.escape(c) for c in form)
        for form in escaped
    ]
    return re.compile("|".join(f"(?:{p})" for p in sorted(patterns, key=len, reverse=True)))


def revealing_words(values: Iterable[str]) -> frozenset[str]:
    """Long words of the values that mix letters and digits (keys, tokens, hashes)."""
    words: set[str] = set()
    for value in values:
        for word in _WORD_BREAK.split(value):
            if len(word) >= MIN_WORD and _mixed(word):
                words.add(word)
    return frozenset(words)


def _decodings(run: str) -> list[str]:
    """What ``run`` decodes to as standard and as URL-safe base64 (strictly), as text."""
    padded = run.rstrip("=")
    padded += "=" * (-len(padded) % 4)
    found = []
    for alphabet in (padded, padded.replace("-", "+").replace("_", "/")):
        try:
            raw = base64.b64decode(alphabet, validate=True)
        except (binascii.Error, ValueError):
            continue
        found.append(raw.decode("utf-8", "replace"))
    return found


def needles(values: Iterable[str]) -> frozenset[str]:
    """What a decoded base64 run must not contain: the values, their lines and words."""
    found: set[str] = set()
    for value in values:
        found.add(value)
        found |= _pieces(value)
    return frozenset(found)


def _credential(match: re.Match[str]) -> str:
    scheme, space, token = match.groups()
    if scheme.lower() == "basic":
        # user:password, so that "Basic authentication" stays prose.
        hidden = any(":" in text for text in _decodings(token))
    else:
        hidden = len(token) >= _MIN_BEARER and _mixed(token)
    return f"{scheme}{space}{SECRET_PLACEHOLDER}" if hidden else match.group()


def scrub_credentials(text: str, hidden: frozenset[str] = frozenset()) -> str:
    """``Basic``/``Bearer`` credentials, and whole base64 runs that decode to text holding
    one of ``hidden`` (a secret, a line or word of one), as ``[secret]``."""
    text = _AUTH.sub(_credential, text)
    if not hidden:
        return text

    def hide(match: re.Match[str]) -> str:
        for decoded in _decodings(match.group()):
            if any(needle in decoded for needle in hidden):
                return SECRET_PLACEHOLDER
        return match.group()

    return _B64_RUN.sub(hide, text)


class Scrubber:
    """Replaces known secret values in text, in every form a comment can show them in.

    Built once per comment: the forms of each value are computed here, and every part
    of the comment is passed through the call.
    """

    def __init__(self, secret_values: Iterable[str], min_length: int = MIN_FORM) -> None:
        values = {v for v in secret_values if len(v) >= min_length}
        forms: set[str] = set()
        for value in values:
            forms |= forms_of(value)
        self._forms = sorted(forms, key=len, reverse=True)
        longest_first = sorted(values, key=len, reverse=True)
        self._folded = [p for p in map(folded, longest_first) if p]
        self._folded += [p for p in map(yaml_wrapped, longest_first) if p]
        self._hidden = needles(values)

    def __call__(self, text: str) -> str:
        # Whole encoded runs first, so no fragment of one is left beside a placeholder.
        text = scrub_credentials(text, self._hidden)
        for pattern in self._folded:
            text = pattern.sub(SECRET_PLACEHOLDER, text)
        for form in self._forms:
            if form in text:
                text = text.replace(form, SECRET_PLACEHOLDER)
        return text


__all__ = [
    "MIN_LINE",
    "MIN_WORD",
    "Scrubber",
    "folded",
    "forms_of",
    "needles",
    "revealing_words",
    "scrub_credentials",
    "yaml_wrapped",
]
