"""The audit trail: the keyed chain (chain, keys), the JSONL sink and its forwarders
(sink, export), signed checkpoints (checkpoint, checkpointer), `audit verify` (verify),
and the worker's Prometheus metrics read from the trail (metrics)."""
