# METADATA
# title: Candidate containment steps
# description: |
#   What could be done about the affected assets and identities, before the guardrails
#   decide who must approve it. Each candidate carries the zones it touches.
#   Step ids are derived from the target only, so the same input gives the same ids.
package bulkhead.containment

import data.bulkhead.lib

# Stands for a zone the input or the inventory does not name; never a real zone name.
unknown_zone := "<unknown>"

# Every cut expires on the gateway itself when its lease does (`timeout_s`): a dead-man's
# switch, should Bulkhead die while holding it. A zone's isolation keeps the inventory's
# management conduits open (dispatch keeps signal pre-emption, responders their jump
# host); a quarantined host keeps none: it is the one suspected, and a conduit would let
# it reach dispatch.
conduit_ids := sort([id | some id, _ in object.get(object.get(data.inventory, "network", {}), "conduits", {})])

# How the findings named an asset, as the enrichment found it ("resource uid", "source IP
# 198.18.40.77"); a hand-written input may not say.
named(asset) := {
	"code": "asset.named",
	"text": sprintf("the findings name %s (%s)", [asset.id, concat(", ", asset.matched_by)]),
	"refs": [sprintf("asset:%s", [asset.id])],
} if {
	count(asset.matched_by) > 0 # undefined without matched_by: the else
} else := {
	"code": "asset.named",
	"text": sprintf("the findings name %s", [asset.id]),
	"refs": [sprintf("asset:%s", [asset.id])],
}

# Every candidate step, each kind one comprehension, given the settings and the parts of
# the inventory (zones, device_types, systems) that plan has bound. A function rather than
# a rule, reading nothing from data itself: regorus charges more to evaluate a rule the
# first time than to call a function, and a lookup for every rule or `data` document a
# loop names on every turn (issue #18: a decision is budgeted in microseconds). Nothing is
# a candidate unless the findings call for action; without an inventory (the parts are
# undefined), nothing is.
candidates_of(guardrails, known_zones, types, known_systems) := ((fallbacks | quarantines) | isolations) | revocations if {
	acting
	lease_s := guardrails.lease_s
	unknown := "<unknown>" # unknown_zone, written out: a rule costs more than a literal

	# A device with a safe mode is switched to it: the service keeps running, degraded.
	fallbacks := {{"zones": [object.get(asset, "zone", unknown)], "step": step, "because": because} |
		some asset in input.assets
		device_type := types[asset.type]
		device_type.safe_mode
		step := {
			"id": sprintf("fallback:%s", [asset.id]),
			"adapter": device_type.protocol,
			"action": "set",
			"target": {"asset": asset.id},
			"args": {"mode": device_type.safe_mode},
			"lease_s": lease_s.fallback,
			"reversible": true,
		}
		because := [named(asset), {
			"code": "step.fallback",
			"text": sprintf("a %s has safe mode %s: switched to it, the service keeps running degraded", [asset.type, device_type.safe_mode]),
			"refs": [sprintf("device_type:%s", [asset.type])],
		}]
	}

	# A host without a safe mode is cut off the network instead (its own address only).
	quarantines := {{"zones": [object.get(asset, "zone", unknown)], "step": step, "because": because} |
		some asset in input.assets
		not types[asset.type].safe_mode
		asset.ip
		step := {
			"id": sprintf("quarantine:%s", [asset.id]),
			"adapter": "nftables",
			"action": "contain",
			"target": {"device": asset.id},
			"args": {"timeout_s": lease_s.quarantine},
			"lease_s": lease_s.quarantine,
			"reversible": true,
		}
		because := [named(asset), {
			"code": "step.quarantine",
			"text": sprintf("%s (%s) has no safe mode: cut off the network, its own address only", [asset.id, asset.ip]),
			"refs": [sprintf("asset:%s", [asset.id])],
		}]
	}

	# A critical finding isolates every zone it touches: the attacker may already be next door.
	isolations := {{"zones": [name], "step": step, "because": because} |
		threshold := guardrails.severity.isolate_zone_at
		max_severity >= threshold
		some name in {object.get(asset, "zone", unknown) | some asset in input.assets}
		known_zones[name].cidrs
		step := {
			"id": sprintf("isolate:%s", [name]),
			"adapter": "nftables",
			"action": "contain",
			"target": {"zone": name},
			"args": {"allow": conduit_ids, "timeout_s": lease_s.isolate},
			"lease_s": lease_s.isolate,
			"reversible": true,
		}
		because := [{
			"code": "step.isolate",
			"text": sprintf("highest severity_id %d is at or above %d: zone %s is isolated (an attacker may be next door); its management conduits stay open", [max_severity, threshold, name]),
			"refs": [sprintf("zone:%s", [name])],
		}]
	}

	# A shared identity seen in the findings is revoked on every system that holds it:
	# revoking it on one system only leaves the attacker the others.
	revocations := {{"zones": identity_zones(identity), "step": step, "because": because} |
		some identity in input.identities
		some holder in identity.holders
		system := known_systems[holder]
		reversible := object.get(system, ["revocation", "reversible"], false) == true
		step := object.union(
			{
				"id": sprintf("revoke:%s@%s", [identity.id, holder]),
				"adapter": system.adapter,
				"action": object.get(system, ["revocation", "action"], "deny"),
				"target": {"identity": identity.id, "system": holder},
				"reversible": reversible,
			},
			revocation_lease(reversible),
		)
		because := [{
			"code": "step.revoke",
			"text": sprintf("the findings name shared identity %s, held by %s: revoked there too, or the attacker keeps the other systems", [identity.id, holder]),
			"refs": [sprintf("identity:%s", [identity.id]), sprintf("system:%s", [holder])],
		}]
	}
} else := set()

# An irreversible revocation has nothing to revert when a lease expires.
revocation_lease(true) := {"lease_s": settings.lease_s.revoke}

revocation_lease(false) := {}

# Where an identity is used; unknown usage is treated as an unknown (so essential) zone.
identity_zones(identity) := identity.used_in_zones if {
	count(identity.used_in_zones) > 0
} else := [unknown_zone]
