"""The pipeline and Debezium connect as a role with only LOGIN, REPLICATION and SELECT (docs/source-privileges.md):
what they run as, what the publication needs from an owner, and the grants named when one is missing."""

from __future__ import annotations

import dataclasses

import pytest

from cdc_pipeline.errors import SourceError
from cdc_pipeline.tasks.register import register_connector
from tests.stack.pipeline_driver import PipelineDriver, write_connector

pytestmark = pytest.mark.stack


def make(stack_services, tmp_path, name: str) -> PipelineDriver:
    driver = PipelineDriver(stack_services.settings, write_connector(tmp_path / name, name, f"public.{name}",
                                                                     name.replace("_", "")), tmp_path / f"data_{name}")
    driver.sql(f"DROP TABLE IF EXISTS public.{name}")
    driver.sql(f"CREATE TABLE public.{name} (id int PRIMARY KEY, v text)")
    driver.sql(f"INSERT INTO public.{name} SELECT g, 'v' || g FROM generate_series(1, 20) g")
    return driver


def test_debezium_and_the_pipeline_run_as_the_capture_role_which_owns_nothing(stack_services, tmp_path):
    driver = make(stack_services, tmp_path, "least_items")
    driver.register()
    driver.sql("UPDATE public.least_items SET v = 'changed' WHERE id <= 3")
    expected = driver.drain_until_equal("id")
    assert driver.destiny() == expected
    role = stack_services.settings.capture_user
    attributes = driver.sql("SELECT rolsuper, rolreplication, rolcreatedb, rolcreaterole, rolbypassrls "
                            "FROM pg_roles WHERE rolname = %s", (role,))
    assert attributes == [(False, True, False, False, False)]
    # Debezium's replication connection holds the slot as that role; the tables and the publication are the
    # administrator's.
    assert driver.sql("SELECT r.usename FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid "
                      "WHERE s.slot_name = %s", (driver.spec.slot_name,)) == [(role,)]
    owned = driver.sql("SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = %s",
                       (role,))
    assert owned == [(0,)]
    assert driver.sql("SELECT pg_get_userbyid(pubowner) FROM pg_publication WHERE pubname = %s",
                      (driver.spec.publication_name,)) == [(stack_services.settings.pg_user,)]


def test_without_an_owners_connection_registration_names_the_publication_statement(stack_services, tmp_path):
    """The capture role may not add a table it does not own to a publication: registration refuses naming the
    statement; once the table's owner ran it, the same registration goes through."""
    driver = make(stack_services, tmp_path, "owner_items")
    driver.sql(f"DROP PUBLICATION IF EXISTS {driver.spec.publication_name}")
    without_admin = dataclasses.replace(driver.services, admin=lambda: None)  # no cdc_postgres_admin connection
    with pytest.raises(SourceError) as refused:
        register_connector(driver.pipes, without_admin, driver.next_run())
    message = str(refused.value)
    statement = (f'CREATE PUBLICATION "{driver.spec.publication_name}" FOR TABLE "public"."owner_items" WITH '
                 "(publish = 'insert, update, delete, truncate')")
    assert statement in message and "cdc_postgres_admin" in message and "cdc_capture may not create" in message
    assert driver.sql("SELECT count(*) FROM pg_publication WHERE pubname = %s", (driver.spec.publication_name,)) == [(0,)]
    driver.sql(statement)  # what a DBA runs, as the tables' owner
    register_connector(driver.pipes, without_admin, driver.next_run())
    expected = driver.drain_until_equal("id")
    assert driver.destiny() == expected


def test_a_table_the_role_may_not_read_is_refused_with_the_grant(stack_services, tmp_path):
    driver = make(stack_services, tmp_path, "secret_rows")
    role = stack_services.settings.capture_user
    driver.sql(f"REVOKE SELECT ON public.secret_rows FROM {role}")
    with pytest.raises(SourceError, match=rf'GRANT SELECT ON "public"."secret_rows" TO "{role}";'):
        driver.register()
    assert not driver.layout.table_info.exists()  # nothing was registered
