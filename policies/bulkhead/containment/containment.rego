# METADATA
# title: Containment decision
# description: |
#   Turns the findings of one incident into a verdict and containment steps.
#   Input (schemas/containment-input.schema.json): findings (OCSF subset), assets
#   and identities (inventory records resolved by Bulkhead), automation.paused,
#   active_containments. Data: data.inventory (the city), data.guardrails.
#   Candidate steps are in steps.rego; who must approve them in guardrails.rego.
#   An OpenC2 command (input.command) is decided in commands.rego.
package bulkhead.containment

import data.bulkhead.lib

# Fails closed: anything that leaves the decision undefined escalates to a human.
default decision := {
	"verdict": "escalate",
	"reasons": ["policy produced no decision; escalating to a responder"],
	"steps": [],
}

# --- settings from data, with conservative defaults for whatever the data lacks ---------

# data.guardrails when it is an object. Bulkhead validates data/guardrails.json against
# its schema before loading it, so when it is present every value is there.
# (An `else`, not a `default`: a default's value is built on every evaluation.)
settings := guardrails if {
	guardrails := data.guardrails # one lookup: each costs regorus a search of the modules
	is_object(guardrails)
} else := {
	# Used when data.guardrails is absent (or not an object). Its budget of 0 makes every
	# step need approval.
	"severity": {"act_at": 4, "isolate_zone_at": 5, "informational": 1},
	"confidence": {"low": 1},
	"blast_radius": {"max_automatic_containments": 0},
	"approval": {"timeout_s": 900},
	"lease_s": {"fallback": 3600, "quarantine": 3600, "isolate": 1800, "revoke": 3600},
}

# Without data.inventory these are undefined: no step can be built, so it escalates.
zones := object.get(data.inventory, "zones", {})

device_types := object.get(data.inventory, "device_types", {})

systems := object.get(data.inventory, "systems", {})

# --- what the findings say ------------------------------------------------------------------

findings := object.get(input, "findings", [])

# lib.max_severity, inlined and read from the input rather than through `findings`: this
# sits on every decision's path, and regorus charges for each rule and call.
max_severity := max({f.severity_id | some f in input.findings})

no_findings if count(findings) == 0

low_confidence if lib.all_low_confidence(findings, settings.confidence.low)

only_informational if lib.all_at_most_severity(findings, settings.severity.informational)

# Act when the worst finding reaches the action threshold and not every finding is of low
# confidence. (act_at is above "informational": the guardrails schema enforces it.)
acting if {
	guardrails := settings # bound once: the loop below would look the rule up each turn
	max_severity >= guardrails.severity.act_at
	low := guardrails.confidence.low
	some finding in input.findings # without findings, no turn: as object.get's [], one call less
	finding.confidence_id != low
}

# --- the decision: verdict, reasons and steps -------------------------------------------

# METADATA
# description: |
#   One rule: regorus spends more on each rule it evaluates (and on merging each
#   `reasons contains` definition into the last) than on the checks themselves, and
#   this is every decision's path (issue #18). The steps and their guardrail reasons
#   come from `plan` (guardrails.rego), built on the candidates of steps.rego.
# entrypoint: true
decision := {"verdict": verdict(planned.steps), "reasons": reasons, "steps": planned.steps} if {
	planned := plan

	# Only the highest severity is said while acting: the other three cannot hold then
	# (acting takes a confident finding at or above act_at, and act_at is above
	# "informational"), so one cached `not acting` skips all three at once.
	findings_say := {sprintf("highest severity_id is %d", [max_severity]) | max_severity} | {reason |
		not acting
		some reason in (({"no findings in the input: a responder must look" |
			no_findings
			not input.command
		} | {"every finding is informational" |
			max_severity <= settings.severity.informational
			not no_findings
			only_informational
		}) | {"every finding has low confidence" | low_confidence})
	}

	acting_says := ({"no inventory asset or identity matches the findings: a responder must look" |
		acting
		planned.steps == [] # as every test of a size on this path: no builtin call
	}) | {"automation is paused: every step needs approval" |
		planned.paused # plan's (undefined when plan has no step: its else)
		planned.steps != []
	}

	# plan's reasons carry the guardrails' and what the inventory says (inventory_notes).
	# command_reasons is empty without a command; read only when there is one (as `asked`
	# in guardrails.rego) so a decision without one skips its evaluation.
	reasons := ((findings_say | acting_says) | planned.reasons) | {reason |
		input.command
		some reason in command_reasons
	}
}

# What the inventory says of the findings' assets and identities: each asset's safe mode,
# and what the inventory lacks. A function of the inventory's parts (the values of the
# rules zones, device_types and systems), so plan passes the ones it has bound rather
# than the decision evaluating three rules (issue #18).
inventory_notes(known_zones, types, known_systems) := (safe_modes | unknown_holders) | unknown_zones if {
	safe_modes := {sprintf("%s has safe mode %s", [asset.id, safe_mode]) |
		acting
		some asset in input.assets
		safe_mode := types[asset.type].safe_mode
		safe_mode
	}
	unknown_holders := {sprintf("identity %s is held by %s, which the inventory does not know: not revoked there", [identity.id, holder]) |
		acting
		some identity in input.identities
		some holder in identity.holders
		not known_systems[holder]
	}
	unknown_zones := {sprintf("asset %s is in zone %s, unknown to the inventory: treated as essential", [asset.id, zone]) |
		some asset in input.assets
		zone := object.get(asset, "zone", "<unknown>") # unknown_zone, written out as in candidates_of
		not known_zones[zone]
	}
}

# Steps exist only when acting (confident, at or above the threshold), so "contain" can be
# decided first: the common case then skips the other checks.
verdict(steps) := "contain" if steps != []
else := "escalate" if no_findings
else := "ignore" if only_informational
else := "observe" if low_confidence
else := "escalate" if acting
else := "observe"
