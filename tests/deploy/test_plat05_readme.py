"""PLAT-05: README "Deploy to Kubernetes" names what the manifests leave to the platform
team with the values the manifests actually use (placeholders, assumed names), so the
list cannot drift from deploy/."""

from __future__ import annotations

import re

from tests.deploy.manifests import OVERLAYS, ROOT, dev_secret, objects


def _section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme[readme.index("## Deploy to Kubernetes\n") : readme.index("## Scale-out\n")]


def _gibibytes(quantity: str) -> str:
    assert quantity.endswith("Gi"), quantity
    return f"{quantity[:-2]} GiB"


def test_plat05_readme_names_what_the_platform_team_provides_as_the_manifests_use_it():
    text = " ".join(_section().split())  # wrapped lines joined
    (prod_image,) = {
        deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        for name, deployment in objects("prod", "Deployment").items()
        if name not in ("gateway", "otel-collector")
    }
    (ingress,) = objects("prod", "Ingress").values()
    (tls,) = ingress["spec"]["tls"]
    (controller_ingress,) = objects("prod", "NetworkPolicy")["gateway"]["spec"]["ingress"]
    (controller,) = controller_ingress["from"]
    (postgres_egress,) = objects("prod", "NetworkPolicy")["backend-to-external-postgres"]["spec"]["egress"]
    (nats_volume,) = objects("prod", "StatefulSet")["nats"]["spec"]["volumeClaimTemplates"]
    collector = objects("prod", "ConfigMap")["otel-collector-config"]["data"]["config.yaml"]
    exporter = re.search(r"exporters:\s*\n\s+(\w+):", collector).group(1)
    expected = {
        "image": prod_image,
        "TLS host": ingress["spec"]["rules"][0]["host"],
        "issuer": ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"],
        "certificate Secret": tls["secretName"],
        "ingress class": ingress["spec"]["ingressClassName"],
        "controller namespace": controller["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "database range": postgres_egress["to"][0]["ipBlock"]["cidr"],
        "NATS volumes": _gibibytes(nats_volume["spec"]["resources"]["requests"]["storage"]),
        "collector exporter": exporter,
        "gateway image": objects("prod", "Deployment")["gateway"]["spec"]["template"]["spec"]["containers"][0]["image"],
    }
    for overlay in OVERLAYS:
        expected[f"trusted proxies ({overlay})"] = objects(overlay, "ConfigMap")["kaiwa-config"]["data"]["KAIWA_TRUSTED_PROXIES"]
    expected |= {f"secret key {key}": key for key in dev_secret()}
    missing = {what: value for what, value in expected.items() if value not in text}
    assert not missing, f"README 'Deploy to Kubernetes' does not name: {missing}"
