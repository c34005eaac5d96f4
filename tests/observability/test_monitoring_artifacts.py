"""The PrometheusRule, the Grafana dashboard and the runbook, checked against the catalogue.

``promtool check rules`` validates the rule groups (syntax, PromQL, annotation templates);
``promtool test rules`` evaluates every alert on synthetic series: it must fire on a
faulty gateway and stay silent on a healthy one.  The alert table of docs/metrics.md must
say what the rules say, every runbook link must land on a section of docs/operations.md,
and every PromQL expression of the rules and the dashboard may only name catalogued
metrics (``up``, Prometheus' own, is allowed in the rules).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.observability.catalogue import (
    DASHBOARD,
    METRICS_DOC,
    OPERATIONS_DOC,
    alerts,
    catalogue,
    catalogued,
    github_anchors,
    markdown_table,
    promql_metrics,
    rule_groups,
)
from tests.observability.promtool import promtool

GATEWAY = 'job="netweave", namespace="o2", instance="10.0.0.1:8080"'
SEVERITIES = {"critical", "warning"}


def _series(name: str, values: str, **labels: str) -> dict[str, str]:
    extra = "".join(f', {key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{GATEWAY}{extra}}}", "values": values}


def _fires(alert: str, at: str, **labels: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": [{"exp_labels": labels}]}


def _silent(alert: str, at: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


GW = {"job": "netweave", "namespace": "o2"}
INSTANCE = {**GW, "instance": "10.0.0.1:8080"}
ROUTE = {"route": "/o2ims-infrastructureInventory/v1/resourcePools", "method": "GET"}

#: (input series, expectations) per scenario; every alert appears firing and silent
SCENARIOS: dict[str, tuple[list[dict[str, str]], list[dict[str, Any]]]] = {
    "unhealthy gateway": (
        [
            _series("netweave_http_requests_total", "0+600x30", status="500", **ROUTE),
            _series("netweave_http_requests_total", "0+600x30", status="200", **ROUTE),
            _series("up", "0x30"),
            _series("netweave_inventory_view_ready", "0x30", backend="kubernetes"),
            _series("netweave_backend_watch_up", "0x30", backend="kubernetes"),
            _series(
                "netweave_backend_watch_restarts_total",
                "0+1x30",
                backend="kubernetes",
                cause="error",
            ),
            _series("netweave_outbox_depth", "0+20x40"),
            _series(
                "netweave_deliveries_dead_lettered_total",
                "0x10 1x20",
                reason="http_4xx",
                cause="permanent",
            ),
            _series("netweave_notifications_dropped_total", "0x10 5x20"),
            _series("netweave_notification_emitter", "0x30"),
            _series("netweave_delivery_latency_seconds_bucket", "0x30", le="1"),
            _series("netweave_delivery_latency_seconds_bucket", "0x30", le="60"),
            _series("netweave_delivery_latency_seconds_bucket", "0+60x30", le="3600"),
            _series("netweave_delivery_latency_seconds_bucket", "0+60x30", le="+Inf"),
            _series("netweave_auth_failures_total", "0+60x30", reason="unavailable"),
            _series("netweave_auth_failures_total", "0+300x30", reason="invalid_token"),
            _series("netweave_alarms_active", "0x5 2x25", severity="critical"),
        ],
        [
            _fires("NetweaveHigh5xxRatio", "20m", severity="critical", **GW),
            _fires("NetweaveDown", "20m", severity="critical", **INSTANCE),
            _fires(
                "NetweaveNotReady", "20m", severity="critical", backend="kubernetes", **INSTANCE
            ),
            _fires(
                "NetweaveWatchStalled", "20m", severity="critical", backend="kubernetes", **INSTANCE
            ),
            _fires(
                "NetweaveWatchRestarting",
                "20m",
                severity="warning",
                backend="kubernetes",
                **INSTANCE,
            ),
            _fires("NetweaveOutboxGrowing", "30m", severity="warning", **GW),
            _fires("NetweaveDeadLetters", "15m", severity="warning", **GW),
            _fires("NetweaveNotificationsDropped", "15m", severity="critical", **GW),
            _fires("NetweaveNoEmitter", "20m", severity="critical", **GW),
            _fires("NetweaveDeliveryLatencyHigh", "28m", severity="warning", **GW),
            _fires("NetweaveAuthUnavailable", "20m", severity="critical", **GW),
            _fires(
                "NetweaveAuthFailuresHigh", "20m", severity="warning", reason="invalid_token", **GW
            ),
            _fires("NetweaveCriticalAlarmsActive", "20m", severity="critical", **GW),
        ],
    ),
    "healthy gateway": (
        [
            _series("netweave_http_requests_total", "0+6x30", status="500", **ROUTE),
            _series("netweave_http_requests_total", "0+600x30", status="200", **ROUTE),
            _series("up", "1x30"),
            _series("netweave_inventory_view_ready", "1x30", backend="kubernetes"),
            _series("netweave_backend_watch_up", "1x30", backend="kubernetes"),
            _series(
                "netweave_backend_watch_restarts_total", "0x30", backend="kubernetes", cause="error"
            ),
            _series("netweave_outbox_depth", "3x40"),
            _series(
                "netweave_deliveries_dead_lettered_total",
                "0x30",
                reason="http_4xx",
                cause="permanent",
            ),
            _series("netweave_notifications_dropped_total", "0x30"),
            _series("netweave_notification_emitter", "1x30"),
            _series("netweave_delivery_latency_seconds_bucket", "0+60x30", le="1"),
            _series("netweave_delivery_latency_seconds_bucket", "0+60x30", le="60"),
            _series("netweave_delivery_latency_seconds_bucket", "0+60x30", le="3600"),
            _series("netweave_delivery_latency_seconds_bucket", "0+60x30", le="+Inf"),
            _series("netweave_auth_failures_total", "0x30", reason="unavailable"),
            _series("netweave_auth_failures_total", "0+6x30", reason="invalid_token"),
            _series("netweave_alarms_active", "0x30", severity="critical"),
            _series("netweave_alarms_active", "3x30", severity="major"),
        ],
        [
            _silent(alert, "28m")
            for alert in [
                "NetweaveHigh5xxRatio",
                "NetweaveDown",
                "NetweaveNotReady",
                "NetweaveWatchStalled",
                "NetweaveWatchRestarting",
                "NetweaveOutboxGrowing",
                "NetweaveDeadLetters",
                "NetweaveNotificationsDropped",
                "NetweaveNoEmitter",
                "NetweaveDeliveryLatencyHigh",
                "NetweaveAuthUnavailable",
                "NetweaveAuthFailuresHigh",
                "NetweaveCriticalAlarmsActive",
            ]
        ],
    ),
}


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    """The PrometheusRule's ``spec`` as a plain Prometheus rules file."""
    path = tmp_path / "netweave-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule_groups()}))
    return path


def _alert_names() -> set[str]:
    return {rule["alert"] for rule in alerts()}


# The PrometheusRule ---------------------------------------------------------------------------


def test_promtool_accepts_the_rules(rules_file: Path) -> None:
    checked = promtool("check", "rules", rules_file)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in checked.stdout


def test_every_alert_fires_on_a_faulty_gateway_and_not_on_a_healthy_one(tmp_path: Path) -> None:
    # the annotations are templates (checked above); the unit tests compare labels only
    groups = [
        {
            **group,
            "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in group["rules"]],
        }
        for group in rule_groups()
    ]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    tests = [
        {"interval": "1m", "input_series": series, "alert_rule_test": expectations}
        for series, expectations in SCENARIOS.values()
    ]
    for _series_list, expectations in SCENARIOS.values():
        assert {e["alertname"] for e in expectations} == _alert_names()
    spec = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    result = promtool("test", "rules", tmp_path / "tests.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_severity_summary_description_and_a_runbook_section() -> None:
    anchors = github_anchors(OPERATIONS_DOC.read_text())
    for rule in alerts():
        name = rule["alert"]
        assert re.fullmatch(r"Netweave[A-Za-z0-9]+", name), name
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        path, _, anchor = annotations["runbook_url"].partition("#")
        assert path == "docs/operations.md", name
        assert anchor == name.lower() and anchor in anchors, f"{name}: no section #{anchor}"


def test_alert_expressions_name_only_catalogued_metrics() -> None:
    entries = catalogue()
    for rule in alerts():
        named = promql_metrics(rule["expr"])
        assert named, rule["alert"]
        strangers = {name for name in named if not catalogued(name, entries)} - {"up"}
        assert not strangers, f"{rule['alert']}: {strangers}"


def test_the_alert_table_of_the_metrics_doc_says_what_the_rules_say() -> None:
    rows = markdown_table(
        METRICS_DOC.read_text(), ["Alert", "Severity", "PromQL (fires when true for `for`)", "For"]
    )
    documented = {
        row[0].strip("`"): (row[1], " ".join(row[2].strip("`").split()), row[3]) for row in rows
    }
    actual = {
        rule["alert"]: (
            rule["labels"]["severity"],
            " ".join(rule["expr"].split()),
            rule.get("for", "0m"),
        )
        for rule in alerts()
    }
    assert documented == actual


# The dashboard ------------------------------------------------------------------------------------


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # panels of collapsed rows
    return found


def _expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in _panels(dashboard)
        for target in panel.get("targets", [])
    ]


def test_the_dashboard_parses_and_queries_only_catalogued_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    entries = catalogue()
    expressions = _expressions(dashboard)
    assert expressions
    for title, expr in expressions:
        named = promql_metrics(expr)
        assert named, f"{title}: {expr}"
        strangers = {name for name in named if not catalogued(name, entries)}
        assert not strangers, f"{title}: {strangers}"
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((\w+),\s*\w+\)", variable["definition"])
            assert match and match.group(1) in entries, variable["definition"]
    ids = [panel["id"] for panel in _panels(dashboard)]
    assert len(ids) == len(set(ids))


def test_the_dashboard_shows_the_headline_figures() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    named = set().union(*(promql_metrics(expr) for _, expr in _expressions(dashboard)))
    wanted = {
        "netweave_http_requests_total",  # requests, 5xx ratio
        "netweave_http_request_duration_seconds_bucket",  # latency p50/p99
        "netweave_inventory_cache_lookups_total",  # cache hit ratio
        "netweave_inventory_view_objects",  # view size
        "netweave_backend_watch_restarts_total",
        "netweave_deliveries_succeeded_total",
        "netweave_deliveries_failed_total",
        "netweave_delivery_latency_seconds_bucket",
        "netweave_outbox_depth",
        "netweave_deliveries_dead_lettered_total",
        "netweave_auth_failures_total",
        "netweave_alarms_active",
    }
    assert wanted <= named, wanted - named
    quantiles = {
        re.search(r"histogram_quantile\(([0-9.]+)", expr).group(1)  # type: ignore[union-attr]
        for _, expr in _expressions(dashboard)
        if "netweave_http_request_duration_seconds_bucket" in expr
    }
    assert {"0.5", "0.99"} <= quantiles
