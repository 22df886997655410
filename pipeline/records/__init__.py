"""What was built, deployed, promoted and rolled back.

``model`` holds the records (frozen dataclasses), ``stores`` the append-only
stores (SQLite, S3), ``sources`` the readers that turn third-party reports and
histories into records.
"""
