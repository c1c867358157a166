"""Who responders are and what they may do: principals (bearer tokens), OIDC JWTs (oidc),
the local operator's token (operator), the grants the API signs for each workflow update
(grants); and what they do, as a service the API and the console share (service: reads,
step actions, release, the automation switch), authorized by the approval policy
(authorization), with what they send (bodies) and why an action did not happen (errors).
"""
