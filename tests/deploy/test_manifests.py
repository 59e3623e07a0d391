"""The Kubernetes manifests of deploy/kubernetes: each object against the Kubernetes API schemas
(kubernetes-validate ships them; strict: an unknown or misspelt field fails), the
ServiceMonitor against the Prometheus Operator's schema, the objects against each other, and
the Deployment's command line, environment and config file against the real binary.

The ServiceMonitor's schema: kubernetes-validate has only the built-in kinds. The PyPI package
cloudcoil-models-prometheus-operator holds models generated from the Prometheus Operator's CRDs
(v0.80, monitoring.coreos.com/v1) with the CRD's patterns and enums; their JSON schema, made
strict like the API server's field validation, is what the ServiceMonitor is checked against.
"""

import copy
import re
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from conftest import DEPLOY, KEYS_ENV, READ_KEY, Server

MANIFESTS = DEPLOY / "kubernetes"
# The newest Kubernetes version kubernetes-validate knows, and the oldest still in wide use.
VERSIONS = [kubernetes_validate.latest_version(), "1.29.0"]
BUILT_IN = ["ConfigMap", "Deployment", "PersistentVolumeClaim", "Service"]


def objects():
    out = {}
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            out[doc["kind"]] = doc
    return out


def test_the_manifests_are_the_ones_the_docs_name():
    assert sorted(objects()) == sorted(BUILT_IN + ["ServiceMonitor"])


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("kind", BUILT_IN)
def test_manifest_is_valid_against_the_kubernetes_schema(kind, version):
    kubernetes_validate.validate(objects()[kind], version, strict=True)


def test_a_misspelt_field_fails_the_kubernetes_validation():
    # The check above is only worth something if it refuses what the API server would.
    deployment = copy.deepcopy(objects()["Deployment"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[0], strict=True)
    deployment = copy.deepcopy(objects()["Deployment"])
    deployment["spec"]["strategy"]["type"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[0], strict=True)


def strict(schema):
    """The schema with unknown properties refused on every object that lists its properties,
    as `kubectl apply --validate=strict` does for a custom resource."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def service_monitor_schema():
    from cloudcoil.models.prometheus_operator import v1

    schema = v1.ServiceMonitor.model_json_schema(by_alias=True, mode="validation")
    return strict(schema)


def test_service_monitor_is_valid_against_the_prometheus_operator_schema():
    monitor = objects()["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    jsonschema.validate(monitor, service_monitor_schema(),
                        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


@pytest.mark.parametrize("field, value", [
    ("interval", "30 seconds"),      # not a Prometheus duration
    ("scheme", "ftp"),               # not in the enum
    ("bearerTokenSecrett", {}),      # misspelt
])
def test_a_wrong_service_monitor_fails_its_schema(field, value):
    monitor = copy.deepcopy(objects()["ServiceMonitor"])
    monitor["spec"]["endpoints"][0][field] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(monitor, service_monitor_schema())


def container():
    return objects()["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def test_the_objects_refer_to_each_other():
    o = objects()
    deployment, service, monitor = o["Deployment"], o["Service"], o["ServiceMonitor"]
    pod = deployment["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()

    port_names = {p["name"]: p["containerPort"] for p in container()["ports"]}
    service_port = service["spec"]["ports"][0]
    assert service_port["targetPort"] in port_names
    assert monitor["spec"]["endpoints"][0]["port"] == service_port["name"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"

    env = {e["name"]: e for e in container()["env"]}
    assert env["MODELWATCH_ADDR"]["value"].endswith(f":{port_names[service_port['targetPort']]}")
    # Prometheus authenticates with a key that the server accepts as a read key.
    credentials = monitor["spec"]["endpoints"][0]["authorization"]["credentials"]
    read_keys = env["MODELWATCH_READ_KEYS"]["valueFrom"]["secretKeyRef"]
    assert (credentials["name"], credentials["key"]) == (read_keys["name"], read_keys["key"])

    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container()["volumeMounts"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == o["PersistentVolumeClaim"]["metadata"]["name"]
    assert mounts["data"] == env["MODELWATCH_DATA"]["value"]
    assert volumes["config"]["configMap"]["name"] == o["ConfigMap"]["metadata"]["name"]
    config_file = container()["args"][container()["args"].index("--config") + 1]
    assert Path(config_file).parent == Path(mounts["config"])
    assert Path(config_file).name in o["ConfigMap"]["data"]

    # One process per data directory: never two pods on the volume.
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    # The image's user owns the volume.
    dockerfile = (DEPLOY / "docker" / "Dockerfile").read_text()
    uid = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    security = pod["spec"]["securityContext"]
    assert (str(security["runAsUser"]), str(security["fsGroup"])) == uid.groups()
    assert f"EXPOSE {port_names['http']}" in dockerfile


def test_the_deployment_command_and_config_map_start_modelwatch(tmp_path):
    """The container's arguments, environment and mounted config file, given to the binary
    (on 127.0.0.1 and a temporary data directory instead of 0.0.0.0 and the volume)."""
    o = objects()
    config = tmp_path / "modelwatch.toml"
    config.write_text(o["ConfigMap"]["data"]["modelwatch.toml"])
    args = container()["args"]
    assert args[0] == "serve"
    args = [str(config) if a == "/etc/modelwatch/modelwatch.toml" else a for a in args[1:]]
    env = {e["name"]: e["value"] for e in container()["env"] if "value" in e}
    env.update(KEYS_ENV)
    env.update({"MODELWATCH_ADDR": "127.0.0.1:0", "MODELWATCH_DATA": str(tmp_path / "data")})
    server = Server(args, env=env)
    try:
        probe = container()["readinessProbe"]["httpGet"]["path"]
        with urllib.request.urlopen(server.url + probe, timeout=30) as r:
            assert r.status == 200
        with pytest.raises(urllib.error.HTTPError) as refused:
            server.request("GET", "/v1/models", key=None)
        assert refused.value.code == 401
        # What the ServiceMonitor scrapes, with the read key it sends.
        req = urllib.request.Request(server.url + "/metrics",
                                     headers={"authorization": f"Bearer {READ_KEY}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200
            assert b"# TYPE" in r.read()
    finally:
        server.stop()
    assert (tmp_path / "data" / "modelwatch.db").exists()
