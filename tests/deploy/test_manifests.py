"""PLAT-05: the kustomize base describes every service with gRPC probes on its port."""

from __future__ import annotations

from pathlib import Path

import yaml

from kaiwa_common.config import DEFAULT_PORTS
from kaiwa_common.devrun import MODULES

BASE = Path(__file__).resolve().parents[2] / "deploy" / "base"


def _documents():
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        yield from (d for d in yaml.safe_load_all((BASE / resource).read_text()) if d)


def test_plat05_every_service_has_deployment_service_and_grpc_probes():
    docs = list(_documents())
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for name, module in MODULES.items():
        k8s_name = name.replace("_", "-")
        container = deployments[k8s_name]["spec"]["template"]["spec"]["containers"][0]
        port = DEFAULT_PORTS[name]
        assert container["command"] == ["python", "-m", module]
        assert container["readinessProbe"]["grpc"]["port"] == port
        assert container["livenessProbe"]["grpc"]["port"] == port
        assert services[k8s_name]["spec"]["ports"][0]["port"] == port


def test_plat05_peer_addresses_match_service_names_and_ports():
    config = next(d for d in _documents() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "kaiwa-config")
    for name in MODULES:
        assert config["data"][f"KAIWA_{name.upper()}_ADDR"] == f"{name.replace('_', '-')}:{DEFAULT_PORTS[name]}"
