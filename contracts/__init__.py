"""The vocabulary every part of Bulkhead shares, at the bottom of the import graph.

Findings, decisions, adapter payloads, incident and city state, and the names of the
workflows' activities, signals, updates, queries and error types. Pure data: nothing here
does I/O or imports the orchestrator, the workflows or the adapters.
"""
