"""PLAT-05: the Kubernetes manifests. Every overlay renders with `kubectl kustomize` and each
object validates offline and strictly against the Kubernetes schemas (kubernetes-validate);
per service a hardened Deployment with gRPC probes and a migrations init container, a
Service, an HPA, a PDB; network policies admit only the calls the architecture makes; the
prod example runs three NATS nodes with streams replicated three times. PLAT-03: the
alert rules and the dashboard use metrics the services export."""

from __future__ import annotations

import json
import re
import sys

import kubernetes_validate
import pytest
import yaml

from kaiwa_common.config import DEFAULT_PORTS
from kaiwa_common.migrate_only import MODULES

from tests.deploy.manifests import BASE, DEPLOY, OVERLAYS, ROOT, k8s_name, objects, rendered

K8S_VERSION = "1.33.0"  # the oldest version we promise; the schemas ship with kubernetes-validate
METRICS_PORT = 9464

sys.path.insert(0, str(ROOT / "deploy" / "tools"))
import gen_services  # noqa: E402


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_plat05_overlay_renders_and_every_object_validates_strictly(overlay):
    docs = rendered(overlay)
    assert docs
    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc}")
    assert not errors, "\n".join(errors)
    assert all(d["metadata"].get("namespace") == "kaiwa" for d in docs if d["kind"] != "Namespace")


def test_plat05_strict_validation_rejects_an_unknown_field():
    deployment = json.loads(json.dumps(objects("dev", "Deployment")["routing"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grcp"] = {"port": 1}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_plat05_generated_service_manifests_are_current():
    for name in gen_services.SERVICES:
        assert (BASE / f"{name}.yaml").read_text() == gen_services.render(name), (
            f"deploy/base/{name}.yaml is stale: run python deploy/tools/gen_services.py"
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_plat05_every_service_is_hardened_probed_migrated_scaled_and_budgeted(overlay):
    deployments, services = objects(overlay, "Deployment"), objects(overlay, "Service")
    hpas, pdbs = objects(overlay, "HorizontalPodAutoscaler"), objects(overlay, "PodDisruptionBudget")
    for service, module in MODULES.items():
        name, port = k8s_name(service), DEFAULT_PORTS[service]
        pod = deployments[name]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        (migrate,) = pod["initContainers"]
        assert container["command"] == ["python", "-m", module]
        assert migrate["command"] == ["python", "-m", "kaiwa_common.migrate_only", service]
        assert migrate["image"] == container["image"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == port
        assert {p["containerPort"] for p in container["ports"]} == {port, METRICS_PORT}
        assert {"requests", "limits"} <= container["resources"].keys()
        assert container["resources"]["limits"]["memory"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for c in (container, migrate):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"]["drop"] == ["ALL"]
            refs = [next(iter(ref.values()))["name"] for ref in c["envFrom"]]
            assert refs[0] == "kaiwa-config" and refs[1].startswith("kaiwa-secrets")
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        svc_ports = {p["name"]: p["port"] for p in services[name]["spec"]["ports"]}
        assert svc_ports == {"grpc": port, "metrics": METRICS_PORT}
        assert hpas[name]["spec"]["scaleTargetRef"]["name"] == name
        assert pdbs[name]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}


def test_plat05_peer_addresses_match_service_names_and_ports():
    config = objects("dev", "ConfigMap")["kaiwa-config"]
    for name in MODULES:
        assert config["data"][f"KAIWA_{name.upper()}_ADDR"] == f"{k8s_name(name)}:{DEFAULT_PORTS[name]}"
    assert config["data"]["KAIWA_METRICS_PORT"] == str(METRICS_PORT)


def test_plat05_every_configured_variable_is_read_by_the_code():
    sources = "\n".join(p.read_text() for p in (ROOT / "services").rglob("config.py"))
    for overlay in OVERLAYS:
        for config in [objects(overlay, "ConfigMap")["kaiwa-config"], *objects(overlay, "Secret").values()]:
            for key in {**config.get("data", {}), **config.get("stringData", {})}:
                if key == "KAIWA_GATEWAY_JWKS":  # read by the gateway's Envoy (a mounted file)
                    continue
                if key.startswith("KAIWA_") and not key.endswith("_ADDR"):
                    assert f'"{key}"' in sources, f"{overlay}: {key} is read nowhere"


def _allowed_calls(overlay: str) -> set[tuple[str, str]]:
    """(caller, callee) pairs the policies admit on a service's gRPC port, both ways: the
    callee's ingress admits the caller and the caller's egress admits the callee."""
    policies = objects(overlay, "NetworkPolicy")
    names = [k8s_name(s) for s in MODULES]
    ports = {k8s_name(s): DEFAULT_PORTS[s] for s in MODULES}
    callers = [*names, "gateway"]

    def peers(rules, direction, port):
        found = set()
        for rule in rules:
            if not any(p["port"] == port for p in rule.get("ports", [])):
                continue
            for peer in rule.get(direction, []):
                assert "ipBlock" not in peer or port == 443 or port == 5432
                label = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
                if label:
                    found.add(label)
        return found

    ingress = {n: peers(policies[n]["spec"].get("ingress", []), "from", ports[n]) for n in names}
    egress = {
        (caller, callee)
        for caller in callers
        for callee in names
        if callee in peers(policies[caller]["spec"].get("egress", []), "to", ports[callee])
    }
    admitted = {(caller, callee) for callee in names for caller in ingress[callee]}
    # Nothing in the namespace reaches a gRPC port except through these named policies.
    for name, policy in policies.items():
        if name not in callers:
            selector = policy["spec"]["podSelector"]
            for rule in policy["spec"].get("ingress", []) + policy["spec"].get("egress", []):
                assert not any(p["port"] in ports.values() for p in rule.get("ports", [])), name
                assert rule.get("ports"), f"{name} admits every port"
            assert selector or policy["spec"].get("ingress") is None
    return admitted & egress


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_plat05_network_policies_allow_only_the_calls_of_the_architecture(overlay):
    expected = {
        ("routing", "conversation"),
        ("routing", "crm-bridge"),
        ("conversation", "routing"),
        ("crm-bridge", "conversation"),
        ("crm-bridge", "visitor"),
        ("crm-bridge", "routing"),
        ("visitor", "routing"),
        ("visitor", "crm-bridge"),
        ("ai-assist", "conversation"),
    } | {("gateway", k8s_name(s)) for s in MODULES}
    assert _allowed_calls(overlay) == expected
    policies = objects(overlay, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny
    infra = {r["ports"][0]["port"] for r in policies["backend-to-infrastructure"]["spec"]["egress"]}
    assert infra == {4222, 5432, 4317}  # NATS, PostgreSQL, the collector


def test_plat05_dev_runs_nats_and_postgres_in_cluster_prod_uses_a_nats_cluster_and_external_db():
    dev = objects("dev", "StatefulSet")
    assert dev["nats"]["spec"]["replicas"] == 1 and dev["postgres"]["spec"]["replicas"] == 1
    assert objects("dev", "ConfigMap")["kaiwa-config"]["data"]["KAIWA_STREAM_REPLICAS"] == "1"
    assert "kaiwa-secrets" in "".join(objects("dev", "Secret"))

    prod = objects("prod", "StatefulSet")
    assert set(prod) == {"nats"} and prod["nats"]["spec"]["replicas"] == 3
    nats_conf = objects("prod", "ConfigMap")["nats-config"]["data"]["nats.conf"]
    assert len(re.findall(r"nats://nats-\d\.nats-cluster:6222", nats_conf)) == 3
    assert objects("prod", "ConfigMap")["kaiwa-config"]["data"]["KAIWA_STREAM_REPLICAS"] == "3"
    assert not objects("prod", "Secret"), "production secrets come from the cluster's secret store"
    assert "backend-to-external-postgres" in objects("prod", "NetworkPolicy")
    for name, deployment in objects("prod", "Deployment").items():
        if name not in ("otel-collector", "gateway"):
            assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/kaiwa:0.1.0"
            assert objects("prod", "HorizontalPodAutoscaler")[name]["spec"]["minReplicas"] == 3
    assert "otel-collector" in objects("prod", "Deployment") and "otel-collector" in objects("prod", "Service")


# PLAT-03: alert rules and dashboard refer only to metrics the services export.
EXPORTED = set(re.findall(r"\b(kaiwa_[a-z_]+)", (ROOT / "services/common/kaiwa_common/metrics.py").read_text()))


def _used(text: str) -> set[str]:
    names = set(re.findall(r"\b(kaiwa_[a-z_]+?)(?:_bucket|_count|_sum)?\b", text))
    return {n for n in names if not n.startswith("kaiwa_common")}


def test_plat03_alert_rules_cover_stuck_outbox_consumer_lag_and_dead_letters():
    rules = yaml.safe_load((DEPLOY / "observability" / "alerts.yaml").read_text())
    alerts = {r["alert"]: r for group in rules["groups"] for r in group["rules"]}
    for name in ("KaiwaOutboxStuck", "KaiwaConsumerLagGrowing", "KaiwaDeadLetters"):
        assert name in alerts
        assert alerts[name]["labels"]["severity"] and alerts[name]["annotations"]["summary"]
    used = _used(yaml.safe_dump(rules))
    assert used and used <= EXPORTED, used - EXPORTED


def test_plat03_dashboard_panels_query_exported_metrics():
    dashboard = json.loads((DEPLOY / "observability" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(exprs) >= 8
    used = _used("\n".join(exprs))
    assert used <= EXPORTED, used - EXPORTED
    for metric in (
        "kaiwa_rpc_handled_total",
        "kaiwa_rpc_duration_seconds",
        "kaiwa_outbox_backlog",
        "kaiwa_outbox_oldest_age_seconds",
        "kaiwa_consumer_pending",
        "kaiwa_consumer_redeliveries_total",
        "kaiwa_dead_letters",
        "kaiwa_timers_due",
        "kaiwa_routing_waiting_chats",
    ):
        assert metric in used, metric
