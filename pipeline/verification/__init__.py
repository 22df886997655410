"""Post-deploy verification: a deployed digest judged by its own metrics in Prometheus.

``labels`` (the labels that tie pods to a deployment; the program's monitor sets
them), ``settings`` (``cv-platform:verification``), ``selector`` (the label-matcher
grammar of ``--selector``), ``queries`` (the PromQL), ``prometheus`` (the HTTP API
client), ``decide`` (pass, fail or inconclusive: pure). ``pipeline verify`` is the
command; the ``verified`` promotion gate reads the verifications it records.
"""
