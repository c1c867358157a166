"""Bulkhead in the words of open standards: an incident's containment as a CACAO 2.0
playbook (`cacao`), its steps as OpenC2 commands where a profile has them (`openc2`), and
the check of a CACAO playbook a user brings (`cacao_check`). Pure functions: no I/O."""
