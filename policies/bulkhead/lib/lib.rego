# METADATA
# title: Helpers shared by the Bulkhead policies
# description: |
#   Pure functions: everything they need comes in as arguments, so each is
#   testable on its own and no policy reaches into another's data by accident.
package bulkhead.lib

# The roles that may approve a step whose policy named none.
default_approver_roles := ["duty-officer", "responder"]

# Highest severity_id among the findings (undefined when there are none).
max_severity(findings) := max({f.severity_id | some f in findings})

# True when there is at least one finding and every one says its confidence is low.
all_low_confidence(findings, low) if {
	count(findings) > 0
	every f in findings {
		f.confidence_id == low
	}
}

# True when there is at least one finding and none is above `level` (e.g. informational).
all_at_most_severity(findings, level) if {
	count(findings) > 0
	every f in findings {
		f.severity_id <= level
	}
}

# The essential zones among `names`. A zone is essential unless the inventory says,
# explicitly, that it is not: an unknown zone might be anything, so it gets the
# strictest treatment.
essential_zones(zones, names) := {name | some name in names; not zones[name].essential == false}

# Essential services that live in, or depend on, any of the zones (the inventory lists
# them per zone): a step touching those zones must watch their health (the workflow's
# guard) and roll back when they degrade.
guarded_services(zones, names) := sort({service |
	some name in names
	some service in zones[name].essential_services
})

# `names` as a readable, stable list: "a, b".
joined(names) := concat(", ", sort([n | some n in names]))
