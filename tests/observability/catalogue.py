"""The metrics catalogue of ``docs/metrics.md`` and the monitoring artefacts, as test data.

The catalogue table is parsed from the document itself, so the tests compare the code's
metrics with what operators read; :func:`promql_metrics` finds the metric names an
expression selects, so the dashboard and the alerts can be checked against the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

ROOT = Path(__file__).resolve().parents[2]
METRICS_DOC = ROOT / "docs" / "metrics.md"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"
RULES = ROOT / "deploy" / "monitoring" / "prometheusrule.yaml"
DASHBOARD = ROOT / "deploy" / "monitoring" / "grafana-dashboard.json"

TYPES = {"counter", "gauge", "histogram"}
#: labels a histogram's bucket series adds to the documented ones
_SERIES_LABELS = {"le"}


@dataclass(frozen=True)
class Entry:
    """One row of the catalogue: ``name`` as PromQL sees it (counters end in ``_total``)."""

    name: str
    type: str
    labels: frozenset[str]
    meaning: str

    @property
    def family(self) -> str:
        """The family name in the exposition (a counter's without ``_total``)."""
        return self.name.removesuffix("_total") if self.type == "counter" else self.name


def _cells(line: str) -> list[str]:
    # a literal | inside a cell is written \| (GitHub markdown)
    parts = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [part.strip().replace("\\|", "|") for part in parts]


def markdown_table(text: str, header: Iterable[str]) -> list[list[str]]:
    """The rows of the first table of ``text`` whose header row is ``header``."""
    wanted = list(header)
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("|") and _cells(line) == wanted:
            rows = []
            for row in lines[index + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(_cells(row))
            return rows
    raise AssertionError(f"no table with the header {wanted}")


def _code(cell: str) -> str:
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match, f"expected a `code` cell, got {cell!r}"
    return match.group(1)


def catalogue(text: str | None = None) -> dict[str, Entry]:
    """The catalogue table of docs/metrics.md, by metric name."""
    rows = markdown_table(
        METRICS_DOC.read_text() if text is None else text, ["Metric", "Type", "Labels", "Meaning"]
    )
    entries: dict[str, Entry] = {}
    for name_cell, type_cell, labels_cell, meaning in rows:
        name = _code(name_cell)
        assert type_cell in TYPES, f"{name}: unknown type {type_cell!r}"
        labels = (
            frozenset()
            if labels_cell == "—"
            else frozenset(_code(cell.strip()) for cell in labels_cell.split(","))
        )
        assert name not in entries, f"{name} is catalogued twice"
        assert (type_cell == "counter") == name.endswith("_total"), f"{name}: counter naming"
        entries[name] = Entry(name, type_cell, labels, meaning)
    return entries


@dataclass(frozen=True)
class Family:
    name: str
    type: str
    samples: tuple[Sample, ...]

    def values(self, **labels: str) -> list[float]:
        """The values of the samples (of the main series) carrying ``labels``."""
        main = {self.name, f"{self.name}_total", f"{self.name}_count"}
        return [
            sample.value
            for sample in self.samples
            if sample.name in main and labels.items() <= sample.labels.items()
        ]

    def value(self, **labels: str) -> float:
        found = self.values(**labels)
        assert len(found) == 1, f"{self.name}{labels}: {len(found)} series"
        return found[0]


def scrape_families(text: str) -> dict[str, Family]:
    """The ``netweave_`` families of an exposition, ``_created`` companions folded in."""
    parsed = {family.name: family for family in text_string_to_metric_families(text)}
    families: dict[str, Family] = {}
    for name, family in parsed.items():
        if not name.startswith("netweave_"):
            continue
        base = name.removesuffix("_created")
        if base != name and base in parsed and parsed[base].type in ("counter", "histogram"):
            continue
        families[name] = Family(name, family.type, tuple(family.samples))
    return families


def sample_labels(family: Family) -> Iterator[frozenset[str]]:
    """The label names of each sample, without those the series kind adds (``le``)."""
    for sample in family.samples:
        yield frozenset(sample.labels) - _SERIES_LABELS


# PromQL -------------------------------------------------------------------------------

_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}
_LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def promql_metrics(expr: str) -> set[str]:
    """The metric names ``expr`` selects (functions, keywords and labels left out)."""
    text = _STRINGS.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges, [$__rate_interval] included
    text = _LABEL_LISTS.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group(0)
        if match.start() and (text[match.start() - 1].isdigit() or text[match.start() - 1] == "."):
            continue  # the unit of a duration or the exponent of a number (5m, 1e3)
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or word.lower() in _KEYWORDS:
            continue  # a function or aggregation, or an operator keyword
        names.add(word)
    return names


def catalogued(name: str, entries: dict[str, Entry]) -> bool:
    """Whether ``name`` is a series of a catalogued metric (a histogram's _bucket too)."""
    if name in entries:
        return True
    for suffix in _HISTOGRAM_SERIES:
        base = name.removesuffix(suffix)
        if base != name and entries.get(base, None) is not None:
            return entries[base].type == "histogram"
    return False


def rule_groups() -> list[dict[str, Any]]:
    """The ``spec.groups`` of the PrometheusRule."""
    document = yaml.safe_load(RULES.read_text())
    assert document["apiVersion"] == "monitoring.coreos.com/v1"
    assert document["kind"] == "PrometheusRule"
    groups: list[dict[str, Any]] = document["spec"]["groups"]
    return groups


def alerts() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of ``markdown``."""
    anchors = set()
    for line in markdown.splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            title = match.group(1).strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors
