"""One marker for every patch a run of today's code takes.

Each `workflow.patched()` a new run takes records a marker, and Temporal's core SDK pairs
each marker with an upsert of the `TemporalChangeVersion` search attribute. Nine patches
made 18 of the 41 events of an incident that waits for approval, and nine visibility
writes on the server for each incident opened (bench/scale.py, docs/PERFORMANCE.md,
session 7).

A run started by this code records CURRENT alone, and CURRENT implies every earlier patch.
A run from before it replays as it was made: CURRENT is not in its history, so each patch
is still asked about by its own id, at the same point (tests/workflows/test_replay.py
replays every recorded history).

To add a patch: give CURRENT a new id, put the old id first in PREVIOUS with the patches
it does not imply (the new one, and those its successors added), and ask for the patch
through `patched()` in the workflow's `_decide_versions`. A run recorded with an older
CURRENT then replays every patch of its day and none made after it.
"""

from __future__ import annotations

from temporalio import workflow

CURRENT = "bulkhead-2026-12g"  # implies every patch id that exists when it was set
# Earlier CURRENT markers, each with the patches it did NOT imply (those made after it):
# a run recorded with one replays every patch it implied, and none of the later ones.
PREVIOUS: tuple[tuple[str, frozenset[str]], ...] = (
    ("bulkhead-2026-12f", frozenset({"reads-recorded-before-acting", "plans-by-step"})),
    (
        "bulkhead-2026-12e",
        frozenset({"contain-in-one-call", "reads-recorded-before-acting", "plans-by-step"}),
    ),
    (
        "bulkhead-2026-12d",
        frozenset(
            {
                "guard-watches-after",
                "contain-in-one-call",
                "reads-recorded-before-acting",
                "plans-by-step",
            }
        ),
    ),
    (
        "bulkhead-2026-12c",
        frozenset(
            {
                "preview-in-task",
                "guard-watches-after",
                "contain-in-one-call",
                "reads-recorded-before-acting",
                "plans-by-step",
            }
        ),
    ),
    (
        "bulkhead-2026-12b",
        frozenset(
            {
                "plan-in-task",
                "preview-in-task",
                "guard-watches-after",
                "contain-in-one-call",
                "reads-recorded-before-acting",
                "plans-by-step",
            }
        ),
    ),
    (
        "bulkhead-2026-12",
        frozenset(
            {
                "list-before-previews",
                "plan-in-task",
                "preview-in-task",
                "guard-watches-after",
                "contain-in-one-call",
                "reads-recorded-before-acting",
                "plans-by-step",
            }
        ),
    ),
)


def patched(patch_id: str) -> bool:
    """`workflow.patched(patch_id)`, true without a marker of its own in a run that has
    CURRENT (or an earlier CURRENT made after the patch). Decide a run's versions once, at
    its start: a patch asked deep in the loop can meet its marker at a different point of
    a replay than it was made."""
    if workflow.patched(CURRENT):
        return True
    for marker, later in PREVIOUS:
        if workflow.patched(marker):
            return patch_id not in later
    return workflow.patched(patch_id)
