"""Airflow plugin: registers the backfill DAGs' timetable (``BackfillOnlyTimetable``), so the dag-processor can
serialize those DAGs and the scheduler read them back."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from cdc_airflow.backfill_timetable import BackfillOnlyTimetable


class CdcTimetablesPlugin(AirflowPlugin):
    name = "cdc_timetables"
    timetables = [BackfillOnlyTimetable]
