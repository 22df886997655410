"""Promotion gates and rollback planning: pure functions over records and facts
the commands gather."""
