"""A bounded stream of inserts, updates and deletes on the demo tables (public.clientes, and the shop's
public.productos and public.pedidos), to watch each destiny.csv follow its table."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from devstack.settings import StackSettings

log = logging.getLogger(__name__)

FIRST = ("Ana", "Bruno", "Carla", "Diego", "Elena", "Fabio", "Gala", "Hugo", "Inés", "Jorge", "Lucía", "Mateo")
LAST = ("García", "Díaz", "Núñez", "Pérez", "Ruiz", "López", "Sanz", "Ortega", "Vidal", "Moreno")
WEIGHTS = {"insert": 0.5, "update": 0.35, "delete": 0.15}
SHOP_SHARE = 0.4  # of the changes go to the shop's tables (connector tienda), the rest to public.clientes
MAX_COUNT = 100_000


@dataclass
class DemoSummary:
    inserts: int = 0
    updates: int = 0
    deletes: int = 0

    @property
    def total(self) -> int:
        return self.inserts + self.updates + self.deletes


def run_demo(settings: StackSettings, count: int = 60, rate: float = 2.0, seed: int | None = None,
             report: Callable[[str], None] = log.info) -> DemoSummary:
    """Apply ``count`` changes at about ``rate`` per second, each in its own transaction; returns the tally."""
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be between 1 and {MAX_COUNT}, got {count}")
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    rng = random.Random(seed)
    summary = DemoSummary()
    with psycopg.connect(settings.pg_conninfo, autocommit=True) as conn:
        shop = _has_shop(conn)
        for n in range(1, count + 1):
            began = time.monotonic()
            if shop and rng.random() < SHOP_SHARE:
                kind, line = _shop_change(conn, rng)
                setattr(summary, f"{kind}s", getattr(summary, f"{kind}s") + 1)
                report(f"[{n}/{count}] {line}")
                time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - began)))
                continue
            ids = [row[0] for row in conn.execute("SELECT id FROM public.clientes ORDER BY id")]
            kind = "insert" if not ids else rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            email = f"{name.split()[0].lower()}{rng.randint(1, 999)}@example.com"
            if kind == "insert":
                new_id = conn.execute("INSERT INTO public.clientes (nombre, email) VALUES (%s, %s) RETURNING id",
                                      (name, email)).fetchone()[0]
                summary.inserts += 1
                report(f"[{n}/{count}] insert id={new_id} {name} <{email}>")
            elif kind == "update":
                target = rng.choice(ids)
                conn.execute("UPDATE public.clientes SET nombre = %s, email = %s WHERE id = %s", (name, email, target))
                summary.updates += 1
                report(f"[{n}/{count}] update id={target} -> {name} <{email}>")
            else:
                target = rng.choice(ids)
                conn.execute("DELETE FROM public.clientes WHERE id = %s", (target,))
                summary.deletes += 1
                report(f"[{n}/{count}] delete id={target}")
            time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - began)))
    return summary


def _has_shop(conn) -> bool:
    """The shop's tables exist (a database created before they were part of the demo has only clientes)."""
    return conn.execute("SELECT to_regclass('public.pedidos') IS NOT NULL AND to_regclass('public.productos') "
                        "IS NOT NULL").fetchone()[0]


def _shop_change(conn, rng: random.Random) -> tuple[str, str]:
    """One change to the shop: a new order of 1-3 lines, a new price, or a cancelled order."""
    kind = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    products = [row[0] for row in conn.execute("SELECT id FROM public.productos ORDER BY id")]
    orders = [row[0] for row in conn.execute("SELECT DISTINCT pedido FROM public.pedidos ORDER BY pedido")]
    if kind == "update" and products:
        target, price = rng.choice(products), round(rng.uniform(0.5, 20), 2)
        conn.execute("UPDATE public.productos SET precio = %s, actualizado = now() WHERE id = %s", (price, target))
        return kind, f"update producto {target} precio={price}"
    if kind == "delete" and orders:
        target = rng.choice(orders)
        conn.execute("DELETE FROM public.pedidos WHERE pedido = %s", (target,))
        return kind, f"delete pedido {target}"
    order = max(orders, default=0) + 1
    with conn.transaction():
        for line in range(1, rng.randint(1, 3) + 1):
            conn.execute("INSERT INTO public.pedidos (pedido, linea, producto, cantidad) VALUES (%s, %s, %s, %s)",
                         (order, line, rng.choice(products) if products else None, rng.randint(1, 5)))
    return "insert", f"insert pedido {order}"
