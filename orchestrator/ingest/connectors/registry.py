"""Every webhook source Bulkhead knows, by the name in POST /v1/webhooks/{source}."""

from __future__ import annotations

from orchestrator.ingest.connectors.alertmanager import AlertmanagerConnector
from orchestrator.ingest.connectors.base import Connector
from orchestrator.ingest.connectors.elastic import ElasticConnector
from orchestrator.ingest.connectors.falco import FalcoConnector
from orchestrator.ingest.connectors.generic import GenericConnector
from orchestrator.ingest.connectors.sentinel import SentinelConnector
from orchestrator.ingest.connectors.splunk import SplunkConnector
from orchestrator.ingest.connectors.suricata import SuricataConnector
from orchestrator.ingest.connectors.wazuh import WazuhConnector

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
