"""Everything that talks to Temporal from outside a workflow: the connection (client),
the typed incident client (incidents) and its errors (errors), the city record (city),
the search attributes the list needs (attributes), the dev-server child (devserver), and
recheck signals (recheck)."""
