"""Every webhook source Bulkhead knows, by the name in POST /v1/webhooks/{source}."""

from __future__ import annotations

from orchestrator.connectors.alertmanager import AlertmanagerConnector
from orchestrator.connectors.base import Connector
from orchestrator.connectors.elastic import ElasticConnector
from orchestrator.connectors.falco import FalcoConnector
from orchestrator.connectors.generic import GenericConnector
from orchestrator.connectors.sentinel import SentinelConnector
from orchestrator.connectors.splunk import SplunkConnector
from orchestrator.connectors.suricata import SuricataConnector
from orchestrator.connectors.wazuh import WazuhConnector

CONNECTORS: dict[str, Connector] = {
    c.source: c
    for c in (
        GenericConnector(),
        SplunkConnector(),
        ElasticConnector(),
        SentinelConnector(),
        WazuhConnector(),
        SuricataConnector(),
        FalcoConnector(),
        AlertmanagerConnector(),
    )
}
