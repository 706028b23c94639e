"""The timetable of a connector's backfill DAG: the pipeline's cron ticks, for backfills only.

Airflow backfills a DAG along its timetable's ticks, and a backfill over minutes the schedule already ran ("All
Runs") clears those live runs and runs them again as backfill runs: the record of what the live pipeline did would
change after the fact. So the live DAG refuses backfills and they go to ``cdc_<name>_backfill``, whose timetable
has the same ticks when a backfill asks for them and none when the scheduler does (``can_be_scheduled`` is off): it
never runs by itself, and costs nothing while idle. Registered with Airflow by ``plugins/cdc_timetables_plugin.py``.
"""

from __future__ import annotations

from airflow.timetables.trigger import CronTriggerTimetable


class BackfillOnlyTimetable(CronTriggerTimetable):
    can_be_scheduled = False   # the scheduler makes no run of its own; backfills still walk the cron ticks
    periodic = True            # what makes Airflow offer and accept backfills

    @property
    def expression(self) -> str:
        """The cron expression (backfill_runner reads it for a run's interval start)."""
        return self._expression

    @property
    def summary(self) -> str:
        return f"backfills only ({self._expression})"

    def next_dagrun_info(self, *, last_automated_data_interval, restriction):
        # A backfill asks between two instants; an open-ended question is the scheduler's, answered with no run.
        if restriction.latest is None:
            return None
        return super().next_dagrun_info(last_automated_data_interval=last_automated_data_interval,
                                        restriction=restriction)
