"""Everything that talks to Temporal from outside a workflow: the connection and the
incident client (client), the city record (city), the search attributes the list needs
(attributes), the dev-server child (devserver), and recheck signals (recheck)."""
