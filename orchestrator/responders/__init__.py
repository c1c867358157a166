"""Who responders are and what they may do: principals (bearer tokens), OIDC JWTs (oidc),
the local operator's token (operator), and the grants the API signs for each workflow
update (grants)."""
