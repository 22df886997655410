"""Reference model server for cv-platform: a digit classifier behind a small HTTP API."""
