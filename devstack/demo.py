"""A bounded stream of inserts, updates and deletes on public.clientes, to watch destiny.csv follow the source."""

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
        for n in range(1, count + 1):
            began = time.monotonic()
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
