"""Run the two images the way the chart runs them, on this machine's Docker.

    python deploy/images/smoke_test.py --core-image tandem-core:0.1.0 \
        --gateway-image tandem-gateway:0.1.0 --helm .tools/bin/helm --chart deploy/helm/tandem

(`make images-smoke`.) The gateway and one core per pool of the chart's
default `models` (fp32 and int8) get the chart's rendered settings and
its restrictions: read-only root filesystem, the image's non-root user, no
capabilities, no privilege escalation, and the CPU and memory limits the
chart derives. Then, in order:

1. each core's /readyz turns 200 (model loaded and warmed) within 60 s;
2. the gateway's /readyz turns 200 (it found a SERVING core), with every
   pool's model routed to its core by name (TANDEM_GATEWAY_UPSTREAM_POOLS);
3. the curl from NOTES.txt gets 384-dimensional embeddings;
4. the `helm test` pod's script passes for every model, in a container of the
   core image;
5. SIGTERM: each container drains and exits 0 within its grace period.

All traffic goes to 127.0.0.1 (published ports) or to the containers this
script started, on a network of its own, which it removes at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

# Upper bounds for each wait; a healthy run needs a few seconds in all.
READY_TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 10.0


def run(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=check)


def render(helm: str, chart: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The chart's default objects, by (kind, name)."""
    out = run(helm, "template", "smoke", chart, "--namespace", "smoke").stdout
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}


def notes_curl(helm: str, chart: str) -> list[str]:
    """The curl NOTES.txt prints. `helm template` does not render NOTES.txt, so it is
    rendered as the body of a ConfigMap in a scratch copy of the chart."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "chart"
        shutil.copytree(chart, copy)
        text = (copy / "templates" / "NOTES.txt").read_text()
        (copy / "templates" / "NOTES.txt").unlink()
        (copy / "templates" / "_smoke.tpl").write_text(
            '{{- define "smoke.notes" -}}\n' + text + "{{- end -}}\n"
        )
        (copy / "templates" / "smoke.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
            'data: {{ dict "notes" (include "smoke.notes" .) | toYaml | nindent 2 }}\n'
        )
        out = run(
            helm, "template", "smoke", str(copy), "--show-only", "templates/smoke.yaml"
        ).stdout
    notes = yaml.safe_load(out)["data"]["notes"]
    start = notes.index("curl ")
    return shlex.split(notes[start : notes.index("\n\n", start)].replace("\\\n", " "))


def mebibytes(quantity: str) -> str:
    assert quantity.endswith("Mi"), quantity
    return quantity.removesuffix("Mi") + "m"  # docker's "m" suffix is MiB


def cpus(quantity: str) -> str:
    return str(int(quantity.removesuffix("m")) / 1000) if quantity.endswith("m") else quantity


def restricted(pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    """docker run flags for the pod's security context and resources."""
    user = pod["securityContext"]
    flags = ["--read-only", "--user", f"{user['runAsUser']}:{user['runAsGroup']}"]
    flags += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    limits = container.get("resources", {}).get("limits", {})
    if "memory" in limits:
        flags += ["--memory", mebibytes(limits["memory"])]
    if "cpu" in limits:
        flags += ["--cpus", cpus(limits["cpu"])]
    return flags


def env_flags(env: dict[str, str]) -> list[str]:
    return [arg for name, value in env.items() for arg in ("--env", f"{name}={value}")]


def published(container: str, port: int) -> str:
    address = run("docker", "port", container, f"{port}/tcp").stdout.split()[0]
    return f"http://{address}"


def wait_ready(url: str, container: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < READY_TIMEOUT_S:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError):
            pass
        state = run("docker", "inspect", "--format", "{{.State.Status}}", container).stdout.strip()
        if state != "running":
            raise SystemExit(f"FAIL: {container} is {state}:\n{logs(container)}")
        time.sleep(0.25)
    raise SystemExit(
        f"FAIL: {url}/readyz not 200 within {READY_TIMEOUT_S:.0f} s:\n{logs(container)}"
    )


def logs(container: str) -> str:
    result = run("docker", "logs", "--tail", "30", container, check=False)
    return result.stdout + result.stderr


def stop(container: str, grace_s: int) -> float:
    start = time.monotonic()
    run("docker", "stop", "--time", str(grace_s), container, timeout=grace_s + 30)
    took = time.monotonic() - start
    code = run("docker", "inspect", "--format", "{{.State.ExitCode}}", container).stdout.strip()
    if code != "0":
        raise SystemExit(f"FAIL: {container} exited {code} on SIGTERM:\n{logs(container)}")
    if took >= grace_s:
        raise SystemExit(f"FAIL: {container} needed the whole grace period ({grace_s} s)")
    return took


def core_pools(
    objects: dict[tuple[str, str], dict[str, Any]], tag: str
) -> dict[str, tuple[str, dict[str, Any], dict[str, str]]]:
    """{model id: (container name, pod spec, environment)}, one per core pool, in the
    order of the gateway's rendered TANDEM_GATEWAY_UPSTREAM_POOLS."""
    pools = objects[("ConfigMap", "smoke-tandem-gateway")]["data"]["TANDEM_GATEWAY_UPSTREAM_POOLS"]
    out: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {}
    for pair in pools.split(","):
        model, target = pair.split("=", 1)
        service = target.removeprefix("dns:///").split(".", 1)[0]
        deployment = service.removesuffix("-headless")
        pod = objects[("Deployment", deployment)]["spec"]["template"]["spec"]
        env = dict(objects[("ConfigMap", deployment)]["data"])
        out[model] = (f"{tag}-{deployment.removeprefix('smoke-tandem-')}", pod, env)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--core-image", required=True)
    parser.add_argument("--gateway-image", required=True)
    parser.add_argument("--helm", required=True)
    parser.add_argument("--chart", required=True)
    args = parser.parse_args()

    objects = render(args.helm, args.chart)
    gateway_pod = objects[("Deployment", "smoke-tandem-gateway")]["spec"]["template"]["spec"]
    test_pod = objects[("Pod", "smoke-tandem-test-embeddings")]["spec"]
    gateway_env = dict(objects[("ConfigMap", "smoke-tandem-gateway")]["data"])
    gateway_env.update({e["name"]: e["value"] for e in gateway_pod["containers"][0].get("env", [])})

    tag = f"tandem-smoke-{os.getpid()}"
    gateway, network = f"{tag}-gateway", tag
    # One core container per pool (the chart's `models`), each with its pool's
    # rendered settings; Docker's DNS stands in for each pool's headless Service.
    cores = core_pools(objects, tag)
    gateway_env["TANDEM_GATEWAY_UPSTREAM_POOLS"] = ",".join(
        f"{model}=dns:///{name}:50051" for model, (name, _, _) in cores.items()
    )
    names = [name for name, _, _ in cores.values()]

    run("docker", "network", "create", network)
    try:
        for name, core_pod, core_env in cores.values():
            run(
                "docker", "run", "--detach", "--name", name, "--network", network,
                "--publish", "127.0.0.1::8000",
                *restricted(core_pod, core_pod["containers"][0]), *env_flags(core_env),
                args.core_image,
            )  # fmt: skip
        for name in names:
            core_ready_s = wait_ready(published(name, 8000), name)
            print(f"{name.removeprefix(tag + '-')} ready in {core_ready_s:.1f} s")

        run(
            "docker", "run", "--detach", "--name", gateway, "--network", network,
            "--publish", "127.0.0.1::8080",
            *restricted(gateway_pod, gateway_pod["containers"][0]), *env_flags(gateway_env),
            args.gateway_image,
        )  # fmt: skip
        gateway_url = published(gateway, 8080)
        gateway_ready_s = wait_ready(gateway_url, gateway)
        print(f"gateway ready in {gateway_ready_s:.1f} s")

        curl = [
            a.replace("http://127.0.0.1:8080", gateway_url)
            for a in notes_curl(args.helm, args.chart)
        ]
        answer = json.loads(
            run(*curl, "--fail-with-body", "--max-time", str(HTTP_TIMEOUT_S)).stdout
        )
        dimension = len(answer["data"][0]["embedding"])
        if dimension != 384:
            raise SystemExit(f"FAIL: NOTES.txt's curl got {dimension} dimensions")
        print(f"NOTES.txt curl: {dimension}-dimensional embedding from {answer['model']}")

        test = test_pod["containers"][0]
        result = run(
            "docker", "run", "--rm", "--network", network,
            *restricted(test_pod, test), "--env", f"GATEWAY_URL=http://{gateway}:8080",
            *env_flags({e["name"]: e["value"] for e in test["env"] if e["name"] == "MODELS"}),
            "--entrypoint", test["command"][0], args.core_image,
            *test["command"][1:], *test["args"],
            check=False, timeout=test_pod["activeDeadlineSeconds"],
        )  # fmt: skip
        if result.returncode != 0:
            raise SystemExit(f"FAIL: helm test script:\n{result.stdout}{result.stderr}")
        print(f"helm test script: {result.stdout.strip()}")

        stopping = [(gateway, gateway_pod)] + [(name, pod) for name, pod, _ in cores.values()]
        for name, pod in stopping:
            took = stop(name, int(pod["terminationGracePeriodSeconds"]))
            print(f"{name.removeprefix(tag + '-')}: SIGTERM -> exit 0 in {took:.1f} s")
    finally:
        run("docker", "rm", "--force", *names, gateway, check=False)
        run("docker", "network", "rm", network, check=False)
    print("images smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
