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

test_joined_sorts_and_separates if {
	lib.joined({"b", "a"}) == "a, b"
}
