package bulkhead.approval_test

import data.bulkhead.approval

all_actions := ["approve", "deny", "extend", "release", "pause", "resume"]

person(name, roles) := {"name": name, "roles": roles}

# An essential-zone step: two approvals, a duty-officer among them.
essential_step := {
	"id": "isolate:energy",
	"adapter": "nftables",
	"action": "contain",
	"target": {"zone": "energy"},
	"reversible": true,
	"approval": {"required": 2, "roles": ["duty-officer", "responder"], "must_include_roles": ["duty-officer"]},
}

open_step := {
	"id": "fallback:tsc-1",
	"approval": {"required": 1, "roles": [], "must_include_roles": []},
}

request(action, principal, step) := {
	"action": action,
	"principal": principal,
	"incident": {"incident_id": "inc-1", "status": "awaiting_approval", "zones": ["energy"]},
	"step": step,
}

with_prior(step, approvals) := object.union(step, {"approvals": approvals})

allowed(r) if approval.allow with input as r

reasons(r) := said if {
	said := approval.reasons with input as r
}

# --- approve ---------------------------------------------------------------------------------

test_responder_may_approve_a_step_that_names_no_roles if {
	allowed(request("approve", person("ann", ["responder"]), open_step))
}

test_duty_officer_may_approve_a_step_that_names_no_roles if {
	allowed(request("approve", person("dan", ["duty-officer"]), open_step))
}

test_approver_must_hold_one_of_the_steps_roles if {
	step := object.union(open_step, {"approval": {"required": 1, "roles": ["duty-officer"]}})
	r := request("approve", person("ann", ["responder"]), step)
	not allowed(r)
	"approve of step fallback:tsc-1 needs one of the roles duty-officer; ann holds responder" in reasons(r)
}

test_first_of_two_approvals_may_come_from_a_responder if {
	allowed(request("approve", person("ann", ["responder"]), essential_step))
}

test_last_approval_must_bring_the_missing_duty_officer if {
	step := with_prior(essential_step, [{"principal": "ann", "roles": ["responder"]}])
	r := request("approve", person("bob", ["responder"]), step)
	not allowed(r)
	"step isolate:energy still needs an approver with the role duty-officer" in reasons(r)
	allowed(request("approve", person("dan", ["duty-officer"]), step))
}

test_duty_officer_first_leaves_the_second_approval_to_any_approver if {
	step := with_prior(essential_step, [{"principal": "dan", "roles": ["duty-officer"]}])
	allowed(request("approve", person("ann", ["responder"]), step))
}

test_one_principal_never_approves_a_step_twice if {
	step := with_prior(essential_step, [{"principal": "dan", "roles": ["duty-officer"]}])
	r := request("approve", person("dan", ["duty-officer"]), step)
	not allowed(r)
	"dan already approved step isolate:energy: the next approval must come from someone else" in reasons(r)
}

# --- four-eyes by identity, not by display name -------------------------------------------

subject(id, name, roles) := {"id": id, "name": name, "roles": roles}

idp := "https://idp.city.test/realms/ops"

test_one_idp_subject_never_approves_twice_under_another_display_name if {
	step := with_prior(essential_step, [{"principal": "olivia", "principal_id": sprintf("oidc:%s#u-1", [idp]), "roles": ["responder"]}])
	r := request("approve", subject(sprintf("oidc:%s#u-1", [idp]), "u-1", ["duty-officer"]), step)
	not allowed(r)
	"u-1 already approved step isolate:energy: the next approval must come from someone else" in reasons(r)
}

test_two_idp_subjects_sharing_a_display_name_are_two_approvers if {
	step := with_prior(essential_step, [{"principal": "sam", "principal_id": sprintf("oidc:%s#u-1", [idp]), "roles": ["responder"]}])
	allowed(request("approve", subject(sprintf("oidc:%s#u-2", [idp]), "sam", ["duty-officer"]), step))
}

test_a_local_principal_and_an_idp_user_of_one_name_are_two_approvers if {
	step := with_prior(essential_step, [{"principal": "duty1", "principal_id": "local:duty1", "roles": ["responder"]}])
	allowed(request("approve", subject(sprintf("oidc:%s#duty1", [idp]), "duty1", ["duty-officer"]), step))
	not allowed(request("approve", subject("local:duty1", "duty1", ["duty-officer"]), step))
}

test_an_approval_recorded_without_an_id_is_the_local_principal_of_its_name if {
	step := with_prior(essential_step, [{"principal": "dan", "roles": ["duty-officer"]}])
	not allowed(request("approve", subject("local:dan", "dan", ["duty-officer"]), step))
	allowed(request("approve", subject(sprintf("oidc:%s#dan", [idp]), "dan", ["responder"]), step))
}

test_a_principal_sent_without_an_id_is_the_local_principal_of_its_name if {
	step := with_prior(essential_step, [{"principal": "dan", "principal_id": "local:dan", "roles": ["duty-officer"]}])
	not allowed(request("approve", person("dan", ["duty-officer"]), step))
}

test_admin_is_no_approver_without_an_operational_role if {
	r := request("approve", person("root", ["admin"]), open_step)
	not allowed(r)
	allowed(request("approve", person("root", ["admin", "responder"]), open_step))
}

test_approve_without_a_step_is_refused_saying_so if {
	r := request("approve", person("ann", ["responder"]), null)
	not allowed(r)
	"approve needs a step" in reasons(r)
}

# --- deny, extend, release -------------------------------------------------------------------

test_qualified_approver_or_admin_may_deny_a_step if {
	allowed(request("deny", person("ann", ["responder"]), essential_step))
	allowed(request("deny", person("root", ["admin"]), essential_step))
	not allowed(request("deny", person("pe", ["policy-engineer"]), essential_step))
}

test_extend_and_release_need_an_operational_role_or_admin if {
	every action in ["extend", "release"] {
		allowed(request(action, person("ann", ["responder"]), open_step))
		allowed(request(action, person("dan", ["duty-officer"]), open_step))
		allowed(request(action, person("root", ["admin"]), open_step))
		not allowed(request(action, person("pe", ["policy-engineer"]), open_step))
	}
}

# --- automation --------------------------------------------------------------------------------

test_pause_and_resume_need_a_duty_officer_or_admin if {
	every action in ["pause", "resume"] {
		allowed(request(action, person("dan", ["duty-officer"]), null))
		allowed(request(action, person("root", ["admin"]), null))
		not allowed(request(action, person("ann", ["responder"]), null))
	}
	"pause automation needs one of the roles admin, duty-officer; ann holds responder" in reasons(request("pause", person("ann", ["responder"]), null))
}

# --- never ---------------------------------------------------------------------------------------

test_viewer_never_mutates_anything if {
	every action in all_actions {
		not allowed(request(action, person("vic", ["viewer"]), open_step))
	}
	"viewer is read-only" in reasons(request("approve", person("vic", ["viewer"]), open_step))
}

test_policy_engineer_never_mutates_an_incident if {
	every action in all_actions {
		not allowed(request(action, person("pe", ["policy-engineer"]), open_step))
	}
}

test_principal_without_roles_may_do_nothing if {
	every action in all_actions {
		not allowed(request(action, person("nobody", []), open_step))
	}
	"approve of step fallback:tsc-1 needs one of the roles duty-officer, responder; nobody holds no role" in reasons(request("approve", person("nobody", []), open_step))
}

test_unknown_action_is_refused_saying_so if {
	r := request("delete", person("root", ["admin", "duty-officer"]), open_step)
	not allowed(r)
	"unknown action delete" in reasons(r)
}

test_empty_request_is_refused if {
	not allowed({})
}

test_every_refusal_says_why if {
	refused := [
		request("approve", person("vic", ["viewer"]), open_step),
		request("pause", person("ann", ["responder"]), null),
		request("release", person("pe", ["policy-engineer"]), open_step),
		request("approve", person("ann", ["responder"]), with_prior(essential_step, [{"principal": "ann", "roles": ["responder"]}])),
	]
	every r in refused {
		not allowed(r)
		count(reasons(r)) > 0
	}
}

test_an_allowed_request_carries_no_reasons if {
	r := request("approve", person("ann", ["responder"]), open_step)
	allowed(r)
	count(reasons(r)) == 0
}

# --- a late approval (the step was escalated at its deadline) ---------------------------------

overdue_step := object.union(open_step, {"overdue": true})

test_a_late_approval_needs_the_role_the_step_was_escalated_to if {
	not allowed(request("approve", person("alice", ["responder"]), overdue_step))
	allowed(request("approve", person("dora", ["duty-officer"]), overdue_step))
}

test_a_late_approval_refused_says_it_is_late if {
	some text in reasons(request("approve", person("alice", ["responder"]), overdue_step))
	contains(text, "overdue")
	contains(text, "duty-officer")
}

test_a_step_on_time_needs_no_duty_officer if {
	allowed(request("approve", person("alice", ["responder"]), open_step))
}

test_a_late_step_can_still_be_denied_by_any_approver if {
	allowed(request("deny", person("alice", ["responder"]), overdue_step))
}

test_a_late_approval_keeps_four_eyes if {
	late := with_prior(object.union(essential_step, {"overdue": true}), [{"principal": "dora", "principal_id": "local:dora", "roles": ["duty-officer"]}])
	not allowed(request("approve", person("dora", ["duty-officer"]), late))
	allowed(request("approve", person("erin", ["duty-officer"]), late))
}
