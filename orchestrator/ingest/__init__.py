"""How findings get in: per-source settings (sources), webhook signatures (signatures),
SIEM payloads normalized to OCSF (connectors/), the entity a finding keys its incident on
(entity), and the claim-check store for raw payloads (raw_store)."""
