"""The captured table as PostgreSQL's catalog describes it, and what changed between two descriptions.

register_connector reads it on every run. It serves three purposes:
- the primary key and its types, which order destiny.csv like ``ORDER BY``;
- every column's type, checked before the first event against what can be rendered exactly;
- schema-change detection: some changes send no change event at all (``ADD COLUMN ... DEFAULT``
  fills existing rows silently, ``ALTER COLUMN ... TYPE`` rewrites them), so the catalog is compared
  with the description the live state was built from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

# Server settings that change the text PostgreSQL prints for some types (interval, money).
TEXT_SETTINGS = ("IntervalStyle", "lc_monetary", "server_version_num")


@dataclass(frozen=True)
class CatalogColumn:
    """One column of the table, from pg_attribute and pg_type."""

    name: str
    attnum: int
    format_type: str            # format_type(atttypid, atttypmod): 'numeric(12,2)', 'integer[]', 'character(5)'
    type_name: str              # pg_type.typname: 'numeric', '_int4', 'my_enum'
    type_kind: str              # pg_type.typtype: b base, c composite, d domain, e enum, r range, m multirange, p pseudo
    type_category: str          # pg_type.typcategory: A array, B boolean, D date/time, N numeric, S string, U user, ...
    element_type_name: str | None = None   # arrays: the element's typname ('int4')
    element_type_kind: str | None = None   # arrays: the element's typtype
    base_type_name: str | None = None      # domains: the base type's typname
    not_null: bool = False
    default: str | None = None             # pg_get_expr of the default, if any
    collation: str | None = None
    # Key columns only, for their ORDER BY: a domain's base type (format_type, through nested domains), and an
    # enum's labels in their declared order (an enum column, or a domain over one).
    order_type: str | None = None
    enum_labels: tuple[str, ...] | None = None
    # Key columns under a deterministic ICU collation (the column's, or the database's default): the ICU locale
    # their ORDER BY follows ('en-US', 'und-u-kn-true'), the collation to name in SQL, and its version
    # (pg_collation_actual_version: a new ICU may order differently).
    icu_locale: str | None = None
    icu_collation: str | None = None
    collation_version: str | None = None


@dataclass(frozen=True)
class TableDescription:
    """What destiny.csv is built from: the table's columns, key and the settings its text depends on."""

    schema: str
    table: str
    columns: tuple[CatalogColumn, ...]
    key_columns: tuple[str, ...]
    settings: dict[str, str] = field(default_factory=dict)
    # The relation's OID: a table dropped and created again under the same name gets another one (None: described
    # by a version that did not record it).
    oid: int | None = None

    @property
    def qualified_table(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def key_types(self) -> dict[str, str]:
        """Primary-key column -> format_type, in key order."""
        by_name = {c.name: c.format_type for c in self.columns}
        return {name: by_name[name] for name in self.key_columns}

    def column(self, name: str) -> CatalogColumn:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema, "table": self.table, "key_columns": list(self.key_columns),
            "settings": dict(self.settings), "columns": [asdict(c) for c in self.columns], "oid": self.oid,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TableDescription:
        return cls(
            schema=raw["schema"], table=raw["table"], key_columns=tuple(raw["key_columns"]),
            settings=dict(raw.get("settings") or {}),
            columns=tuple(_column_from_json(c) for c in raw["columns"]), oid=raw.get("oid"),
        )


def _column_from_json(raw: dict[str, Any]) -> CatalogColumn:
    labels = raw.get("enum_labels")
    return CatalogColumn(**{**raw, "enum_labels": tuple(labels) if labels is not None else None})


def schema_differences(old: TableDescription, new: TableDescription) -> list[str]:
    """What changed from ``old`` to ``new``, one readable line per change ([] when nothing did).

    Only what changes destiny.csv counts: column names, order, types, the key, and the settings that
    change the text of some types. A changed default alone changes no existing row and is not reported.
    """
    changes: list[str] = []
    if old.oid is not None and new.oid is not None and old.oid != new.oid:
        # Same name, maybe the same columns, but another table (a restore, a migration that swaps tables): the
        # publication lost it, so rows the swap deleted and changes since were never captured.
        changes.append(f"{new.qualified_table} was dropped and created again (relation OID {old.oid} is now "
                       f"{new.oid}): changes made meanwhile were never captured")
    old_by_num = {c.attnum: c for c in old.columns}
    new_by_num = {c.attnum: c for c in new.columns}
    for num, column in old_by_num.items():
        now = new_by_num.get(num)
        if now is None:
            changes.append(f"column {column.name} ({column.format_type}) dropped")
            continue
        if now.name != column.name:
            changes.append(f"column {column.name} renamed to {now.name}")
        if now.format_type != column.format_type:
            changes.append(f"column {now.name} type changed from {column.format_type} to {now.format_type}")
    for num, column in new_by_num.items():
        if num not in old_by_num:
            default = f" DEFAULT {column.default}" if column.default else ""
            changes.append(f"column {column.name} {column.format_type}{default} added")
    if old.key_columns != new.key_columns:
        changes.append(f"primary key changed from ({', '.join(old.key_columns)}) to ({', '.join(new.key_columns)})")
    else:
        for name in new.key_columns:
            before, now = old.column(name), new.column(name)
            if _order_of(before) != _order_of(now) and before.format_type == now.format_type:
                # destiny.csv is ordered by the key: its encoding in the state follows the type's order
                changes.append(f"key column {name}'s order changed (its {_order_words(before, now)}): rows are ordered "
                               "by it")
    for name in TEXT_SETTINGS:
        if name == "server_version_num":
            continue  # an upgrade alone changes no stored text; the type checks run again anyway
        if old.settings.get(name) != new.settings.get(name):
            changes.append(f"setting {name} changed from {old.settings.get(name)!r} to {new.settings.get(name)!r}")
    return changes


def _order_of(column: CatalogColumn) -> tuple:
    return column.order_type, column.enum_labels, column.icu_locale, column.collation_version


def _order_words(before: CatalogColumn, now: CatalogColumn) -> str:
    if (before.icu_locale, before.collation_version) != (now.icu_locale, now.collation_version):
        return (f"ICU collation was {before.icu_locale or 'none'} version {before.collation_version or '-'}, now "
                f"{now.icu_locale or 'none'} version {now.collation_version or '-'}")
    if before.enum_labels != now.enum_labels:
        return f"enum labels were {list(before.enum_labels or ())}, now {list(now.enum_labels or ())}"
    return f"domain's base type was {before.order_type}, now {now.order_type}"


_COLUMNS_SQL = """
SELECT a.attname, a.attnum, format_type(a.atttypid, a.atttypmod), t.typname, t.typtype, t.typcategory,
       et.typname, et.typtype, bt.typname, a.attnotnull, pg_get_expr(d.adbin, d.adrelid),
       CASE WHEN a.attcollation = 0 THEN NULL
            WHEN co.collname = 'default' THEN (SELECT datcollate FROM pg_database WHERE datname = current_database())
            ELSE co.collname END
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
LEFT JOIN pg_type bt ON bt.oid = t.typbasetype AND t.typtype = 'd'
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_KEY_SQL = """
SELECT a.attname
FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
WHERE i.indrelid = %s::regclass AND i.indisprimary
ORDER BY array_position(i.indkey::int2[], a.attnum)
"""


# A key column's type through its domains down to the type its values order by, and that type's enum labels.
_KEY_ORDER_SQL = """
WITH RECURSIVE chain(oid, typmod, depth) AS (
    SELECT a.atttypid, a.atttypmod, 0 FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attname = %s
  UNION ALL
    SELECT t.typbasetype, t.typtypmod, c.depth + 1 FROM chain c JOIN pg_type t ON t.oid = c.oid WHERE t.typtype = 'd'
)
SELECT format_type(c.oid, c.typmod), t.typtype,
       (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = c.oid)
FROM chain c JOIN pg_type t ON t.oid = c.oid
ORDER BY c.depth DESC LIMIT 1
"""


def _with_key_order(conn, regclass: str, column: CatalogColumn) -> CatalogColumn:
    base, kind, labels = conn.execute(_KEY_ORDER_SQL, (regclass, column.name)).fetchone()
    return replace(column, order_type=base if column.type_kind == "d" else None,
                   enum_labels=tuple(labels) if kind == "e" and labels is not None else None)


# A key column's collation when ICU provides it, deterministic (a nondeterministic one makes distinct keys equal):
# the column's own, or the database's default. to_jsonb reads the locale column of any version (colliculocale
# and daticulocale in PostgreSQL 15 and 16, colllocale and datlocale from 17).
_KEY_COLLATION_SQL = """
SELECT CASE WHEN co.collprovider = 'd'
            THEN coalesce(to_jsonb(d) ->> 'daticulocale', to_jsonb(d) ->> 'datlocale')
            ELSE coalesce(to_jsonb(co) ->> 'colliculocale', to_jsonb(co) ->> 'colllocale') END,
       format('%%I.%%I', n.nspname, co.collname),
       CASE WHEN co.collprovider = 'd' THEN pg_database_collation_actual_version(d.oid)
            ELSE pg_collation_actual_version(co.oid) END
FROM pg_attribute a
JOIN pg_collation co ON co.oid = a.attcollation
JOIN pg_namespace n ON n.oid = co.collnamespace
JOIN pg_database d ON d.datname = current_database()
WHERE a.attrelid = %s::regclass AND a.attname = %s AND co.collisdeterministic
  AND (CASE WHEN co.collprovider = 'd' THEN d.datlocprovider ELSE co.collprovider END) = 'i'
"""


def _with_key_collation(conn, regclass: str, column: CatalogColumn) -> CatalogColumn:
    row = conn.execute(_KEY_COLLATION_SQL, (regclass, column.name)).fetchone()
    if row is None or not row[0]:
        return column
    return replace(column, icu_locale=row[0], icu_collation=row[1], collation_version=row[2])


def read_description(conn, schema: str, table: str) -> TableDescription:
    """Describe ``schema.table`` through an open psycopg connection (the table must exist)."""
    regclass = f'"{schema}"."{table}"'
    columns = tuple(
        CatalogColumn(
            name=row[0], attnum=int(row[1]), format_type=row[2], type_name=row[3], type_kind=row[4],
            type_category=row[5], element_type_name=row[6], element_type_kind=row[7], base_type_name=row[8],
            not_null=bool(row[9]), default=row[10], collation=row[11],
        )
        for row in conn.execute(_COLUMNS_SQL, (regclass,)).fetchall()
    )
    key = tuple(row[0] for row in conn.execute(_KEY_SQL, (regclass,)).fetchall())
    columns = tuple(_with_key_order(conn, regclass, c) if c.name in key and c.type_kind in ("d", "e") else c
                    for c in columns)
    columns = tuple(_with_key_collation(conn, regclass, c) if c.name in key and c.collation else c for c in columns)
    settings = {
        name: conn.execute("SELECT current_setting(%s)", (name,)).fetchone()[0] for name in TEXT_SETTINGS
    }
    oid = conn.execute("SELECT %s::regclass::oid", (regclass,)).fetchone()[0]
    return TableDescription(schema=schema, table=table, columns=columns, key_columns=key, settings=settings,
                            oid=int(oid))
