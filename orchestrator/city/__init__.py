"""The city right now: one picture of zones, containments, approvals and automation
(`GET /v1/city`, `GET /v1/city/map.svg`, `bulkhead status`)."""
