"""The page's templates: values are escaped by default, and the markup has no line breaks of the templates'."""

from __future__ import annotations

from cdc_airflow.dashboard.page import message_page, overview_page


def test_values_are_escaped_without_asking():
    html = message_page("<script>alert(1)</script>", "it's \"quoted\" & <b>bold</b>", "/cdc/static")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "it&#39;s &#34;quoted&#34; &amp; &lt;b&gt;bold&lt;/b&gt;" in html


def test_a_broken_connector_files_name_and_error_are_text():
    html = overview_page({"pipelines": [], "broken_connector_files": {"<x>.json": "no 'name'"},
                          "generated_at": "2026-11-24T13:05:00+00:00"}, "/cdc/static")
    assert "<li><b>&lt;x&gt;.json</b>: no &#39;name&#39;</li>" in html
    assert "<td colspan='8' class='empty'>No pipeline: no connector file and no run history.</td>" in html


def test_the_templates_line_breaks_stay_out_of_the_page():
    html = message_page("Title", "line one\nline two", "/cdc/static")
    assert html.count("\n") == 1  # the value's own
    assert html.startswith("<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport'")
