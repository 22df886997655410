"""Delivery metrics: M_CI, M_CD and the DORA keys computed from records (pure),
their report formats, and the exports (CloudWatch, a weekly chart)."""
