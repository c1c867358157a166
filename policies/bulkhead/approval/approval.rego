# METADATA
# title: Who may do what to an incident
# description: |
#   Input (schemas/authorization-input.schema.json): action, principal {id, name, roles},
#   incident, step (with its approval and, when known, the approvals it already has).
#   Identity is the principal's id (local:<name>, oidc:<issuer>#<sub>), never its display
#   name: one IdP user may show under several names, and two people may share one.
#   Roles: responder, duty-officer, admin, viewer, policy-engineer, openc2-producer.
#   - approve: a holder of one of the step's approval roles (or, when it names none,
#     responder or duty-officer); never twice by one principal (by id); the last approvals
#     must bring the roles in must_include_roles that earlier approvers lacked.
#   - deny: as approve, or admin: not acting is always the safe direction for services.
#   - extend, release: responder, duty-officer, or admin.
#   - pause, resume (automation): duty-officer or admin.
#   - command (POST /v1/openc2): openc2-producer. A producer also releases what it
#     commanded: a release whose step names it in `commanded_by` (its OpenC2 undo:
#     delete slpf:rule_number, allow device, set er:account enabled).
#   - a late approval: a step nobody approved by its deadline was escalated
#     (`input.step.overdue`); approving it now takes the role it was escalated to,
#     duty-officer, on top of the step's own rules. Denying it late stays open to all
#     who may deny: not acting is the safe direction.
#   admin runs the system but is no approver: putting a change on city infrastructure
#   needs an operational role. viewer and policy-engineer never mutate an incident.
package bulkhead.approval

import data.bulkhead.lib

default allow := false

# METADATA
# entrypoint: true
allow if {
	permitted
	not refused
}

roles := {role | some role in object.get(input, ["principal", "roles"], [])}

principal := object.get(input, ["principal", "name"], "")

# Inputs from before ids existed named local principals only.
principal_id := object.get(input, ["principal", "id"], local_id(principal))

local_id(name) := sprintf("local:%v", [name])

approver_id(prior) := object.get(prior, "principal_id", local_id(object.get(prior, "principal", "")))

step_id := object.get(input, ["step", "id"], "")

# The roles a step's approval names, else the default approvers. The default is read by
# its full path, not through the import: regorus resolves `lib.<rule>` by evaluating the
# whole data.bulkhead.lib document first, ~15 % of an approval's evaluation (issue #18).
qualifying_roles := {role | some role in input.step.approval.roles} if {
	count(input.step.approval.roles) > 0
} else := {role | some role in data.bulkhead.lib.default_approver_roles}

lifecycle_roles := {"responder", "duty-officer", "admin"}

automation_roles := {"duty-officer", "admin"}

# A null or missing step is no step.
has_step if is_object(input.step)

known_actions := {"approve", "deny", "extend", "release", "pause", "resume", "command"}

producer_role := "openc2-producer"

qualified_for_step if {
	some role in roles
	role in qualifying_roles
}

# What each action takes, one definition of `may` per way to be allowed it. A function of
# the action rather than seven `permitted` rules that each test it: regorus evaluates every
# definition of a rule, but meets a definition for another action at its argument, before
# its body (~5 % of an approval's evaluation, issue #18).
permitted if may(input.action)

may("approve") if {
	has_step
	qualified_for_step
}

may("deny") if {
	has_step
	qualified_for_step
}

may("deny") if {
	has_step
	"admin" in roles
}

may(action) if {
	action in {"extend", "release"}
	some role in roles
	role in lifecycle_roles
}

may(action) if {
	action in {"pause", "resume"}
	some role in roles
	role in automation_roles
}

may("command") if {
	producer_role in roles
}

# A producer undoes its own command, and nothing else (the API releases the steps it
# commanded one by one; the incident's other steps stay).
may("release") if {
	producer_role in roles
	has_step
	input.step.commanded_by == principal_id
}

# --- four-eyes: approvals the step already has (optional in the input) ----------------------

prior_approvals := object.get(input, ["step", "approvals"], [])

already_approved if {
	some prior in prior_approvals
	approver_id(prior) == principal_id
}

held_before(role) if {
	some prior in prior_approvals
	role in object.get(prior, "roles", [])
}

# Roles the step must see among its approvers that neither earlier approvers nor this
# principal bring.
still_missing := {role |
	some role in object.get(input, ["step", "approval", "must_include_roles"], [])
	not held_before(role)
	not role in roles
}

slots_after := object.get(input, ["step", "approval", "required"], 0) - count(prior_approvals) - 1

refused if {
	input.action == "approve"
	already_approved
}

late_approver_roles := {"duty-officer"}

overdue if input.step.overdue == true

refused if {
	input.action == "approve"
	overdue
	not late_approver
}

late_approver if {
	some role in roles
	role in late_approver_roles
}

refused if {
	input.action == "approve"
	count(still_missing) > 0
	count(still_missing) > slots_after
}

# --- reasons: why not ------------------------------------------------------------------------

reasons contains sprintf("unknown action %v", [input.action]) if {
	not input.action in known_actions
}

reasons contains sprintf("%s needs a step", [input.action]) if {
	input.action in {"approve", "deny"}
	not has_step
}

reasons contains "viewer is read-only" if {
	not allow
	"viewer" in roles
}

reasons contains sprintf("%s of step %s needs one of the roles %s; %s holds %s", [input.action, step_id, lib.joined(qualifying_roles), principal, roles_text]) if {
	not allow
	input.action in {"approve", "deny"}
	has_step
	not qualified_for_step
	not admin_denying
}

reasons contains sprintf("%s needs one of the roles %s; %s holds %s", [input.action, lib.joined(lifecycle_roles), principal, roles_text]) if {
	input.action in {"extend", "release"}
	not permitted
}

reasons contains sprintf("an OpenC2 command needs the role %s; %s holds %s", [producer_role, principal, roles_text]) if {
	input.action == "command"
	not permitted
}

reasons contains sprintf("%s automation needs one of the roles %s; %s holds %s", [input.action, lib.joined(automation_roles), principal, roles_text]) if {
	input.action in {"pause", "resume"}
	not permitted
}

reasons contains sprintf("%s already approved step %s: the next approval must come from someone else", [principal, step_id]) if {
	input.action == "approve"
	already_approved
}

reasons contains sprintf("step %s still needs an approver with the role %s", [step_id, lib.joined(still_missing)]) if {
	input.action == "approve"
	has_step
	count(still_missing) > 0
	count(still_missing) > slots_after
}

reasons contains sprintf("step %s is overdue and was escalated: a late approval needs the role %s; %s holds %s", [step_id, lib.joined(late_approver_roles), principal, roles_text]) if {
	input.action == "approve"
	overdue
	not late_approver
}

admin_denying if {
	input.action == "deny"
	"admin" in roles
}

roles_text := lib.joined(roles) if {
	count(roles) > 0
} else := "no role"
