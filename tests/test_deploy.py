"""deploy/: the Prometheus alerting rules and the Grafana dashboard are well formed and name
only metrics the platform exports (a renamed metric must not leave a silent alert behind)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import Counter, Gauge, Histogram

from integrationos import metrics

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
_NAME = re.compile(r"\b(ios_[a-z0-9_]+)")
_HISTOGRAM_SERIES = re.compile(r"_(bucket|count|sum)$")
PROMETHEUS_BUILT_INS = {"up"}  # Prometheus' own per-target series


def exported() -> set[str]:
    """Every series name the platform's processes export (a histogram with its series)."""
    names = {"ios_dlq_messages"}  # collected from the projection when scraped
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names.add(f"{value._name}_total")
        elif isinstance(value, Gauge):
            names.add(value._name)
        elif isinstance(value, Histogram):
            names.update(f"{value._name}{suffix}" for suffix in ("", "_bucket", "_count", "_sum"))
    return names


def _check_expression(expr: str, known: set[str]) -> set[str]:
    named = set(_NAME.findall(expr))
    unknown = named - known
    assert not unknown, f"{expr!r} names metrics nobody exports: {unknown}"
    return named


def test_the_alert_rules_parse_and_name_only_exported_metrics():
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    groups = {group["name"]: group["rules"] for group in rules["groups"]}
    assert set(groups) == {"integrationos-pipeline", "integrationos-platform"}
    known = exported()
    used = set()
    alerts = [rule for group in groups.values() for rule in group]
    for rule in alerts:
        assert rule["alert"].startswith("IntegrationOS")
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        named = _check_expression(rule["expr"], known)
        assert named or set(re.findall(r"\b[a-z_]+(?=\{)", rule["expr"])) <= \
            PROMETHEUS_BUILT_INS, rule["expr"]
        used |= named
    assert len({rule["alert"] for rule in alerts}) == len(alerts)
    assert {"ios_dlq_messages", "ios_consumer_lag_records", "ios_connector_up",
            "ios_messages_failed_total"} <= used


def test_the_dashboard_queries_name_only_exported_metrics():
    dashboard = json.loads((DEPLOY / "grafana" / "integrationos.json").read_text())
    assert dashboard["uid"] == "integrationos"
    known = exported()
    targets: list[dict[str, Any]] = [t for p in dashboard["panels"] for t in p["targets"]]
    variables = dashboard["templating"]["list"]
    expressions = [t["expr"] for t in targets] + [v["definition"] for v in variables]
    used = set()
    for expr in expressions:
        used |= _check_expression(expr, known)
        assert expr.count("(") == expr.count(")"), expr
    panel_ids = [p["id"] for p in dashboard["panels"]]
    assert len(set(panel_ids)) == len(panel_ids)
    # every metric the platform exports is on the dashboard
    assert {_HISTOGRAM_SERIES.sub("", n) for n in known} == {
        _HISTOGRAM_SERIES.sub("", n) for n in used}


def test_prometheus_scrapes_the_api_and_every_worker_with_the_rules():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"integrationos-api", "integrationos-worker"}
    assert jobs["integrationos-worker"]["dns_sd_configs"][0]["port"] == 9464
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    compose = yaml.safe_load((DEPLOY.parent / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["worker"]["environment"]["IOS_WORKER_METRICS_PORT"] == "9464"
    mounted = " ".join(services["prometheus"]["volumes"] + services["grafana"]["volumes"])
    for name in ("prometheus.yml", "alerts.yml", "provisioning", "integrationos.json"):
        assert name in mounted
