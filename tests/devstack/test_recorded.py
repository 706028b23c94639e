"""Recorded settings: what ./stack up writes, how later commands read it, and ./stack reset removing it."""

import json
import stat

import pytest

from devstack.__main__ import main
from devstack.errors import SettingsError
from devstack.recorded import read_recorded, record_settings
from devstack.settings import StackSettings


@pytest.fixture
def record(tmp_path):
    return tmp_path / "repo" / ".stack" / "settings.json"


def up(env: dict[str, str], record_path):
    """What `./stack up` does before starting anything: load with the record, then record."""
    recorded = read_recorded(record_path)
    settings = StackSettings.load(env=env, recorded=recorded.values)
    return settings, record_settings(settings, env, recorded, "./stack up")


def test_nothing_recorded_reads_as_empty(record):
    recorded = read_recorded(record)
    assert recorded.values == {} and not recorded.exists
    assert "nothing recorded" in recorded.describe()


def test_up_records_what_was_chosen_and_a_new_shell_finds_the_same_stack(record, tmp_path):
    env = {"CDC_STACK_HOME": str(tmp_path / "home"), "CDC_KAFKA_PORT": "29092"}
    settings, recorded = up(env, record)
    document = json.loads(record.read_text())
    assert document["recorded_by"] == "./stack up"
    assert document["settings"] == {"CDC_KAFKA_PORT": "29092", "CDC_PG_PASSWORD": settings.pg_password,
                                    "CDC_CONNECT_PASSWORD": settings.connect_password,
                                    "CDC_CAPTURE_PASSWORD": settings.capture_password,
                                    "CDC_STACK_HOME": str(tmp_path / "home")}
    assert settings.connect_password.startswith("cdc-") and settings.connect_password != settings.pg_password
    assert stat.S_IMODE(record.stat().st_mode) == 0o600  # it holds passwords

    later = StackSettings.load(env={}, recorded=read_recorded(record).values)  # a new shell, no exports
    assert later == settings
    assert later.data_dir == tmp_path / "home" / "data"


def test_the_environment_wins_and_a_derived_default_follows_it(record, tmp_path):
    first, _ = up({"CDC_STACK_HOME": str(tmp_path / "a")}, record)
    second, recorded = up({"CDC_STACK_HOME": str(tmp_path / "b")}, record)
    assert second.data_dir == tmp_path / "b" / "data"      # not the recorded home's data folder
    assert second.pg_password == first.pg_password          # generated once, then recorded
    assert second.connect_password == first.connect_password
    assert recorded.values["CDC_STACK_HOME"] == str(tmp_path / "b")


def test_an_unchanged_record_is_not_rewritten(record):
    up({}, record)
    before = record.stat().st_mtime_ns, record.read_text()
    up({}, record)
    assert (record.stat().st_mtime_ns, record.read_text()) == before


def test_a_damaged_record_names_the_file_and_the_fix(record):
    record.parent.mkdir(parents=True)
    record.write_text("{not json")
    with pytest.raises(SettingsError, match=r"settings\.json is not what \./stack writes.*delete it"):
        read_recorded(record)


def test_status_says_which_file_it_used_and_reset_removes_it(record, tmp_path, monkeypatch, capsys):
    for name in ("CDC_PG_PORT", "CDC_KAFKA_PORT", "CDC_CONNECT_PORT", "CDC_AIRFLOW_PORT", "CDC_DATA_DIR",
                 "CDC_PG_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CDC_STACK_HOME", str(tmp_path / "home"))
    settings, _ = up({"CDC_STACK_HOME": str(tmp_path / "home")}, record)
    monkeypatch.delenv("CDC_STACK_HOME")

    assert main(["status"], record_path=record) == 1  # nothing runs: non-zero
    out = capsys.readouterr().out
    assert f"settings: {record} (recorded by ./stack up" in out
    assert f"state: {tmp_path / 'home'}" in out          # found through the record, not the default

    assert main(["reset"], record_path=record) == 0
    assert f"deleted {record}" in capsys.readouterr().out
    assert not record.exists()


def test_reset_lists_the_record_inside_the_default_home(tmp_path, monkeypatch, capsys):
    home = tmp_path / ".stack"
    record = home / "settings.json"
    for name in ("CDC_STACK_HOME", "CDC_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    up({"CDC_STACK_HOME": str(home)}, record)
    assert main(["reset"], record_path=record) == 0
    assert f"deleted {home} (settings.json)" in capsys.readouterr().out
    assert not home.exists()
