"""Render the chart with the pinned helm and look at the result as Python objects.

Every test goes through `render`, which runs `helm template` exactly as a
user's `helm install` would render (values file, schema validation, fail
messages), and returns the parsed manifests.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "tandem"
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
# The oldest and newest Kubernetes the chart supports (Chart.yaml kubeVersion).
KUBE_VERSIONS = ("1.29.0", "1.37.0")
RELEASE = "tandem"
NAMESPACE = "inference"

Manifest = dict[str, Any]


def helm_binary() -> str:
    """The pinned helm that `make chart-tools` builds (HELM overrides)."""
    path = os.environ.get("HELM") or str(ROOT / ".tools" / "bin" / "helm")
    if not Path(path).is_file():
        raise RuntimeError(f"no helm at {path}: run `make chart-tools` (or set HELM)")
    return path


class RenderError(Exception):
    """`helm template` refused the values; the message is helm's stderr."""


@dataclass(frozen=True)
class Rendered:
    """The manifests of one render."""

    docs: tuple[Manifest, ...]

    def all(self, kind: str) -> list[Manifest]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str) -> Manifest:
        found = [d for d in self.all(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"want one {kind} {name}, found {len(found)}"
        return found[0]

    def deployment(self, component: str) -> Manifest:
        return self.one("Deployment", f"{RELEASE}-{component}")

    def container(self, component: str) -> Manifest:
        containers = self.deployment(component)["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1
        return containers[0]

    def configmap(self, component: str) -> dict[str, str]:
        return self.one("ConfigMap", f"{RELEASE}-{component}")["data"]

    def env(self, component: str) -> dict[str, str]:
        """The container's environment as the process sees it: ConfigMap, then env."""
        container = self.container(component)
        merged: dict[str, str] = {}
        for source in container.get("envFrom", []):
            cm = self.one("ConfigMap", source["configMapRef"]["name"])
            merged.update(cm["data"])
        for var in container.get("env", []):
            merged[var["name"]] = var.get("value", "<valueFrom>")
        return merged

    def pod_specs(self) -> Iterator[tuple[str, Manifest]]:
        """Every pod spec: Deployments' templates and bare Pods (the helm test)."""
        for doc in self.docs:
            name = f"{doc['kind']}/{doc['metadata']['name']}"
            if doc["kind"] == "Deployment":
                yield name, doc["spec"]["template"]["spec"]
            elif doc["kind"] == "Pod":
                yield name, doc["spec"]


def render(
    *values_files: Path,
    values: Mapping[str, Any] | None = None,
    kube_version: str = KUBE_VERSIONS[-1],
    release: str = RELEASE,
    namespace: str = NAMESPACE,
) -> Rendered:
    """`helm template` with values files and/or a values mapping (written to a file, so
    types survive exactly as in a user's values.yaml)."""
    key = json.dumps(
        [[str(f) for f in values_files], values or {}, kube_version, release, namespace],
        sort_keys=True,
    )
    return _render_cached(key)


@functools.lru_cache(maxsize=512)
def _render_cached(key: str) -> Rendered:
    files, values, kube_version, release, namespace = json.loads(key)
    return render_chart(
        CHART, values, ["--kube-version", kube_version], files, release=release, namespace=namespace
    )


def render_chart(
    chart: Path,
    values: Mapping[str, Any],
    flags: list[str],
    values_files: list[str] | None = None,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
) -> Rendered:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as extra:
        yaml.safe_dump(dict(values), extra)
        extra.flush()
        args = [helm_binary(), "template", release, str(chart), "--namespace", namespace, *flags]
        for f in [*(values_files or []), extra.name]:
            args += ["--values", f]
        result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    return Rendered(tuple(d for d in yaml.safe_load_all(result.stdout) if d))


def render_error(*values_files: Path, values: Mapping[str, Any] | None = None) -> str:
    """Render values the chart must refuse; return helm's message."""
    try:
        render(*values_files, values=values)
    except RenderError as e:
        return str(e)
    raise AssertionError(f"helm template accepted values it must refuse: {values}")


def notes(values: Mapping[str, Any] | None = None) -> str:
    """NOTES.txt rendered with the given values. `helm template` never renders NOTES.txt
    (and a client-side `helm install --dry-run` still wants a cluster), so a copy of the
    chart carries its text as a named template inside a ConfigMap."""
    with tempfile.TemporaryDirectory() as tmp:
        chart = Path(tmp) / "tandem"
        shutil.copytree(CHART, chart)
        text = (chart / "templates" / "NOTES.txt").read_text()
        (chart / "templates" / "NOTES.txt").unlink()
        (chart / "templates" / "_notes_under_test.tpl").write_text(
            '{{- define "notes.under.test" -}}\n' + text + "{{- end -}}\n"
        )
        (chart / "templates" / "notes_under_test.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
            'data: {{ dict "notes" (include "notes.under.test" .) | toYaml | nindent 2 }}\n'
        )
        rendered = render_chart(
            chart, values or {}, ["--show-only", "templates/notes_under_test.yaml"]
        )
    return str(rendered.docs[0]["data"]["notes"])


def mib(quantity: str) -> int:
    """A memory quantity as the chart renders the derived ones: whole MiB."""
    assert quantity.endswith("Mi"), f"memory {quantity!r} should be rendered in Mi"
    return int(quantity.removesuffix("Mi"))


def scenario(name: str) -> Path:
    path = CHART / "ci" / f"{name}-values.yaml"
    assert path.is_file(), path
    return path


KEDA_CRD_DIR = ROOT / ".tools" / "crds"


def _strict(schema: Any) -> Any:
    """A CRD schema with unknown fields forbidden wherever it lists its fields."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        lists_fields = "properties" in schema and "additionalProperties" not in schema
        if lists_fields and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def keda_scaled_object_schema() -> dict[str, Any]:
    """The ScaledObject schema of the KEDA the CI cluster runs (`make chart-tools`
    copies its CRDs from the Go module proxy into .tools/crds/), made strict."""
    crds = sorted(KEDA_CRD_DIR.glob("keda-*/keda.sh_scaledobjects.yaml"))
    if not crds:
        raise FileNotFoundError(f"no KEDA CRD under {KEDA_CRD_DIR}: run 'make chart-tools'")
    crd = yaml.safe_load(crds[-1].read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema: dict[str, Any] = _strict(version["schema"]["openAPIV3Schema"])
    # metadata is the API server's ObjectMeta, which the CRD does not describe.
    schema["properties"]["metadata"] = {"type": "object"}
    return schema
