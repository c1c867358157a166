package bulkhead.containment_test

# --- essential zones -------------------------------------------------------------------------

test_essential_zone_is_never_contained_automatically if {
	decision := decide(incident([finding(5, 3)], [controller("rtu-1", "energy")]))
	count(decision.steps) > 0
	every s in decision.steps {
		s.approval.required >= 2
		"duty-officer" in s.approval.must_include_roles
	}
	"zone energy is essential: never contained automatically (2 approvals, a duty-officer among them)" in decision.reasons
}

test_essential_zone_isolation_needs_two_approvers_a_duty_officer_among_them if {
	decision := decide(incident([finding(5, 3)], [server("scada-1", "energy", "198.18.20.10")]))
	s := step(decision, "isolate:energy")
	s.approval == {
		"required": 2,
		"roles": ["duty-officer", "responder"],
		"must_include_roles": ["duty-officer"],
		"timeout_s": 900,
		"on_timeout": "escalate",
	}
}

test_asset_in_a_zone_unknown_to_the_inventory_is_treated_as_essential if {
	decision := decide(incident([finding(4, 3)], [controller("tsc-9", "atlantis")]))
	step(decision, "fallback:tsc-9").approval.required == 2
	"asset tsc-9 is in zone atlantis, unknown to the inventory: treated as essential" in decision.reasons
}

test_identity_used_in_an_essential_zone_needs_two_approvals_everywhere if {
	policy_input := object.union(incident([finding(4, 3)], []), {"identities": [identity("svc-scada", ["ldap"], ["traffic", "energy"])]})
	step(decide(policy_input), "revoke:svc-scada@ldap").approval.required == 2
}

test_guard_watches_essential_services_that_depend_on_the_zone if {
	decision := decide(incident([finding(4, 3)], [server("web-1", "it", "198.18.40.20")]))
	step(decision, "quarantine:web-1").guard.essential == ["dispatch"]
}

# --- irreversible steps ----------------------------------------------------------------------

test_irreversible_step_always_needs_approval if {
	policy_input := object.union(incident([finding(4, 3)], []), {"identities": [identity("svc-x", ["vault"], ["traffic"])]})
	decision := decide(policy_input)
	s := step(decision, "revoke:svc-x@vault")
	s.approval.required == 1
	"step revoke:svc-x@vault cannot be undone: a person must approve it" in decision.reasons
}

# --- paused automation -----------------------------------------------------------------------

test_paused_automation_makes_every_step_need_approval if {
	decision := decide(object.union(everyday, {"automation": {"paused": true}}))
	step(decision, "fallback:tsc-1").approval.required == 1
	"automation is paused: every step needs approval" in decision.reasons
}

test_input_that_does_not_say_automation_runs_counts_as_paused if {
	policy_input := object.remove(everyday, ["automation"])
	step(decide(policy_input), "fallback:tsc-1").approval.required == 1
}

# --- blast-radius budget ---------------------------------------------------------------------

test_steps_within_the_blast_radius_budget_run_automatically if {
	decision := decide(object.union(everyday, {"active_containments": 2}))
	step(decision, "fallback:tsc-1").approval.required == 0
}

test_steps_past_the_blast_radius_budget_need_approval if {
	decision := decide(object.union(everyday, {"active_containments": 3}))
	step(decision, "fallback:tsc-1").approval.required == 1
	"blast-radius budget: 3 active + 1 new automatic containments exceed 3: every step needs approval" in decision.reasons
}

test_budget_counts_the_new_automatic_steps_of_this_decision_too if {
	assets := [controller("tsc-1", "traffic"), controller("tsc-2", "traffic")]
	decision := decide(object.union(incident([finding(4, 3)], assets), {"active_containments": 2}))
	every s in decision.steps {
		s.approval.required == 1
	}
}

test_unknown_number_of_active_containments_is_over_budget if {
	policy_input := object.remove(everyday, ["active_containments"])
	step(decide(policy_input), "fallback:tsc-1").approval.required == 1
}

test_without_guardrails_data_every_step_needs_approval if {
	decision := data.bulkhead.containment.decision with input as everyday
		with data.inventory as city
		with data.guardrails as null
	decision.verdict == "contain"
	every s in decision.steps {
		s.approval.required >= 1
	}
}

# --- every step --------------------------------------------------------------------------------

test_nothing_ever_approves_itself_on_timeout if {
	assets := [controller("tsc-1", "traffic"), server("scada-1", "energy", "198.18.20.10")]
	policy_input := object.union(incident([finding(5, 3)], assets), {"identities": [identity("svc-x", ["ldap", "vault"], ["it"])]})
	decision := decide(policy_input)
	count(decision.steps) == 6
	every s in decision.steps {
		s.approval.on_timeout == "escalate"
	}
}

test_explain_says_why_each_step_needs_its_approval if {
	policy_input := object.union(incident([finding(5, 3)], [server("scada-1", "energy", "198.18.20.10")]), {"active_containments": 0})
	notes := explain(policy_input)
	"zone energy is essential: 2 approvals, a duty-officer among them" in notes["isolate:energy"]
	"guard watches grid" in notes["isolate:energy"]
	explain(everyday)["fallback:tsc-1"] == ["automatic: reversible, outside essential zones, within budget"]
}

test_explain_names_every_guardrail_that_applied if {
	policy_input := object.union(incident([finding(4, 3)], [controller("tsc-1", "traffic")]), {
		"identities": [identity("svc-x", ["vault"], ["traffic"])],
		"automation": {"paused": true},
		"active_containments": 99,
	})
	notes := explain(policy_input)
	notes["revoke:svc-x@vault"] == ["automation is paused", "irreversible: a person must approve"]
	notes["fallback:tsc-1"] == ["automation is paused"]
	over := explain(object.union(everyday, {"active_containments": 99}))
	over["fallback:tsc-1"] == ["over the blast-radius budget"]
}

# --- the approval of each kind -------------------------------------------------------------

test_approval_for_an_essential_zone_is_two_with_a_duty_officer if {
	approval := data.bulkhead.containment.approval("essential", 900)
	approval.required == 2
	approval.must_include_roles == ["duty-officer"]
	approval.on_timeout == "escalate"
}

test_approval_when_a_person_is_needed_is_one_responder_or_duty_officer if {
	approval := data.bulkhead.containment.approval("person", 600)
	approval.required == 1
	approval.roles == ["duty-officer", "responder"]
	approval.timeout_s == 600
}

test_approval_otherwise_is_automatic if {
	data.bulkhead.containment.approval("automatic", 900).required == 0
}

test_approval_of_an_unknown_kind_is_undefined if {
	not data.bulkhead.containment.approval("whatever", 900)
}
