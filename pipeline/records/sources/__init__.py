"""Where records come from besides plain flags: JUnit reports, Jenkins builds and
``pulumi stack history``. Readers return records and notes; they never print."""
