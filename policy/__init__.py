"""cv-platform policy pack: the rules (``policy.rules``), and an adapter that runs them offline.

``policy/__main__.py`` is the pack's entry point for ``pulumi preview --policy-pack policy``;
it is the only place that constructs ``PolicyPack`` (which starts a gRPC server and never
returns), so importing this package or ``policy.rules`` is always safe.
"""
