"""The Kubernetes manifests render with kustomize and hold what a cluster needs."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from kombu.transport.gcpubsub import CHARS_REPLACE_TABLE as PUBSUB_NAME_TABLE
from kombu.transport.SQS import CHARS_REPLACE_TABLE as SQS_NAME_TABLE

from producer.messages import TURNS_QUEUE
from producer.pin import ModelPin, read_pin
from tests.unit.deploy.crd_schema import CUSTOM_SCHEMAS
from tests.unit.deploy.setting_name import known_variables
from tests.unit.deploy.tooling import (
    KUBERNETES_DIR,
    KUBERNETES_VERSION,
    REPO_ROOT,
    find,
    render_kustomization,
)
from worker.settings import WorkerSettings

OVERLAYS = ("staging", "production")
BROKER_COMPONENTS = ("keda-redis", "keda-sqs", "keda-pubsub")
WORKLOADS = (("Deployment", "twentyq-worker"), ("Deployment", "twentyq-export"))
DNS_PORTS = {(53, "UDP"), (53, "TCP")}
REDIS_PORT = (6379, "TCP")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Every variant a cluster can be given: the two overlays and base + each broker scaler."""
    variants = {name: render_kustomization(KUBERNETES_DIR / "overlays" / name) for name in OVERLAYS}
    for component in BROKER_COMPONENTS:
        folder = tmp_path_factory.mktemp(component)
        (folder / "model_version.json").write_text(
            (KUBERNETES_DIR / "overlays" / "staging" / "model_version.json").read_text()
        )
        (folder / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\n"
            "kind: Kustomization\n"
            "namespace: twentyq-test\n"
            f"resources: [{os.path.relpath(KUBERNETES_DIR / 'base', folder)}]\n"
            f"components: [{os.path.relpath(KUBERNETES_DIR / 'components' / component, folder)}]\n"
            "configMapGenerator:\n"
            "  - name: twentyq-pin\n"
            "    files: [model_version.json]\n"
        )
        variants[component] = render_kustomization(folder)
    return variants


def _validate(document: dict[str, Any]) -> None:
    custom = CUSTOM_SCHEMAS.get((document["apiVersion"], document["kind"]))
    if custom is not None:
        jsonschema.validate(document, custom)
    else:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def _pod_spec(document: dict[str, Any]) -> dict[str, Any]:
    if document["kind"] == "CronJob":
        return document["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    return document["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def _egress_ports(policy: dict[str, Any]) -> set[tuple[int, str]]:
    return {
        (port["port"], port["protocol"])
        for rule in policy["spec"]["egress"]
        for port in rule.get("ports", [])
    }


@pytest.mark.parametrize("variant", [*OVERLAYS, *BROKER_COMPONENTS])
def test_every_rendered_document_validates_against_its_schema(
    rendered: dict[str, list[dict[str, Any]]], variant: str
) -> None:
    documents = rendered[variant]
    kinds = {doc["kind"] for doc in documents}
    assert {"Deployment", "CronJob", "NetworkPolicy", "ScaledObject", "ConfigMap"} <= kinds
    for document in documents:
        _validate(document)


def test_the_validators_reject_broken_manifests(rendered: dict[str, list[dict[str, Any]]]) -> None:
    worker = copy.deepcopy(find(rendered["staging"], "Deployment", "twentyq-worker"))
    worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "two minutes"
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(worker)
    scaler = copy.deepcopy(find(rendered["staging"], "ScaledObject", "twentyq-worker"))
    scaler["spec"]["triggers"][0]["metadata"]["listLength"] = 16  # KEDA wants strings
    with pytest.raises(jsonschema.ValidationError):
        _validate(scaler)
    del scaler["spec"]["triggers"][0]["metadata"]["listName"]
    with pytest.raises(jsonschema.ValidationError):
        _validate(scaler)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_non_root_on_a_read_only_root_with_a_writable_tmp(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    for kind, name in (*WORKLOADS, ("CronJob", "twentyq-drift")):
        pod = _pod_spec(find(rendered[overlay], kind, name))
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        tmp_volumes = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert {"requests", "limits"} <= set(container["resources"]), name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in tmp_volumes, f"{name} has no writable /tmp"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_probes_its_metrics_port_and_has_time_to_finish_a_batch(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    deployment = find(rendered[overlay], "Deployment", "twentyq-worker")
    assert "replicas" not in deployment["spec"], "KEDA owns the replica count"
    pod = _pod_spec(deployment)
    (container,) = pod["containers"]
    settings = WorkerSettings()
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["metrics"] == settings.metrics_port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, "model load time"
    assert pod["terminationGracePeriodSeconds"] >= 60 + settings.longest_batch_s()
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == settings.metrics_port


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_reach_only_dns_and_redis(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    policy = find(rendered[overlay], "NetworkPolicy", "twentyq-worker")
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert all(rule.get("to") for rule in policy["spec"]["egress"]), "an egress rule is open"
    assert _egress_ports(policy) == DNS_PORTS | {REDIS_PORT}
    deployment = find(rendered[overlay], "Deployment", "twentyq-worker")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    ingress_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ingress_ports == {WorkerSettings().metrics_port}


@pytest.mark.parametrize("component", ["keda-sqs", "keda-pubsub"])
def test_cloud_brokers_add_only_https_and_identity_egress(
    rendered: dict[str, list[dict[str, Any]]], component: str
) -> None:
    policy = find(rendered[component], "NetworkPolicy", "twentyq-worker")
    added = _egress_ports(policy) - DNS_PORTS - {REDIS_PORT}
    assert (443, "TCP") in added
    assert added <= {(443, "TCP"), (80, "TCP"), (988, "TCP")}
    account = find(rendered[component], "ServiceAccount", "twentyq")
    assert any("REPLACE_ME" in value for value in account["metadata"]["annotations"].values())


def test_scalers_watch_the_queue_the_worker_consumes(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    expected_source = {
        "keda-redis": ("listName", TURNS_QUEUE),
        "keda-sqs": ("queueURL", TURNS_QUEUE.translate(SQS_NAME_TABLE)),
        "keda-pubsub": ("subscriptionName", TURNS_QUEUE.translate(PUBSUB_NAME_TABLE)),
    }
    for component, (key, queue_name) in expected_source.items():
        documents = rendered[component]
        scaler = find(documents, "ScaledObject", "twentyq-worker")["spec"]
        assert scaler["minReplicaCount"] == 0, "workers must scale to zero"
        assert scaler["maxReplicaCount"] >= 1
        find(documents, "Deployment", scaler["scaleTargetRef"]["name"])
        (trigger,) = scaler["triggers"]
        assert trigger["metadata"][key] == queue_name, component
        # Activation at 0: the first waiting turn brings a worker back from zero.
        activation = {k: v for k, v in trigger["metadata"].items() if k.startswith("activation")}
        assert activation and set(activation.values()) == {"0"}, component
        find(documents, "TriggerAuthentication", trigger["authenticationRef"]["name"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_pins_the_model_version_its_image_carries(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    documents = rendered[overlay]
    pin_map = find(documents, "ConfigMap", "twentyq-pin")
    pin = ModelPin.model_validate_json(pin_map["data"]["model_version.json"])
    assert pin.name == read_pin(REPO_ROOT / "mlflow" / "model_version.json").name
    settings = find(documents, "ConfigMap", "twentyq-settings")["data"]
    pin_path = Path(settings["TWENTYQ_PIN_PATH"])
    for kind, name in (*WORKLOADS, ("CronJob", "twentyq-drift")):
        pod = _pod_spec(find(documents, kind, name))
        pin_volumes = {
            v["name"]
            for v in pod["volumes"]
            if v.get("configMap", {}).get("name") == pin_map["metadata"]["name"]
        }
        for container in pod["containers"]:
            assert container["image"].endswith(f"model-v{pin.version}"), container["image"]
            mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
            assert any(mounts.get(v) == str(pin_path.parent) for v in pin_volumes), name
    assert pin_path.name == "model_version.json"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_configmap_sets_only_variables_the_deployables_read(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    settings = find(rendered[overlay], "ConfigMap", "twentyq-settings")["data"]
    unknown = set(settings) - known_variables()
    assert not unknown, f"no settings class reads {sorted(unknown)}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_servicemonitor_and_services_expose_both_metrics_ports(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    documents = rendered[overlay]
    monitor = find(documents, "ServiceMonitor", "twentyq")["spec"]
    selected = [
        doc
        for doc in documents
        if doc["kind"] == "Service"
        and monitor["selector"]["matchLabels"].items() <= doc["metadata"]["labels"].items()
    ]
    ports = {p["port"] for service in selected for p in service["spec"]["ports"]}
    assert ports == {WorkerSettings().metrics_port, 9101}
    endpoint_ports = {endpoint["port"] for endpoint in monitor["endpoints"]}
    for service in selected:
        assert endpoint_ports & {p["name"] for p in service["spec"]["ports"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_disruption_budget_covers_the_workers(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    budget = find(rendered[overlay], "PodDisruptionBudget", "twentyq-worker")["spec"]
    worker = find(rendered[overlay], "Deployment", "twentyq-worker")
    assert budget["selector"] == worker["spec"]["selector"]
    assert "minAvailable" not in budget, "minAvailable would block drains at 0 or 1 replica"


def test_every_placeholder_and_secret_is_documented(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = (REPO_ROOT / "docs" / "deployment.md").read_text()
    text = json.dumps(rendered)
    placeholders = set(re.findall(r"REPLACE_ME_[A-Z_]+", text))
    assert placeholders, "the cloud components name what to fill in"
    secrets = set(re.findall(r'"secretRef": \{"name": "([a-z0-9-]+)"', text))
    secrets |= set(
        re.findall(r'"secretTargetRef": \[\{"parameter": "\w+", "name": "([a-z0-9-]+)"', text)
    )
    assert "twentyq-broker" in secrets
    missing = {name for name in placeholders | secrets if name not in docs}
    assert not missing, f"docs/deployment.md does not explain {sorted(missing)}"
