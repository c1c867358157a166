# METADATA
# title: Who is told what
# description: |
#   Input: {"event": {"kind", "incident_id", "step", "zone", "severity_id",
#   "roles_needed": [...], "required_approvals"}}. kind is one of approval_needed,
#   approval_escalated, step_failed, step_escalated, guard_rollback, lease_reverted,
#   released, incident_opened, decision_escalated (the policy's verdict was escalate),
#   approval_deadline_near (5 min or half the time left before it), lease_expiring (10 min
#   before the lease ends), automation_paused, automation_resumed (incident_id "city"). `tags` names the channel tags (Apprise tags on the
#   notify_urls) that get the event; a channel without tags gets every event routed to any
#   tag. Nothing routed: nobody is told.
#   Default: every event a person must act on pages "duty" (approval needed, escalations,
#   failures, guard rollbacks, a policy's escalation, deadlines near, leases ending); what is only news (released, lease reverted, opened) goes
#   to "log". An approval needing a duty officer also goes to "duty-officer".
package bulkhead.notify

import rego.v1

paging := {
	"approval_needed", "approval_escalated", "step_failed", "step_escalated",
	"guard_rollback", "decision_escalated", "approval_deadline_near", "lease_expiring",
}

news := {"released", "lease_reverted", "incident_opened"}

# Pausing automation stops containment city-wide: whoever is on duty must know.
tags contains "duty" if input.event.kind in {"automation_paused", "automation_resumed"}

tags contains "log" if input.event.kind in {"automation_paused", "automation_resumed"}

# METADATA
# entrypoint: true
tags contains "duty" if input.event.kind in paging

tags contains "log" if input.event.kind in news

tags contains "log" if input.event.kind in paging

tags contains "duty-officer" if {
	input.event.kind == "approval_needed"
	"duty-officer" in input.event.roles_needed
}
