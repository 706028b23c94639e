"""What the Java parts (the Kafka broker, the Kafka Connect worker) share: the java binary and the log4j2 setup."""

from __future__ import annotations

import shutil
from pathlib import Path

from cdc_pipeline.atomic import atomic_write_text
from devstack.errors import PartStartError

# Kafka's own start scripts run with -Djava.awt.headless=true; the serial collector keeps two small JVMs light
# on a 2-core machine.
JVM_FLAGS = ("-XX:+UseSerialGC", "-Djava.awt.headless=true")


def java_binary() -> str:
    java = shutil.which("java")
    if java is None:
        raise PartStartError("java not found on PATH: install openjdk-17-jre-headless (scripts/bootstrap.sh does)")
    return java


def write_properties(path: Path, settings: dict[str, str]) -> None:
    """A part's properties file, rewritten on every start from the settings, so a port change needs no hand edit."""
    atomic_write_text(path, "# Written by devstack on every start; edit the CDC_* settings.\n"
                      + "".join(f"{key}={value}\n" for key, value in settings.items()))


def log4j2_properties(quiet: dict[str, str]) -> str:
    """A console log4j2 config at INFO, with the named loggers set to the given levels (the part's log file
    is its standard output)."""
    lines = [
        "status = warn",
        "appender.console.type = Console",
        "appender.console.name = console",
        "appender.console.layout.type = PatternLayout",
        "appender.console.layout.pattern = [%d] %p %m (%c{1})%n",
        "rootLogger.level = info",
        "rootLogger.appenderRef.console.ref = console",
    ]
    for i, (name, level) in enumerate(sorted(quiet.items())):
        lines += [f"logger.q{i}.name = {name}", f"logger.q{i}.level = {level}"]
    return "\n".join(lines) + "\n"
