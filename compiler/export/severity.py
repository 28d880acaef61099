"""Per-vendor severity mapping (the table in docs/export.md).

siemc severities: informational, low, medium, high, critical. Elastic's risk scores follow the
bands Kibana documents for each severity (low 0-21, medium 22-47, high 48-73, critical 74-100);
Sentinel has no Critical severity, so critical maps to High; Splunk ES risk scores use the
same 0-100 scale as Elastic so one analytic scores alike in both.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VendorSeverity:
    splunk: str  # Splunk ES notable severity
    splunk_risk: int  # Splunk ES risk score
    elastic: str  # Kibana severity enum
    elastic_risk: int  # Kibana risk_score
    sentinel: str  # Sentinel alert severity
    sigma: str  # Sigma level


SEVERITY: dict[str, VendorSeverity] = {
    "informational": VendorSeverity(
        "informational", 10, "low", 10, "Informational", "informational"
    ),
    "low": VendorSeverity("low", 21, "low", 21, "Low", "low"),
    "medium": VendorSeverity("medium", 47, "medium", 47, "Medium", "medium"),
    "high": VendorSeverity("high", 73, "high", 73, "High", "high"),
    "critical": VendorSeverity("critical", 99, "critical", 99, "High", "critical"),
}


def severity(name: str) -> VendorSeverity:
    return SEVERITY[name]
