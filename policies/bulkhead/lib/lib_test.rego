package bulkhead.lib_test

import data.bulkhead.lib

zones := {
	"traffic": {"essential": false},
	"energy": {"essential": true},
	"vague": {},
}

test_max_severity_is_the_highest_of_all_findings if {
	lib.max_severity([{"severity_id": 2}, {"severity_id": 5}, {"severity_id": 4}]) == 5
}

test_max_severity_of_no_findings_is_undefined if {
	not lib.max_severity([])
}

test_all_low_confidence_needs_every_finding_low if {
	lib.all_low_confidence([{"confidence_id": 1}, {"confidence_id": 1}], 1)
	not lib.all_low_confidence([{"confidence_id": 1}, {"confidence_id": 3}], 1)
}

test_all_low_confidence_is_false_without_findings if {
	not lib.all_low_confidence([], 1)
}

test_all_at_most_severity_needs_every_finding_at_or_below if {
	lib.all_at_most_severity([{"severity_id": 1}, {"severity_id": 0}], 1)
	not lib.all_at_most_severity([{"severity_id": 1}, {"severity_id": 4}], 1)
}

test_zone_marked_essential_is_essential if {
	lib.essential_zones(zones, ["energy", "traffic"]) == {"energy"}
}

test_unknown_zone_is_treated_as_essential if {
	lib.essential_zones(zones, ["atlantis"]) == {"atlantis"}
}

test_zone_without_an_essential_flag_is_treated_as_essential if {
	lib.essential_zones(zones, ["vague"]) == {"vague"}
}

test_guarded_services_are_the_essential_ones_the_zones_list if {
	listed := {
		"it": {"essential_services": ["dispatch"]},
		"dispatch": {"essential_services": ["dispatch"]},
		"energy": {"essential_services": ["grid"]},
		"traffic": {"essential_services": []},
	}
	lib.guarded_services(listed, ["it"]) == ["dispatch"]
	lib.guarded_services(listed, ["energy", "dispatch", "it"]) == ["dispatch", "grid"]
	lib.guarded_services(listed, ["traffic", "atlantis"]) == []
}

test_approval_for_an_essential_zone_is_two_with_a_duty_officer if {
	approval := lib.approval("essential", 900)
	approval.required == 2
	approval.must_include_roles == ["duty-officer"]
	approval.on_timeout == "escalate"
}

test_approval_when_a_person_is_needed_is_one_responder_or_duty_officer if {
	approval := lib.approval("person", 600)
	approval.required == 1
	approval.roles == ["duty-officer", "responder"]
	approval.timeout_s == 600
}

test_approval_otherwise_is_automatic if {
	lib.approval("automatic", 900).required == 0
}

test_approval_of_an_unknown_kind_is_undefined if {
	not lib.approval("whatever", 900)
}

test_joined_sorts_and_separates if {
	lib.joined({"b", "a"}) == "a, b"
}
