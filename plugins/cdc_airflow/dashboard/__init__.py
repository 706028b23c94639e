"""The operator's dashboard inside Airflow's UI: a FastAPI app (pages and a JSON API) and an external view.

Modules, one job each: ``catalog`` (which pipelines and DAGs), ``history_query`` (read-only questions to
runs.sqlite), ``live_probes`` (the services asked from the api-server), ``status_strip`` and ``runs_table``
(what is shown, as data), ``views`` (assembled for a page or the API), ``page`` (HTML, from the Jinja2
templates in ``templates/``), ``app`` (routes).
The plugin itself is plugins/cdc_dashboard_plugin.py; docs/dashboard.md says what each field means.
"""
