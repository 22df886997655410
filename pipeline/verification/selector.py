"""``--selector``: Prometheus label matchers, ``{label="value",...}``, read and written.

The grammar is PromQL's for a selector without a metric name: matchers
``name op "value"`` with ``op`` one of ``=``, ``!=``, ``=~``, ``!~``, separated by
commas, inside optional braces; values are double-quoted with backslash escapes.
Anything else is refused with one line before Prometheus is asked, so a typo
never turns into a query that silently matches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.errors import UsageError

_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*")
_OPERATORS = ("=", "!=", "=~", "!~")


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The double-quoted string at ``text[start]`` and the index after it."""
    if start >= len(text) or text[start] != '"':
        raise ValueError("a value must be a double-quoted string")
    out: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append({"n": "\n", "t": "\t"}.get(text[i + 1], text[i + 1]))
            i += 2
        elif char == '"':
            return "".join(out), i + 1
        else:
            out.append(char)
            i += 1
    raise ValueError("a quoted value is not closed")


def parse_selector(text: str) -> tuple[Matcher, ...]:
    """The matchers of ``text``; UsageError naming the problem when it is not a selector."""
    body = text.strip()
    if body.startswith("{") != body.endswith("}"):
        raise UsageError(f"--selector {text!r}: unbalanced braces")
    if body.startswith("{"):
        body = body[1:-1]
    matchers: list[Matcher] = []
    i = 0
    try:
        while body[i:].strip():
            match = _NAME.match(body, i)
            if match is None:
                raise ValueError(f'expected label="value" at {body[i:].strip()[:20]!r}')
            value, i = _quoted(body, match.end())
            matchers.append(Matcher(match.group(1), match.group(2), value))
            rest = body[i:].lstrip()
            if rest.startswith(","):
                i = len(body) - len(rest) + 1
            elif rest:
                raise ValueError(f"expected ',' at {rest[:20]!r}")
    except ValueError as exc:
        raise UsageError(f"--selector {text!r}: {exc}") from None
    if not matchers:
        raise UsageError(f'--selector {text!r}: no label matcher (e.g. {{namespace="cv-prod"}})')
    for matcher in matchers:
        if matcher.op in ("=~", "!~"):
            try:
                re.compile(matcher.value)
            except re.error as exc:
                raise UsageError(f"--selector {text!r}: {matcher.name}: bad regex: {exc}") from None
    if not any(m.op in ("=", "=~") and m.value for m in matchers):
        # Prometheus refuses selectors that match everything; say why here.
        raise UsageError(f"--selector {text!r}: needs at least one matcher that is not empty")
    return tuple(matchers)


def render_selector(matchers: Iterable[Matcher]) -> str:
    return "{" + ",".join(str(m) for m in matchers) + "}"


__all__ = ["Matcher", "parse_selector", "render_selector"]
