"""Vendor severities to OCSF `severity_id`: one table per vendor, documented in docs/SIEMS.md.

The tables are data, not code, so the documentation can be checked against them (a test
renders them and looks for the result in docs/SIEMS.md). A value a table does not know
maps to `Unknown` (0) rather than a guess: the policy sees that the vendor said nothing
it understood, and the raw payload keeps what the vendor did say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contracts.findings import ConfidenceId, SeverityId
from orchestrator.ingest.connectors.fields import scalar

S = SeverityId


@dataclass(frozen=True)
class Labels:
    """Case-insensitive labels (or numbers written as text) to a severity."""

    field: str  # the vendor field, as the documentation names it
    labels: Mapping[str, SeverityId]

    def __call__(self, value: Any) -> SeverityId:
        text = scalar(value)
        if text is None:
            return S.UNKNOWN
        return self.labels.get(text.lower(), S.UNKNOWN)

    def knows(self, value: Any) -> bool:
        text = scalar(value)
        return text is not None and text.lower() in self.labels


@dataclass(frozen=True)
class Ranges:
    """Inclusive integer ranges to a severity (Wazuh rule levels, Elastic risk scores)."""

    field: str
    ranges: tuple[tuple[int, int, SeverityId], ...]

    def __call__(self, value: Any) -> SeverityId:
        text = scalar(value)
        try:
            number = int(float(text)) if text is not None else None
        except (ValueError, OverflowError):
            number = None
        if number is None:
            return S.UNKNOWN
        for low, high, severity in self.ranges:
            if low <= number <= high:
                return severity
        return S.UNKNOWN


# Splunk: the alert action sends no severity of its own, so the search supplies one: ES
# notables carry `urgency`; other searches `| eval severity=...` (a label, or Splunk's own
# 1-6 alert severity scale: debug, info, warn, error, severe, fatal).
SPLUNK = Labels(
    "result.urgency, else result.severity",
    {
        "informational": S.INFORMATIONAL,
        "info": S.INFORMATIONAL,
        "low": S.LOW,
        "medium": S.MEDIUM,
        "high": S.HIGH,
        "critical": S.CRITICAL,
        "1": S.INFORMATIONAL,
        "2": S.INFORMATIONAL,
        "3": S.MEDIUM,
        "4": S.HIGH,
        "5": S.CRITICAL,
        "6": S.FATAL,
    },
)

# Elastic Security: rule severity is one of four labels; risk score (0-100) is the fallback,
# bucketed the way Kibana itself derives a default severity from it.
ELASTIC = Labels(
    "kibana.alert.severity, else context.rule.severity",
    {"low": S.LOW, "medium": S.MEDIUM, "high": S.HIGH, "critical": S.CRITICAL},
)
ELASTIC_RISK = Ranges(
    "kibana.alert.risk_score, else context.rule.risk_score",
    ((0, 21, S.LOW), (22, 47, S.MEDIUM), (48, 73, S.HIGH), (74, 100, S.CRITICAL)),
)

# Microsoft Sentinel incidents have four severities; there is no "critical".
SENTINEL = Labels(
    "object.properties.severity",
    {
        "informational": S.INFORMATIONAL,
        "low": S.LOW,
        "medium": S.MEDIUM,
        "high": S.HIGH,
    },
)

# Wazuh rule levels 0-16, bucketed like the Wazuh dashboard (low 0-6, medium 7-11, high
# 12-14, critical 15+), with 0-2 (ignored / system notifications) as informational.
WAZUH = Ranges(
    "rule.level",
    (
        (0, 2, S.INFORMATIONAL),
        (3, 6, S.LOW),
        (7, 11, S.MEDIUM),
        (12, 14, S.HIGH),
        (15, 16, S.CRITICAL),
    ),
)

# Suricata: ET rulesets tag `signature_severity` in the alert metadata; it wins when present.
# Otherwise `alert.severity` is the classification priority, where 1 is the most severe.
SURICATA_METADATA = Labels(
    "alert.metadata.signature_severity",
    {
        "critical": S.CRITICAL,
        "major": S.HIGH,
        "minor": S.LOW,
        "informational": S.INFORMATIONAL,
    },
)
SURICATA_PRIORITY = Ranges(
    "alert.severity (priority)",
    ((1, 1, S.HIGH), (2, 2, S.MEDIUM), (3, 3, S.LOW), (4, 255, S.INFORMATIONAL)),
)

# Falco priorities are syslog's; "emergency" (system unusable) is OCSF's "fatal".
FALCO = Labels(
    "priority",
    {
        "emergency": S.FATAL,
        "alert": S.CRITICAL,
        "critical": S.CRITICAL,
        "error": S.HIGH,
        "warning": S.MEDIUM,
        "notice": S.LOW,
        "informational": S.INFORMATIONAL,
        "info": S.INFORMATIONAL,
        "debug": S.INFORMATIONAL,
    },
)

# Prometheus has no standard severities; these are the labels alerting rules commonly use
# ("page", from Prometheus' own examples, means someone is woken up).
ALERTMANAGER = Labels(
    "alerts[].labels.severity",
    {
        "critical": S.CRITICAL,
        "page": S.HIGH,
        "high": S.HIGH,
        "error": S.HIGH,
        "warning": S.MEDIUM,
        "warn": S.MEDIUM,
        "medium": S.MEDIUM,
        "low": S.LOW,
        "info": S.INFORMATIONAL,
        "informational": S.INFORMATIONAL,
        "none": S.INFORMATIONAL,
    },
)

# Every table, by source, in the order docs/SIEMS.md shows them.
TABLES: dict[str, tuple[Labels | Ranges, ...]] = {
    "splunk": (SPLUNK,),
    "elastic": (ELASTIC, ELASTIC_RISK),
    "sentinel": (SENTINEL,),
    "wazuh": (WAZUH,),
    "suricata": (SURICATA_METADATA, SURICATA_PRIORITY),
    "falco": (FALCO,),
    "alertmanager": (ALERTMANAGER,),
}

CONFIDENCE = {"low": ConfidenceId.LOW, "medium": ConfidenceId.MEDIUM, "high": ConfidenceId.HIGH}


def confidence(value: Any) -> ConfidenceId:
    text = scalar(value)
    return CONFIDENCE.get(text.lower(), ConfidenceId.UNKNOWN) if text else ConfidenceId.UNKNOWN


def first_known(*candidates: tuple[Labels | Ranges, Any]) -> SeverityId:
    """The first candidate its table understands; Unknown when none does."""
    for table, value in candidates:
        severity = table(value)
        if severity is not S.UNKNOWN:
            return severity
    return S.UNKNOWN
