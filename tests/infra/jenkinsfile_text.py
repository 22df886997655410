"""Pieces of the Jenkinsfile's text, for tests that check or run them."""

from __future__ import annotations

import re

_ESCAPES = {"\n": "", "\\": "\\", "'": "'", "n": "\n", "t": "\t", "$": "$"}


def groovy_unescape(text: str) -> str:
    """What a Groovy '...' or '''...''' literal holds: \\<newline> joins lines, \\x escapes."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), text, flags=re.S)


def groovy_function(jenkinsfile: str, signature: str) -> str:
    """A top-level helper's text, from its signature to its closing brace."""
    start = jenkinsfile.index(signature)
    return jenkinsfile[start : jenkinsfile.index("\n}\n", start)]


def stage_text(jenkinsfile: str, name: str, next_name: str) -> str:
    """The text of stage ``name``, up to stage ``next_name``."""
    start = jenkinsfile.index(f"stage('{name}')")
    return jenkinsfile[start : jenkinsfile.index(f"stage('{next_name}')", start)]


def shell_script(text: str) -> str:
    """The one ``sh '''...'''`` script in ``text``, as the shell receives it."""
    (script,) = re.findall(r"sh(?:\(returnStatus: true, script:)? '''(.*?)'''", text, re.S)
    return groovy_unescape(script)
