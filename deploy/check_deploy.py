"""What a schema cannot see in deploy/: every README setting reaches the container, and the
Grafana dashboard asks only for metrics Lineup exports (and shows each of them).

Usage: check_deploy.py RENDERED_DIR (the kustomize output of deploy/check)."""

import json
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Settings for the test harness, not the server.
TEST_ONLY = {"LINEUP_PG_BIN"}
# Where metric names are written: the HTTP edge, the scrape-time gauges, the provider adapter.
METRIC_SOURCES = [
    "src/metrics.rs",
    "core/src/provider/http/transport.rs",
    "core/src/provider/circuit.rs",
]
HISTOGRAM_SERIES = re.compile(r"_(bucket|sum|count)$")


def readme_settings():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", section, re.M))
    if not names:
        sys.exit("README.md: no settings found in the Configuration table")
    return names - TEST_ONLY


def container_settings(manifest):
    """Environment variable names the lineup server container gets."""
    docs = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    names = set()
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            names |= {e["name"] for e in container.get("env", [])}
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef")
                if ref:
                    names |= set(config_maps[ref["name"]])
    return names


def exported_metrics():
    names = set()
    for source in METRIC_SOURCES:
        names |= set(re.findall(r'"(lineup_[a-z_]+)"', (ROOT / source).read_text()))
    return names


def main():
    rendered = pathlib.Path(sys.argv[1])
    problems = []
    settings = readme_settings()
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name in sorted(settings - set(re.findall(r"[A-Z][A-Z0-9_]+", dockerfile))):
        problems.append(f"Dockerfile: the README setting {name} is not named")
    for manifest in sorted(rendered.glob("*.yaml")):
        for name in sorted(settings - container_settings(manifest)):
            problems.append(f"{manifest}: the README setting {name} does not reach the container")

    exported = exported_metrics()
    dashboard = json.loads((ROOT / "deploy/grafana/lineup.json").read_text())
    used = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            for series in re.findall(r"\blineup_[a-z_]+", target["expr"]):
                metric = series if series in exported else HISTOGRAM_SERIES.sub("", series)
                if metric not in exported:
                    problems.append(f"grafana panel {panel['title']!r}: {series} is not exported")
                used.add(metric)
    for metric in sorted(exported - used):
        problems.append(f"grafana: no panel shows {metric}")

    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"{len(settings)} settings reach the container; "
          f"{len(used)} metrics on the dashboard, all exported")


if __name__ == "__main__":
    main()
