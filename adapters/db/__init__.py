"""PostgreSQL (and, for the embedded demo, SQLite) persistence."""
