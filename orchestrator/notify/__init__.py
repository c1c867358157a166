"""Notifications, routed by policy (issue #19 part 1).

The worker follows the sealed audit trail (the same cursor-and-outbox pattern as
orchestrator/events/): each entry a person should hear of becomes a notice (notices.py),
the notify policy (`data.bulkhead.notify`, through the PolicyEngine) names the channel
tags that get it (`Notifier.route`), a storm window per channel lets a few through and
folds the rest into one digest (window.py), and each message waits in a durable queue per
channel (events/outbox.py) until Apprise delivered it (channels.py, notifier.py).

Why not a Temporal activity with retries, as the issue says: an activity is scheduled by
the incident's workflow, so sending would add commands, history events and a failure mode
to every incident's workflow (which must not change: recorded histories replay against
it), and a storm of 1,000 incidents would be 1,000 activities, each unable to see the
others, so no digest. A task beside the worker, reading the trail, sees every incident at
once, retries from a queue on disk (durable like an activity's retries), and never sits
on containment's path: a failing channel delays nothing but its own messages.
"""
