package bulkhead.containment_test

# How the policy decides an OpenC2 command (input.command): the producer is the actor, the
# steps are candidates like any other, the guardrails still hold.

producer := {"id": "local:soar", "name": "soar", "roles": ["openc2-producer"]}

net_step(net, zone, whole) := {
	"id": sprintf("deny:%s", [net]),
	"adapter": "nftables",
	"action": "deny",
	"target": {"ipv4_net": net},
	"zones": [zone],
	"whole_zones": whole,
}

command(steps, extra) := object.union(
	{
		"action": "deny",
		"target": {"ipv4_net": "198.18.40.33/32"},
		"profile": "slpf",
		"command_id": "c-1",
		"producer": producer,
		"steps": steps,
	},
	extra,
)

commanded_input(c) := object.union(incident([], []), {"command": c})

test_a_command_on_an_ordinary_zone_is_contained_automatically_with_its_lease if {
	decision := decide(commanded_input(command([net_step("198.18.40.33/32", "it", [])], {"lease_s": 600})))
	decision.verdict == "contain"
	s := step(decision, "deny:198.18.40.33/32")
	s.adapter == "nftables"
	s.target == {"ipv4_net": "198.18.40.33/32"}
	s.lease_s == 600
	s.args == {"timeout_s": 600}
	s.approval.required == 0
	s.because[0].code == "step.commanded"
	"openc2: soar commands deny ipv4_net \"198.18.40.33/32\"" in decision.reasons
	not "no findings in the input: a responder must look" in decision.reasons
}

test_a_command_without_a_lease_takes_the_guardrails_lease_for_its_kind if {
	decision := decide(commanded_input(command([net_step("198.18.40.33/32", "it", [])], {})))
	step(decision, "deny:198.18.40.33/32").lease_s == guardrails.lease_s.quarantine
}

test_a_command_touching_an_essential_zone_waits_for_two_approvals if {
	decision := decide(commanded_input(command([net_step("198.18.20.10/32", "energy", [])], {})))
	s := step(decision, "deny:198.18.20.10/32")
	s.approval.required == 2
	s.approval.must_include_roles == ["duty-officer"]
	s.guard.essential == ["grid"]
}

test_a_command_never_cuts_off_a_whole_essential_zone if {
	decision := decide(commanded_input(command([net_step("198.18.20.0/24", "energy", ["energy"])], {})))
	decision.steps == []
	decision.verdict == "escalate"
	"openc2: refused: step deny:198.18.20.0/24 would cut off essential zone energy, never on a command's say-so" in decision.reasons
}

test_a_whole_ordinary_zone_may_be_cut_by_a_command if {
	decision := decide(commanded_input(command([net_step("198.18.40.0/24", "it", ["it"])], {})))
	ids(decision) == ["deny:198.18.40.0/24"]
}

test_a_producer_without_the_role_is_refused if {
	stranger := object.union(producer, {"roles": ["viewer"]})
	decision := decide(commanded_input(command([net_step("198.18.40.33/32", "it", [])], {"producer": stranger})))
	decision.steps == []
	"openc2: refused: soar holds no openc2-producer role" in decision.reasons
}

test_paused_automation_makes_a_commanded_step_wait_for_a_person if {
	paused := object.union(commanded_input(command([net_step("198.18.40.33/32", "it", [])], {})), {"automation": {"paused": true}})
	step(decide(paused), "deny:198.18.40.33/32").approval.required == 1
}

test_an_irreversible_commanded_revocation_needs_a_person_and_has_no_lease if {
	vault := {
		"id": "revoke:svc-a@vault",
		"adapter": "vault",
		"action": "deny",
		"target": {"identity": "svc-a", "system": "vault"},
		"reversible": false,
		"zones": ["it"],
	}
	c := command([vault], {"action": "set", "target": {"er": {"account": {"account_name": "svc-a"}}}, "profile": "er"})
	s := step(decide(commanded_input(c)), "revoke:svc-a@vault")
	s.approval.required == 1
	not s.lease_s
	s.args == {}
}

test_commanded_steps_count_against_the_blast_radius_budget if {
	over := object.union(commanded_input(command([net_step("198.18.40.33/32", "it", [])], {})), {"active_containments": 3})
	step(decide(over), "deny:198.18.40.33/32").approval.required == 1
}

test_a_command_and_a_finding_about_the_same_host_share_one_step_id if {
	quarantine := {
		"id": "quarantine:web-1",
		"adapter": "nftables",
		"action": "contain",
		"target": {"device": "web-1"},
		"zones": ["it"],
	}
	both := object.union(
		incident([finding(4, 3)], [server("web-1", "it", "198.18.40.20")]),
		{"command": command([quarantine], {"action": "contain", "target": {"device": {"device_id": "web-1"}}, "profile": "er"})},
	)
	ids(decide(both)) == ["quarantine:web-1"]
}
