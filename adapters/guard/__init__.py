"""Guards of a containment step: watch essential services while Bulkhead acts on the city."""
