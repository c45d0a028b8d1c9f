#!/usr/bin/env python3
"""Checks docker-compose.yml against what the project really builds, without Docker.

The Compose specification itself is checked by check-jsonschema (`.ci/run`); this checks what
the schema cannot know:

- every `depends_on` names a service of the file;
- every command of a service built from this repository, and every health check it runs, is
  a binary the Dockerfile puts in the image;
- every UCHAT_* and DATABASE_URL setting given to such a service is one that binary reads
  (it appears as `[env: NAME=` in the binary's `--help`).

    scripts/check-compose.py BIN_DIR     (where the binaries were built, e.g. target/debug)
"""

import re
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent

# Read by every server binary through the `ops` crate rather than a flag of its own.
PROCESS_WIDE = {"UCHAT_LOG_FORMAT"}


def image_binaries() -> set[str]:
    dockerfile = (ROOT / "Dockerfile").read_text()
    return set(re.findall(r"--bin\s+([\w-]+)", dockerfile))


def env_names(binary: Path) -> set[str]:
    """The environment variables a binary reads, from its --help and its subcommands'."""
    names: set[str] = set()
    for args in ([], ["up"]):
        run = subprocess.run(
            [str(binary), *args, "--help"], capture_output=True, text=True, check=False
        )
        names |= set(re.findall(r"\[env: ([A-Z_]+)=", run.stdout))
    return names


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    bin_dir = Path(sys.argv[1])
    compose = YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    built = image_binaries()
    problems = []
    for name, service in services.items():
        for needed in service.get("depends_on") or {}:
            if needed not in services:
                problems.append(f"{name}: depends on `{needed}`, which is not a service")
        if "build" not in service:
            continue
        command = service.get("command") or ["uchat-server"]
        binary = command[0]
        if binary not in built:
            problems.append(f"{name}: runs `{binary}`, which the Dockerfile does not build")
            continue
        path = bin_dir / binary
        if not path.exists():
            problems.append(f"{name}: {path} is not built; build the binaries first")
            continue
        test = (service.get("healthcheck") or {}).get("test") or []
        if test[:1] == ["CMD"] and len(test) > 1 and test[1] not in built:
            problems.append(f"{name}: health check runs `{test[1]}`, which the image lacks")
        known = env_names(path) | PROCESS_WIDE
        for key in service.get("environment") or {}:
            if (key.startswith("UCHAT_") or key == "DATABASE_URL") and key not in known:
                problems.append(f"{name}: sets {key}, which `{binary}` does not read")
    for problem in problems:
        print(f"docker-compose.yml: {problem}", file=sys.stderr)
    if not problems:
        print(f"docker-compose.yml: {len(services)} services consistent with the image")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
