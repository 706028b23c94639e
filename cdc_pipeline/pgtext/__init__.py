"""PostgreSQL's text forms, per type family, rebuilt from what Debezium delivers.

Each module renders one family exactly as PostgreSQL's output function prints it under ``DateStyle=ISO``
and ``TimeZone=UTC`` (``floats``, ``datetimes``, ``numeric``, ``binary``, ...); ``types`` maps a Debezium
field to the right one and says which catalog columns cannot be rendered exactly.
"""
