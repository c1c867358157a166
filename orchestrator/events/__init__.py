"""SIEMs hear back: each step outcome as an OCSF Remediation event (issue #19).

A step applied and verified, reverted, failed or escalated becomes one event (ocsf.py:
7004 Network Remediation Activity for network steps, 7001 Remediation Activity for the
others) sent to a signed webhook and/or syslog (sinks.py), at least once, each with a
stable id (trail.py).

Why an outbox fed from the audit file, and not one more audit forwarder: a forwarder
runs inside the export activity, and one that raises makes the whole export retry, so a
SIEM that is down would hold the audit trail back (and its anchors, and the workflow's
export in flight) for as long as it is down; one that swallows its errors loses events.
The sealed audit file is already a durable, ordered, fsynced log of every transition,
written before the export activity returns. So the worker follows it from a cursor in
the state dir, in a background task of its own (sender.py): each step outcome is
completed from the incident (lookup.py), written to a queue per sink (outbox.py) before
the cursor moves, and removed from a queue only once that sink took it. Nothing of this
runs in an activity or a workflow: a failing or slow sink delays neither containment nor
the audit trail; its events wait on disk, and `bulkhead_events_queued` shows them.
"""
