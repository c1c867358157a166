"""One marker for every patch a run of today's code takes.

Each `workflow.patched()` a new run takes records a marker, and Temporal's core SDK pairs
each marker with an upsert of the `TemporalChangeVersion` search attribute. Nine patches
made 18 of the 41 events of an incident that waits for approval, and nine visibility
writes on the server for each incident opened (bench/scale.py, docs/PERFORMANCE.md,
session 7).

A run started by this code records CURRENT alone, and CURRENT implies every earlier patch.
A run from before it replays as it was made: CURRENT is not in its history, so each patch
is still asked about by its own id, at the same point (tests/workflows/test_replay.py
replays every recorded history). A later patch is not covered by CURRENT: check it with
`workflow.patched()` on its own id, or move CURRENT on (a new id) and keep the old one
here as implied.
"""

from __future__ import annotations

from temporalio import workflow

CURRENT = "bulkhead-2026-12"  # implies every patch id that exists when it was set


def patched(patch_id: str) -> bool:
    """`workflow.patched(patch_id)`, true without a marker of its own in a run that has
    CURRENT. Decide a run's versions once, at its start: a patch asked deep in the loop can
    meet its marker at a different point of a replay than it was made."""
    return workflow.patched(CURRENT) or workflow.patched(patch_id)
