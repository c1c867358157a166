# METADATA
# title: Guardrails
# description: |
#   Who must approve each candidate step. The strictest rule wins:
#   - a step touching an essential (or unknown) zone is never automatic: 2 approvals
#     from distinct principals, a duty-officer among them;
#   - an irreversible step always needs a person;
#   - paused automation makes every step need a person;
#   - past the city-wide blast-radius budget, every step needs a person.
#   Nothing ever approves itself on timeout: it escalates.
package bulkhead.containment

import data.bulkhead.lib

# Each candidate with what the guardrails need to know about it, computed once.
assessed contains {
	"step": candidate.step,
	"essential": lib.essential_zones(zones, candidate.zones),
	"guard": lib.guarded_services(zones, candidate.zones),
	"because": candidate.because,
} if {
	some candidate in candidates
}

steps := [step_by_id[id] | some id in sort(object.keys(step_by_id))]

# Keyed by id so two different steps under one id are a conflict (an evaluation
# error, so the engine escalates) rather than a silent duplicate.
step_by_id[a.step.id] := object.union(a.step, {
	"approval": approval_for(a),
	"guard": {"essential": a.guard},
	"because": array.concat(a.because, guardrail_reasons(a.step.id)),
}) if {
	some a in assessed
}

# The strictest guardrail that applies wins.
approval_for(a) := lib.approval("essential", settings.approval.timeout_s) if {
	count(a.essential) > 0
} else := lib.approval("person", settings.approval.timeout_s) if {
	not a.step.reversible
} else := lib.approval("person", settings.approval.timeout_s) if {
	people_needed
} else := lib.approval("automatic", settings.approval.timeout_s)

# Reasons that hold for every step of the decision.
people_needed if paused

people_needed if over_budget

# Steps that would run at once if the budget allowed it.
automatic contains a.step.id if {
	some a in assessed
	count(a.essential) == 0
	a.step.reversible == true
	not paused
}

budget := settings.blast_radius.max_automatic_containments

# A missing count leaves nothing within budget (fails closed). A count that is not a
# number fails closed too: regorus raises (the engine escalates); OPA, without strict
# builtin errors, leaves the sum undefined, so nothing is within budget.
within_budget if input.active_containments + count(automatic) <= budget

over_budget if {
	count(automatic) > 0
	not within_budget
}

reasons contains sprintf("blast-radius budget: %v active + %d new automatic containments exceed %v: every step needs approval", [object.get(input, "active_containments", "unknown"), count(automatic), budget]) if over_budget

reasons contains sprintf("zone %s is essential: never contained automatically (2 approvals, a duty-officer among them)", [name]) if {
	some a in assessed
	some name in a.essential
}

reasons contains sprintf("step %s cannot be undone: a person must approve it", [a.step.id]) if {
	some a in assessed
	not a.step.reversible
}

# Why each step needs the approval it has; `bulkhead policy eval --explain` prints it.
explain[id] := sort([note[2] | some note in step_notes; note[0] == id]) if {
	some [id, _, _] in step_notes
}

# The same notes as structured reasons, after the candidate's own (what and why).
guardrail_reasons(id) := [{"code": note[1], "text": note[2], "refs": []} |
	some note in step_notes
	note[0] == id
]

step_notes contains [a.step.id, "guardrail.essential_zone", sprintf("zone %s is essential: 2 approvals, a duty-officer among them", [name])] if {
	some a in assessed
	some name in a.essential
}

step_notes contains [a.step.id, "guardrail.irreversible", "irreversible: a person must approve"] if {
	some a in assessed
	not a.step.reversible
}

step_notes contains [a.step.id, "guardrail.paused", "automation is paused"] if {
	some a in assessed
	paused
}

step_notes contains [a.step.id, "guardrail.over_budget", "over the blast-radius budget"] if {
	some a in assessed
	over_budget
}

step_notes contains [a.step.id, "guardrail.guard", sprintf("guard watches %s", [lib.joined(a.guard)])] if {
	some a in assessed
	count(a.guard) > 0
}

step_notes contains [a.step.id, "guardrail.automatic", "automatic: reversible, outside essential zones, within budget"] if {
	some a in assessed
	approval_for(a).required == 0
}
