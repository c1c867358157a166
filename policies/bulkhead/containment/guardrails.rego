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

# Why each step needs the approval it has; `bulkhead policy eval --explain` prints it.
explain := {id: sort([note.text | some note in step.because; startswith(note.code, "guardrail.")]) |
	some id, step in plan.by_id
}

# The guardrails applied to every candidate, in one rule: regorus charges a lookup for
# each rule a loop names on each turn, and a decision is budgeted in microseconds
# (issue #18), so each pass reads locals bound before it, and what a step needs is
# worked out once and carried along.
plan := {
	"steps": [by_id[id] | some id in sort(object.keys(by_id))],
	"by_id": by_id,
	# The guardrails' reasons, and what the inventory says of the findings.
	"reasons": ((budget_reasons | essential_reasons) | irreversible_reasons) | inventory_notes(known_zones, types, known_systems),
	"paused": paused, # the decision says it too
} if {
	# The rules zones, device_types and systems, read here from one lookup of the
	# inventory: each rule would cost a first evaluation. Without an inventory no zone can
	# be judged: no step.
	inventory := data.inventory
	known_zones := object.get(inventory, "zones", {})
	types := object.get(inventory, "device_types", {})
	known_systems := object.get(inventory, "systems", {})
	guardrails := settings

	# Automation runs only when the input says, explicitly, that it is not paused. A local,
	# not a rule: a rule costs more to evaluate than the lookup (decision reads it here).
	paused := object.get(input, ["automation", "paused"], true) != false

	# `commanded` is empty without a command (its own guard); asked for only when there is
	# one, so a decision without a command does not pay a rule evaluation to learn that.
	asked := {candidate | input.command; some candidate in commanded}

	# Each candidate with the essential zones it touches and the essential services the
	# guard must watch (lib.guarded_services, inlined: a call costs more than the
	# comprehension it wraps).
	assessed := {{
		"step": candidate.step,
		# lib.essential_zones, inlined for the same reason.
		"essential": {name | some name in candidate.zones; not known_zones[name].essential == false},
		"guard": sort({service |
			some name in candidate.zones
			some service in known_zones[name].essential_services
		}),
		"because": candidate.because,
	} |
		# The policy's own candidates and those an OpenC2 command asked for (commands.rego).
		some candidate in candidates_of(guardrails, known_zones, types, known_systems) | asked
	}

	# Steps that would run at once if the budget allowed it.
	automatic := {a.step.id |
		not paused
		some a in assessed
		a.essential == set() # rather than count(...) == 0: a builtin call costs regorus more
		a.step.reversible == true
	}

	# A missing count leaves nothing within budget (fails closed). A count that is not a
	# number fails closed too: regorus raises (the engine escalates); OPA, without strict
	# builtin errors, leaves the sum undefined, so nothing is within budget.
	budget := guardrails.blast_radius.max_automatic_containments
	over_budget := {new |
		automatic != set()
		new := count(automatic)
		not input.active_containments + new <= budget
	}

	# Guardrails that hold for every step, as [code, text] notes: any of them makes
	# every step need a person.
	for_every_step := {["guardrail.paused", "automation is paused"] | paused} | {[
		"guardrail.over_budget",
		"over the blast-radius budget",
	] |
		some _ in over_budget
	}
	people := for_every_step != set()
	timeout_s := guardrails.approval.timeout_s

	# Keyed by id so two different steps under one id are a conflict (an evaluation
	# error, so the engine escalates) rather than a silent duplicate. The approval is the
	# strictest guardrail's: essential zone, then irreversible, then any that holds for
	# every step, else automatic.
	by_id := {a.step.id: object.union(a.step, {
		"approval": approval(kind, timeout_s),
		"guard": {"essential": a.guard},
		# The candidate's own reasons (what and why), then why it needs this approval.
		"because": array.concat(a.because, guardrail_reasons),
	}) |
		some a in assessed
		kind := approval_kind(a, people)

		# Why it needs that approval, as [code, text] notes gathered in a set, so every
		# step lists them sorted by code (then text).
		notes := (({[
			"guardrail.essential_zone",
			sprintf("zone %s is essential: 2 approvals, a duty-officer among them", [name]),
		] |
			some name in a.essential
		} | {["guardrail.irreversible", "irreversible: a person must approve"] |
			not a.step.reversible
		}) | (for_every_step | {["guardrail.guard", sprintf("guard watches %s", [concat(", ", a.guard)])] |
			a.guard != []
		})) | {["guardrail.automatic", "automatic: reversible, outside essential zones, within budget"] |
			kind == "automatic"
		}
		guardrail_reasons := [{"code": code, "text": text, "refs": []} | some [code, text] in notes]
	}

	budget_reasons := {sprintf("blast-radius budget: %v active + %d new automatic containments exceed %v: every step needs approval", [object.get(input, "active_containments", "unknown"), new, budget]) |
		some new in over_budget
	}
	essential_reasons := {sprintf("zone %s is essential: never contained automatically (2 approvals, a duty-officer among them)", [name]) |
		some a in assessed
		some name in a.essential
	}
	irreversible_reasons := {sprintf("step %s cannot be undone: a person must approve it", [a.step.id]) |
		some a in assessed
		not a.step.reversible
	}
} else := {"steps": [], "by_id": {}, "reasons": notes_without_plan}

# Without a plan (no inventory, or guardrails it cannot read) the decision still says what
# the inventory says of the findings, from the rules zones, device_types and systems; with
# no inventory at all, no zone or system is known.
notes_without_plan := notes if {
	notes := inventory_notes(zones, device_types, systems)
} else := inventory_notes({}, {}, {})

# The strictest guardrail that applies wins.
approval_kind(a, people) := "essential" if {
	a.essential != set()
} else := "person" if {
	not a.step.reversible
} else := "person" if {
	people
} else := "automatic"

# The approval a step needs, by the strictest guardrail that applies to it:
# "essential" (an essential zone: never automatic, 2 approvers, a duty-officer among
# them), "person" (irreversible, paused, over budget: one approver), or "automatic".
# Here rather than in lib: regorus charges about three times as much for a call into
# another package as for one into this one, and plan makes one per step (issue #18).
approval("essential", timeout_s) := {
	"required": 2,
	"roles": data.bulkhead.lib.default_approver_roles,
	"must_include_roles": ["duty-officer"],
	"timeout_s": timeout_s,
	"on_timeout": "escalate",
}

approval("person", timeout_s) := {
	"required": 1,
	"roles": data.bulkhead.lib.default_approver_roles,
	"must_include_roles": [],
	"timeout_s": timeout_s,
	"on_timeout": "escalate",
}

approval("automatic", timeout_s) := {
	"required": 0,
	"roles": [],
	"must_include_roles": [],
	"timeout_s": timeout_s,
	"on_timeout": "escalate",
}
