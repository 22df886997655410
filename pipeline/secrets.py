"""How secrets are shown, and what stands in for them: one constant each.

``SECRET_PLACEHOLDER`` is what every output prints in place of a secret's value:
the render's manifests and stack outputs, the preview comment, Pulumi's own preview
JSON, and the value the policy pack recognises as an already-redacted secret.

``SECRET_STAND_IN`` is different on purpose: it is the value a program run under
Pulumi's mocks receives for a secret. It never appears in any output; finding it
(or its base64) in a plain input means a secret leaked, and the render refuses.
"""

from __future__ import annotations

SECRET_PLACEHOLDER = "[secret]"  # noqa: S105 - the redaction marker itself
SECRET_STAND_IN = "placeholder-secret-value"  # noqa: S105 - not a secret: stands in for one

__all__ = ["SECRET_PLACEHOLDER", "SECRET_STAND_IN"]
