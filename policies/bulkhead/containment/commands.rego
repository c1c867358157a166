# METADATA
# title: OpenC2 commands
# description: |
#   A command (input.command, the incident's latest, sent to POST /v1/openc2) is a request,
#   not an order: its producer is the actor, Bulkhead has translated it into the steps it
#   asks for (input.command.steps, each with the zones it touches), and this policy decides
#   whether they become candidates. The guardrails (guardrails.rego) then treat them like
#   any other candidate: an essential zone needs two approvals, a duty-officer among them.
#   Refused outright: a producer without the openc2-producer role, and a step that would
#   cut off a whole essential zone (never on a command's say-so).
package bulkhead.containment

import data.bulkhead.lib

command_role := "openc2-producer"

# The producer may command at all (the API checks it too: this holds for any caller).
producer_may_command(command) if command_role in command.producer.roles

# The essential zones a step would cut off whole.
isolates_essential(step) := {name |
	some name in object.get(step, "whole_zones", [])
	count(lib.essential_zones(zones, [name])) > 0
}

# Candidates from the command, in the shape of steps.rego's (zones, step, because).
commanded := {{"zones": proposal.zones, "step": step, "because": because} |
	command := input.command
	producer_may_command(command)
	some proposal in command.steps
	count(isolates_essential(proposal)) == 0

	# A step the findings already call for stays the policy's own (one step per id).
	not proposal.id in own_step_ids
	lease_s := command_lease(command, proposal)
	step := object.union(
		{
			"id": proposal.id,
			"adapter": proposal.adapter,
			"action": proposal.action,
			"target": proposal.target,
			"args": command_args(proposal, lease_s),
			"reversible": object.get(proposal, "reversible", true),
		},
		command_step_lease(object.get(proposal, "reversible", true), lease_s),
	)
	because := [{
		"code": "step.commanded",
		"text": sprintf("%s commanded %s over OpenC2 (%s, command %s)", [command.producer.name, command.action, command.profile, command.command_id]),
		"refs": [sprintf("principal:%s", [command.producer.id]), sprintf("openc2:%s", [command.command_id])],
	}]
} if {
	input.command
} else := set()

own_step_ids := {candidate.step.id | some candidate in candidates_of(settings, zones, device_types, systems)}

# The lease: the command's (duration or stop_time), else the guardrails' for its kind.
command_lease(command, _) := command.lease_s

command_lease(command, proposal) := settings.lease_s.quarantine if {
	not command.lease_s
	proposal.adapter == "nftables"
} else := settings.lease_s.revoke if {
	not command.lease_s
}

# A network step's dead-man's switch is its lease, as for the policy's own cuts.
command_args(proposal, lease_s) := object.union(object.get(proposal, "args", {}), {"timeout_s": lease_s}) if {
	proposal.adapter == "nftables"
} else := object.get(proposal, "args", {})

# An irreversible step (a Vault revocation) has nothing to revert when a lease ends.
command_step_lease(true, lease_s) := {"lease_s": lease_s}

command_step_lease(false, _) := {}

# Why the policy took or refused the command: part of the decision's reasons.
command_reasons := {sprintf("openc2: %s commands %s %s", [input.command.producer.name, input.command.action, command_target(input.command)])} | command_refusals if {
	input.command
} else := set()

command_refusals := {sprintf("openc2: refused: %s holds no %s role", [input.command.producer.name, command_role]) |
	not producer_may_command(input.command)
} | {sprintf("openc2: refused: step %s would cut off essential zone %s, never on a command's say-so", [proposal.id, name]) |
	some proposal in input.command.steps
	some name in isolates_essential(proposal)
} | {"openc2: refused: the command asks for no step Bulkhead can take" |
	count(input.command.steps) == 0
}

command_target(command) := concat(" ", [key, json.marshal(value)]) if {
	some key, value in command.target
	not is_object(value)
} else := json.marshal(command.target)
