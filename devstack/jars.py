"""The Java parts of the local stack, from Maven Central: Apache Kafka (broker and Connect worker) and Debezium.

Each bundle is a pom under ``devstack/maven/<bundle>/`` with the list of its jars' SHA-256 beside it
(``SHA256SUMS``). ``ensure_bundles`` resolves a missing bundle with Maven (``-C``: the repository's own
checksums must match), copies its jars into a temporary folder of the cache, checks that the folder holds
exactly the pinned jars with the pinned hashes, then moves it into place in one rename. A bundle already in
place is used as it is, so a second ``./stack up`` fetches nothing. The folder's name carries a digest of the
pom and its sums: a version change in a pom is a new folder, never a mix of old and new jars.

    python -m devstack.jars                  fetch what is missing (scripts/bootstrap.sh runs this)
    python -m devstack.jars --update-sums    after changing a version in a pom: resolve and rewrite SHA256SUMS
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import PartStartError

MAVEN_DIR = Path(__file__).resolve().parent / "maven"
BUNDLES = ("kafka", "debezium-postgres")
SUMS = "SHA256SUMS"


@dataclass(frozen=True)
class Bundle:
    name: str

    @property
    def pom(self) -> Path:
        return MAVEN_DIR / self.name / "pom.xml"

    @property
    def sums_path(self) -> Path:
        return MAVEN_DIR / self.name / SUMS

    def property(self, key: str) -> str:
        """A ``<properties>`` value of the pom (the versions live there, one home each)."""
        found = re.search(rf"<{re.escape(key)}>([^<]+)</{re.escape(key)}>", self.pom.read_text())
        if found is None:
            raise KeyError(f"{self.pom} has no <{key}> property")
        return found.group(1).strip()

    def pinned(self) -> dict[str, str]:
        """jar file name -> SHA-256, as pinned in SHA256SUMS."""
        if not self.sums_path.exists():
            return {}
        pinned: dict[str, str] = {}
        for line in self.sums_path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                digest, name = line.split(maxsplit=1)
                pinned[name.strip().lstrip("*")] = digest
        return pinned

    def digest(self) -> str:
        h = hashlib.sha256(self.pom.read_bytes())
        if self.sums_path.exists():
            h.update(self.sums_path.read_bytes())
        return h.hexdigest()[:12]

    def folder(self, cache: Path) -> Path:
        return cache / f"{self.name}-{self.digest()}"


KAFKA = Bundle("kafka")
DEBEZIUM_POSTGRES = Bundle("debezium-postgres")


def kafka_version() -> str:
    return KAFKA.property("kafka.version")


def debezium_version() -> str:
    return DEBEZIUM_POSTGRES.property("debezium.version")


def bundle_jars(bundle: Bundle, cache: Path) -> Path:
    """The folder of a fetched bundle in the cache (``CDC_JARS_DIR``); a clear error when it is not there."""
    folder = bundle.folder(cache)
    if not folder.is_dir():
        raise PartStartError(f"the {bundle.name} jars are not in {folder}: run scripts/bootstrap.sh "
                             f"(or .venv/bin/python -m devstack.jars), which fetches them from Maven Central")
    return folder


def classpath(bundle: Bundle, cache: Path) -> str:
    return ":".join(str(p) for p in sorted(bundle_jars(bundle, cache).glob("*.jar")))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_against_pins(bundle: Bundle, folder: Path) -> None:
    """The folder holds exactly the pinned jars, each with its pinned SHA-256; else a ``PartStartError``."""
    pinned = bundle.pinned()
    if not pinned:
        raise PartStartError(f"{bundle.sums_path} is missing or empty: run .venv/bin/python -m devstack.jars "
                             f"--update-sums after changing {bundle.pom}, and commit the result")
    found = {p.name: p for p in folder.glob("*.jar")}
    problems = [f"missing {name}" for name in sorted(set(pinned) - set(found))]
    problems += [f"unexpected {name}" for name in sorted(set(found) - set(pinned))]
    digests = {name: sha256(found[name]) for name in sorted(set(pinned) & set(found))}
    problems += [f"{name}: SHA-256 {digest} is not the pinned {pinned[name]}"
                 for name, digest in digests.items() if digest != pinned[name]]
    if problems:
        raise PartStartError(
            f"the {bundle.name} jars Maven resolved do not match {bundle.sums_path}: {'; '.join(problems)}. "
            f"Nothing was installed. If you changed a version in {bundle.pom}, run .venv/bin/python -m "
            f"devstack.jars --update-sums; otherwise a jar in ~/.m2 is damaged: delete ~/.m2/repository and run again")


def resolve(bundle: Bundle, into: Path) -> None:
    """Maven copies the bundle's runtime jars into ``into``; a checksum the repository disagrees with fails."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise PartStartError("mvn not found: install Debian's maven package (scripts/bootstrap.sh does)")
    command = [mvn, "-B", "-q", "-C", "-f", str(bundle.pom), "dependency:copy-dependencies",
               f"-DoutputDirectory={into}"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
        raise PartStartError(f"Maven could not resolve the {bundle.name} jars ({' '.join(command)}), exit "
                             f"{done.returncode}. Is Maven Central reachable? Last lines:\n{tail}")


def fetch(bundle: Bundle, cache: Path) -> Path:
    """The bundle's folder in the cache, fetched and checked first if it is not there."""
    folder = bundle.folder(cache)
    if folder.is_dir():
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{bundle.name}-", dir=cache))
    try:
        resolve(bundle, staging)
        check_against_pins(bundle, staging)
        os.replace(staging, folder)  # one rename: the folder is complete or absent
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def update_sums(bundle: Bundle) -> None:
    """Resolve the bundle afresh and pin what came: for a deliberate version change, reviewed in the diff."""
    with tempfile.TemporaryDirectory() as tmp:
        resolve(bundle, Path(tmp))
        lines = [f"{sha256(p)}  {p.name}" for p in sorted(Path(tmp).glob("*.jar"))]
    header = f"# SHA-256 of every jar of {bundle.pom.parent.name}/pom.xml; written by python -m devstack.jars --update-sums"
    bundle.sums_path.write_text("\n".join([header, *lines, ""]))


def ensure_bundles(cache: Path) -> dict[str, Path]:
    return {bundle.name: fetch(bundle, cache) for bundle in (KAFKA, DEBEZIUM_POSTGRES)}


def main(argv: list[str]) -> int:
    bundles = (KAFKA, DEBEZIUM_POSTGRES)
    try:
        if argv == ["--update-sums"]:
            for bundle in bundles:
                update_sums(bundle)
                print(f"wrote {bundle.sums_path}")
            return 0
        if argv:
            print(__doc__, file=sys.stderr)
            return 2
        from devstack.settings import StackSettings

        cache = StackSettings.load().jars_dir
        missing = [b for b in bundles if not b.folder(cache).is_dir()]
        began = time.monotonic()
        for bundle in missing:
            print(f"jars: fetching {bundle.name} from Maven Central into {bundle.folder(cache)}", file=sys.stderr)
            fetch(bundle, cache)
        if missing:
            print(f"jars: fetched and checked in {time.monotonic() - began:.0f} s", file=sys.stderr)
        return 0
    except PartStartError as exc:
        print(f"jars: ERROR: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
