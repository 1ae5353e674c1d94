"""The Kubernetes manifests (deploy/kubernetes), checked offline: no cluster runs here.

Every manifest validates against the API schemas of the pinned Kubernetes versions
(``kubernetes-validate``, strict: an unknown field is an error), and what a cluster would only
reveal at run time agrees with the project: the probes' paths are GET operations of the spec,
the ports and the model-store path are the image's, the selectors select the right pods.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = PROJECT_ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
#: The oldest Kubernetes the manifests are meant for, and the newest the pinned kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.32.0", "1.37.0")
DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()
SPEC = yaml.safe_load((PROJECT_ROOT / "openapi" / "spec.yaml").read_text())


def _documents(text: str) -> list[dict]:
    return [document for document in yaml.safe_load_all(text) if document]


def _file_resources() -> list[dict]:
    """The base's resources read file by file (the kustomization promises plain, complete files)."""
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in _documents((BASE / name).read_text())]


def _rendered() -> list[dict]:
    """``kubectl kustomize`` of the base where kubectl exists; else the files as they are."""
    if shutil.which("kubectl") is None:
        return _file_resources()
    rendered = subprocess.run(["kubectl", "kustomize", str(BASE)], capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    return _documents(rendered.stdout)


RENDERED = _rendered()
EXAMPLES = _documents((KUBERNETES / "secret.example.yaml").read_text())


def _named(kind: str, name: str) -> dict:
    [found] = [r for r in RENDERED if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def _pod_templates() -> list[tuple[str, dict]]:
    return [
        (r["metadata"]["name"], r["spec"]["template"]) for r in RENDERED if r["kind"] in ("Deployment", "Job")
    ]


def _selects(selector: dict[str, str], template: dict) -> bool:
    labels = template["metadata"]["labels"]
    return all(labels.get(key) == value for key, value in selector.items())


def _image_env(name: str) -> str:
    """A variable the Dockerfile sets (``ENV NAME=value`` or ``ARG NAME=value``)."""
    return re.search(rf"\b{name}=(\S+)", DOCKERFILE).group(1)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    "resource", RENDERED + EXAMPLES, ids=lambda r: f"{r['kind']}/{r['metadata']['name']}"
)
def test_every_manifest_validates_strictly(resource, version):
    # A kind without a schema raises SchemaNotFoundError (where the CLI only warns): a failure here.
    try:
        kubernetes_validate.validate(resource, version, strict=True)
        error = None
    except kubernetes_validate.ValidationError as exc:
        error = f"{'.'.join(map(str, exc.path))}: {exc.message}"
    assert error is None, error


def test_the_base_is_its_files_as_written():
    """What kustomize renders is each file unchanged: so `kubectl apply -f` of one file (the migrate Job first) is right."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: the files are validated as they are")

    def key(resource: dict) -> tuple[str, str]:
        return resource["kind"], resource["metadata"]["name"]

    assert sorted(RENDERED, key=key) == sorted(_file_resources(), key=key)


def test_the_base_has_the_parts_of_a_deployment():
    kinds = sorted((r["kind"], r["metadata"]["name"]) for r in RENDERED)
    assert kinds == [
        ("ConfigMap", "coe-template"),
        ("Deployment", "coe-template-api"),
        ("Deployment", "coe-template-worker"),
        ("HorizontalPodAutoscaler", "coe-template-api"),
        ("Job", "coe-template-migrate"),
        ("PodDisruptionBudget", "coe-template-api"),
        ("Service", "coe-template"),
    ]


def test_every_probe_is_a_get_operation_of_the_spec_on_a_port_of_its_container():
    probes = 0
    for _name, template in _pod_templates():
        for container in template["spec"]["containers"]:
            ports = {port["name"]: port["containerPort"] for port in container.get("ports", [])}
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                if kind in container:
                    probe = container[kind]["httpGet"]
                    assert "get" in SPEC["paths"][probe["path"]], probe
                    assert probe["port"] in ports, probe
                    probes += 1
    api = _named("Deployment", "coe-template-api")["spec"]["template"]["spec"]["containers"][0]
    assert (api["readinessProbe"]["httpGet"]["path"], api["livenessProbe"]["httpGet"]["path"]) == (
        "/readyz",
        "/livez",
    )
    assert probes == 3


def test_the_service_sends_to_the_api_pods_on_the_port_the_image_exposes():
    service = _named("Service", "coe-template")
    selected = [
        name for name, template in _pod_templates() if _selects(service["spec"]["selector"], template)
    ]
    assert selected == ["coe-template-api"]
    [container] = _named("Deployment", "coe-template-api")["spec"]["template"]["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    [port] = service["spec"]["ports"]
    target = port["targetPort"]
    exposed = int(re.search(r"^EXPOSE (\d+)$", DOCKERFILE, re.MULTILINE).group(1))
    assert (ports[target] if isinstance(target, str) else target) == exposed


def test_the_autoscaler_and_the_disruption_budget_apply_to_the_api():
    hpa = _named("HorizontalPodAutoscaler", "coe-template-api")["spec"]
    assert (hpa["scaleTargetRef"]["kind"], hpa["scaleTargetRef"]["name"]) == (
        "Deployment",
        "coe-template-api",
    )
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
    assert hpa["minReplicas"] == _named("Deployment", "coe-template-api")["spec"]["replicas"]
    pdb = _named("PodDisruptionBudget", "coe-template-api")["spec"]
    selected = [name for name, t in _pod_templates() if _selects(pdb["selector"]["matchLabels"], t)]
    assert selected == ["coe-template-api"]


def test_every_pod_runs_non_root_read_only_with_bounded_resources_and_its_writable_paths_mounted():
    store = _image_env("COE_MODEL_STORE")
    for name, template in _pod_templates():
        spec = template["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        # The image's user: its files (the model-store volume's mount point) are that user's.
        assert spec["securityContext"]["runAsUser"] == int(_image_env("UID")), name
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert set(container["resources"]) == {"requests", "limits"}, name
            assert set(container["resources"]["limits"]) == {"cpu", "memory"}, name
            mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
            assert {store, "/tmp"} <= mounts, name


def test_every_pod_reads_the_shared_settings_and_the_secret_of_the_example():
    [secret] = EXAMPLES
    config_map = _named("ConfigMap", "coe-template")
    assert {"DATABASE_URL", "COE_ADMIN_KEYS", "COE_READ_KEYS"} == set(secret["stringData"])
    settings = config_map["data"]
    # The API pods serve only: batch chunks and trainings go to the worker pods.
    assert (
        settings["COE_ARTIFACT_STORE"],
        settings["COE_BATCH_IN_SERVER"],
        settings["COE_TRAINING_IN_SERVER"],
    ) == ("db", "false", "false")
    for name, template in _pod_templates():
        [container] = template["spec"]["containers"]
        sources = [(kind, ref["name"]) for source in container["envFrom"] for kind, ref in source.items()]
        assert sources == [
            ("configMapRef", config_map["metadata"]["name"]),
            ("secretRef", secret["metadata"]["name"]),
        ], name


def test_the_job_migrates_the_schema_before_training_the_first_model():
    job = _named("Job", "coe-template-migrate")
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["sh", "-c", "coe-template db upgrade && coe-template train --if-missing"]


@pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl renders the overlay; it is not installed"
)
def test_the_example_overlay_names_the_image_of_every_pod_and_the_first_apply_selects_the_job_and_its_settings():
    overlay = KUBERNETES / "overlays" / "example"
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, timeout=60
    )
    assert rendered.returncode == 0, rendered.stderr
    resources = _documents(rendered.stdout)
    images = {
        container["image"]
        for r in resources
        if r["kind"] in ("Deployment", "Job")
        for container in r["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"registry.example.com/coe-template:0.1.0"}
    first = [
        (r["kind"], r["metadata"]["name"])
        for r in resources
        if r["metadata"]["labels"].get("app.kubernetes.io/component") in ("config", "migrate")
    ]
    assert sorted(first) == [("ConfigMap", "coe-template"), ("Job", "coe-template-migrate")]
