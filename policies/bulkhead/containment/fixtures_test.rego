# Fixtures of the containment tests: a small city, so the tests do not break when the
# lab city's data changes, and helpers that evaluate the decision against it.
package bulkhead.containment_test

city := {
	"zones": {
		"traffic": {"cidrs": ["198.18.10.0/24"], "criticality": "high", "essential": false, "essential_services": []},
		"energy": {"cidrs": ["198.18.20.0/24"], "criticality": "critical", "essential": true, "essential_services": ["grid"]},
		"it": {"cidrs": ["198.18.40.0/24"], "criticality": "medium", "essential": false, "essential_services": ["dispatch"]},
		"dispatch": {"cidrs": ["198.18.50.0/24"], "criticality": "critical", "essential": true, "essential_services": ["dispatch"]},
	},
	"device_types": {
		"controller": {"protocol": "modbus", "modes": {"normal": 0, "flash": 1}, "safe_mode": "flash"},
		"server": {},
	},
	"systems": {
		"ldap": {"adapter": "ldap", "revocation": {"action": "deny", "reversible": true}},
		"vault": {"adapter": "vault", "revocation": {"action": "deny", "reversible": false}},
	},
	"services": {
		"dispatch": {"zone": "dispatch", "essential": true},
		"grid": {"zone": "energy", "essential": true},
		"portal": {"zone": "it", "essential": false},
	},
}

guardrails := {
	"severity": {"act_at": 4, "isolate_zone_at": 5, "informational": 1},
	"confidence": {"low": 1},
	"blast_radius": {"max_automatic_containments": 3},
	"approval": {"timeout_s": 900},
	"lease_s": {"fallback": 3600, "quarantine": 3600, "isolate": 1800, "revoke": 3600},
}

controller(id, zone) := {"id": id, "zone": zone, "type": "controller", "ip": "198.18.10.11"}

server(id, zone, ip) := {"id": id, "zone": zone, "type": "server", "ip": ip}

finding(severity, confidence) := {"severity_id": severity, "confidence_id": confidence}

identity(id, holders, zones) := {"id": id, "holders": holders, "used_in_zones": zones}

incident(findings, assets) := {
	"incident_id": "inc-test",
	"findings": findings,
	"assets": assets,
	"identities": [],
	"automation": {"paused": false},
	"active_containments": 0,
}

# One confident high-severity finding on a traffic controller: the everyday case.
everyday := incident([finding(4, 3)], [controller("tsc-1", "traffic")])

decide(policy_input) := decision if {
	decision := data.bulkhead.containment.decision with input as policy_input
		with data.inventory as city
		with data.guardrails as guardrails
}

explain(policy_input) := explained if {
	explained := data.bulkhead.containment.explain with input as policy_input
		with data.inventory as city
		with data.guardrails as guardrails
}

step(decision, id) := found if {
	some found in decision.steps
	found.id == id
}

ids(decision) := [s.id | some s in decision.steps]
