"""Where records come from besides plain flags: JUnit reports, Jenkins builds,
``pulumi stack history``, and per-image evidence (Trivy/Grype/SARIF scan reports,
model cards, MLflow MLmodel signatures). Readers return records and notes; they
never print."""
