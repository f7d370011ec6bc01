"""Read models: SQL tables that are projections of the log (SQLite or PostgreSQL)."""
