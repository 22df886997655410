"""Entry point of the policy pack: ``pulumi preview --policy-pack policy``.

The only place ``PolicyPack`` is constructed: doing so starts the analyzer's gRPC server and
never returns. The rules live in ``policy.rules`` so tests import them without this.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pulumi_policy import PolicyPack

# Pulumi runs this file with the pack directory first on sys.path; the rules import as the
# `policy` package from the project root.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from policy.rules import POLICIES  # noqa: E402

PolicyPack(name="cv-platform", policies=list(POLICIES))
