"""The source PostgreSQL: prerequisite checks, the table's catalog description, and verify."""
