package bulkhead.containment_test

# --- verdicts ------------------------------------------------------------------------------

test_controller_under_confident_high_severity_attack_falls_back_to_its_safe_mode if {
	decision := decide(everyday)
	decision.verdict == "contain"
	ids(decision) == ["fallback:tsc-1"]
	s := step(decision, "fallback:tsc-1")
	s.adapter == "modbus"
	s.action == "set"
	s.target == {"asset": "tsc-1"}
	s.args == {"mode": "flash"}
	s.reversible == true
	s.lease_s == 3600
	s.approval.required == 0
}

test_all_low_confidence_findings_are_observed_without_steps if {
	decision := decide(incident([finding(5, 1), finding(4, 1)], [controller("tsc-1", "traffic")]))
	decision.verdict == "observe"
	decision.steps == []
	"every finding has low confidence" in decision.reasons
}

test_one_confident_finding_among_low_ones_is_enough_to_act if {
	decision := decide(incident([finding(4, 1), finding(4, 2)], [controller("tsc-1", "traffic")]))
	decision.verdict == "contain"
}

test_medium_severity_is_observed if {
	decision := decide(incident([finding(3, 3)], [controller("tsc-1", "traffic")]))
	decision.verdict == "observe"
	decision.steps == []
}

test_only_informational_findings_are_ignored if {
	decision := decide(incident([finding(1, 3), finding(0, 3)], [controller("tsc-1", "traffic")]))
	decision.verdict == "ignore"
	decision.steps == []
}

test_no_findings_escalate_to_a_person if {
	decision := decide(incident([], []))
	decision.verdict == "escalate"
	decision.steps == []
}

test_high_severity_on_nothing_in_the_inventory_escalates if {
	decision := decide(incident([finding(5, 3)], []))
	decision.verdict == "escalate"
	decision.steps == []
	"no inventory asset or identity matches the findings: a responder must look" in decision.reasons
}

# --- what is contained, and how ------------------------------------------------------------

test_host_without_a_safe_mode_is_quarantined_on_the_network if {
	decision := decide(incident([finding(4, 3)], [server("web-1", "it", "198.18.40.20")]))
	s := step(decision, "quarantine:web-1")
	s.adapter == "nftables"
	s.action == "contain"
	s.target == {"device": "web-1"}
	s.reversible == true
}

test_critical_finding_isolates_every_zone_it_touches if {
	assets := [controller("tsc-1", "traffic"), server("web-1", "it", "198.18.40.20")]
	decision := decide(incident([finding(5, 3)], assets))
	ids(decision) == ["fallback:tsc-1", "isolate:it", "isolate:traffic", "quarantine:web-1"]
	s := step(decision, "isolate:traffic")
	s.target == {"zone": "traffic"}
	s.lease_s == 1800
	s.args.timeout_s == 1800 # the gateway lets go by itself when the lease would end
}

test_zone_isolation_keeps_the_conduits_open_and_a_quarantined_host_none if {
	assets := [controller("tsc-1", "traffic"), server("web-1", "it", "198.18.40.20")]
	conduits := {"soc": {"cidrs": ["198.18.40.5/32"]}, "preempt": {"cidrs": ["198.18.30.0/24"]}}
	decision := data.bulkhead.containment.decision with input as incident([finding(5, 3)], assets)
		with data.inventory as object.union(city, {"network": {"conduits": conduits}})
		with data.guardrails as guardrails
	step(decision, "isolate:traffic").args.allow == ["preempt", "soc"]
	step(decision, "quarantine:web-1").args == {"timeout_s": 3600}
}

test_high_but_not_critical_finding_isolates_no_zone if {
	decision := decide(incident([finding(4, 3)], [server("web-1", "it", "198.18.40.20")]))
	ids(decision) == ["quarantine:web-1"]
}

test_shared_identity_is_revoked_on_every_system_that_holds_it if {
	policy_input := object.union(incident([finding(4, 3)], []), {"identities": [identity("svc-x", ["ldap", "vault"], ["traffic"])]})
	decision := decide(policy_input)
	ids(decision) == ["revoke:svc-x@ldap", "revoke:svc-x@vault"]
	ldap := step(decision, "revoke:svc-x@ldap")
	ldap.adapter == "ldap"
	ldap.action == "deny"
	ldap.target == {"identity": "svc-x", "system": "ldap"}
}

test_irreversible_revocation_has_no_lease_to_expire if {
	policy_input := object.union(incident([finding(4, 3)], []), {"identities": [identity("svc-x", ["ldap", "vault"], ["traffic"])]})
	decision := decide(policy_input)
	step(decision, "revoke:svc-x@ldap").lease_s == 3600
	vault := step(decision, "revoke:svc-x@vault")
	vault.reversible == false
	not vault.lease_s
}

test_identity_held_by_an_unknown_system_is_reported_not_revoked_there if {
	policy_input := object.union(incident([finding(4, 3)], []), {"identities": [identity("svc-x", ["ldap", "mainframe"], ["traffic"])]})
	decision := decide(policy_input)
	ids(decision) == ["revoke:svc-x@ldap"]
	"identity svc-x is held by mainframe, which the inventory does not know: not revoked there" in decision.reasons
}

# The decision path writes unknown_zone out where it would cost a rule evaluation: the
# step's zones and the inventory's gap must still name that zone.
test_an_asset_without_a_zone_is_in_the_unknown_zone_for_the_step_and_the_reasons if {
	decision := decide(incident([finding(4, 3)], [{"id": "tsc-9", "type": "controller", "ip": "198.18.10.19"}]))
	unknown := data.bulkhead.containment.unknown_zone
	step(decision, "fallback:tsc-9").approval.required == 2
	sprintf("zone %s is essential: never contained automatically (2 approvals, a duty-officer among them)", [unknown]) in decision.reasons
	sprintf("asset tsc-9 is in zone %s, unknown to the inventory: treated as essential", [unknown]) in decision.reasons
}

test_step_ids_come_from_targets_and_are_sorted if {
	assets := [controller("tsc-2", "traffic"), controller("tsc-1", "traffic")]
	ids(decide(incident([finding(4, 3)], assets))) == ["fallback:tsc-1", "fallback:tsc-2"]
}

test_every_decision_says_the_highest_severity if {
	"highest severity_id is 4" in decide(everyday).reasons
}

# --- the lab city (the real data) ----------------------------------------------------------

test_lab_city_demo_switches_tsc_0001_to_flash_automatically if {
	decision := data.bulkhead.containment.decision with input as {
		"incident_id": "inc-tsc-0001",
		"findings": [finding(4, 3)],
		"assets": [object.union(data.inventory.assets["tsc-0001"], {"id": "tsc-0001"})],
		"identities": [],
		"automation": {"paused": false},
		"active_containments": 0,
	}
	decision.verdict == "contain"
	[s] := decision.steps
	s.id == "fallback:tsc-0001"
	s.approval.required == 0
	s.args == {"mode": "flash"}
}

# --- duplicates and order ---------------------------------------------------------------------

test_an_asset_listed_twice_is_contained_once if {
	asset := controller("tsc-1", "traffic")
	decision := decide(incident([finding(4, 3)], [asset, asset]))
	ids(decision) == ["fallback:tsc-1"]
}

test_guardrail_reasons_follow_the_step_own_reasons_sorted_by_code if {
	policy_input := object.union(incident([finding(4, 3)], []), {
		"identities": [identity("svc-x", ["vault"], ["energy"])],
		"automation": {"paused": true},
	})
	codes := [r.code | some r in step(decide(policy_input), "revoke:svc-x@vault").because]
	codes == ["step.revoke", "guardrail.essential_zone", "guardrail.guard", "guardrail.irreversible", "guardrail.paused"]
}
