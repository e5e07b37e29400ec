"""The production image's requirements; the Dockerfile's build stage runs

    python runtime_requirements.py requirements.in requirements.lock <folder>

and installs what it writes into <folder>:

- requirements-runtime.in: the lines of requirements.in before its "# Tests" section,
  without the sections only one-machine runs need (local PostgreSQL and NATS servers,
  Envoy and psutil for `make run`);
- constraints.txt: the pins of requirements.lock as pip constraints (no index options, and
  no extras: pip refuses a constraint with extras, e.g. ua-parser[regex]).

tests/deploy/test_plat05_image.py resolves both the way the image build does.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

LAST_SECTION = "Tests"  # this section and every one after it: tests, manifest checks, lint
LOCAL_ONLY = ("Local servers", "The gateway")  # sections (by their first words) for `make run`
RUNTIME_FILE = "requirements-runtime.in"
CONSTRAINTS_FILE = "constraints.txt"


def runtime_requirements(requirements_in: str) -> list[str]:
    """The runtime lines of requirements.in. A section is the requirements under a comment
    block; the block's first line names it."""
    kept, section, in_comment = [], "", False
    for line in (raw.strip() for raw in requirements_in.splitlines()):
        if line.startswith("#"):
            if not in_comment:
                section = line.lstrip("# ")
            in_comment = True
            if section.startswith(LAST_SECTION):
                break
            continue
        in_comment = False
        if line and not section.startswith(LOCAL_ONLY):
            kept.append(line)
    return kept


def constraints(lock: str) -> list[str]:
    """requirements.lock's `name==version` lines, extras dropped."""
    pins = [line.strip() for line in lock.splitlines() if re.match(r"[A-Za-z0-9]", line)]
    return [re.sub(r"\[[^\]]*\]", "", pin) for pin in pins]


def write(requirements_in: Path, lock: Path, folder: Path) -> None:
    (folder / RUNTIME_FILE).write_text("\n".join(runtime_requirements(requirements_in.read_text())) + "\n")
    (folder / CONSTRAINTS_FILE).write_text("\n".join(constraints(lock.read_text())) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python runtime_requirements.py requirements.in requirements.lock <folder>")
    write(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
