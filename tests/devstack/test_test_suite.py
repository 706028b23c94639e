"""The suite runner's exit code: a failure in either group fails the suite; "no tests collected" (5) in one group
does not, unless no group ran any test."""

from __future__ import annotations

import pytest

from devstack.test_suite import combined


@pytest.mark.parametrize("codes, expected", [
    ({"airflow": 0, "services": 0}, 0),
    ({"airflow": 1, "services": 0}, 1),
    ({"airflow": 0, "services": 2}, 2),
    ({"airflow": 5, "services": 0}, 0),
    ({"airflow": 5, "services": 1}, 1),
    ({"airflow": 5, "services": 5}, 5),
    ({"airflow": -15, "services": 0}, -15),
])
def test_the_suite_fails_when_either_group_fails(codes, expected):
    assert combined(codes) == expected
