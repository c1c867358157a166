package bulkhead.notify_test

import rego.v1

import data.bulkhead.notify

test_approval_needed_pages_duty if {
	"duty" in notify.tags with input as {"event": {"kind": "approval_needed", "roles_needed": []}}
}

test_approval_for_duty_officer_reaches_them if {
	"duty-officer" in notify.tags with input as {"event": {"kind": "approval_needed", "roles_needed": ["duty-officer"]}}
}

test_failures_escalations_and_rollbacks_page_duty if {
	every kind in ["approval_escalated", "step_failed", "step_escalated", "guard_rollback", "decision_escalated", "approval_deadline_near", "lease_expiring"] {
		"duty" in notify.tags with input as {"event": {"kind": kind}}
	}
}

test_news_is_logged_not_paged if {
	every kind in ["released", "lease_reverted", "incident_opened"] {
		tags := notify.tags with input as {"event": {"kind": kind}}
		tags == {"log"}
	}
}

test_unknown_event_tells_nobody if {
	count(notify.tags) == 0 with input as {"event": {"kind": "step.intent"}}
}

test_automation_paused_or_resumed_pages_duty if {
	every kind in ["automation_paused", "automation_resumed"] {
		notify.tags == {"duty", "log"} with input as {"event": {"kind": kind, "incident_id": "city"}}
	}
}
