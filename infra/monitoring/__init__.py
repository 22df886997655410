"""Monitoring as code for the model environment: what the Prometheus Operator and
Grafana read, built as plain data (pure; ``ModelEnvironment`` declares the objects).

``monitor`` (the ServiceMonitor spec and its relabelings; the same scrape as a
static Prometheus config, for a Prometheus without the operator), ``rules`` (the
recording rules and alerts of the PrometheusRule) and ``dashboard`` (the Grafana
dashboard). Label conventions are ``pipeline.verification.labels``.
"""
