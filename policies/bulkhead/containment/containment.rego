# METADATA
# title: Containment decision
# description: |
#   Turns the findings of one incident into a verdict and containment steps.
#   Input: findings (OCSF subset), assets (inventory records of the affected
#   resources, resolved by Bulkhead), automation.paused. Data: data.inventory.
package bulkhead.containment

# Fails closed: anything that leaves the decision undefined escalates to a human.
default decision := {
	"verdict": "escalate",
	"reasons": ["policy produced no decision; escalating to a responder"],
	"steps": [],
}

# METADATA
# entrypoint: true
decision := {"verdict": verdict, "reasons": reasons, "steps": steps}

severity_high := 4

confidence_low := 1

max_severity := max({f.severity_id | some f in input.findings})

# Every finding says its own confidence is low: watch, do not act.
low_confidence if {
	count(input.findings) > 0
	every f in input.findings {
		f.confidence_id == confidence_low
	}
}

paused if input.automation.paused == true

verdict := "observe" if low_confidence
else := "contain" if count(steps) > 0
else := "escalate" if max_severity >= severity_high
else := "observe"

steps := [s | some s in fallback_steps]

# A controller with a safe mode is switched to it when a high-severity finding names it.
fallback_steps contains step if {
	not low_confidence
	max_severity >= severity_high
	some asset in input.assets
	device_type := data.inventory.device_types[asset.type]
	zone := data.inventory.zones[asset.zone]
	step := {
		"id": sprintf("fallback:%s", [asset.id]),
		"adapter": device_type.protocol,
		"action": "set",
		"target": {"asset": asset.id},
		"args": {"mode": device_type.safe_mode},
		"approval": approval_for(zone),
		"lease_s": 3600,
		"reversible": true,
		"guard": {"essential": []},
	}
}

# Essential zones and paused automation always need people; elsewhere a fallback to a
# safe mode is the low-risk default and runs at once.
approval_for(zone) := {"required": 2, "roles": ["duty-officer"], "timeout_s": 900, "on_timeout": "escalate"} if {
	zone.essential
} else := {"required": 1, "roles": ["responder"], "timeout_s": 900, "on_timeout": "escalate"} if {
	paused
} else := {"required": 0, "roles": [], "timeout_s": 900, "on_timeout": "escalate"}

reasons contains "every finding has low confidence" if low_confidence

reasons contains sprintf("highest severity_id is %d", [max_severity]) if max_severity

reasons contains sprintf("%s has safe mode %s", [asset.id, data.inventory.device_types[asset.type].safe_mode]) if {
	some asset in input.assets
	data.inventory.device_types[asset.type].safe_mode
}

reasons contains "automation is paused: every step needs approval" if paused
