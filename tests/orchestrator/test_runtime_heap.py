"""Before serving, each process puts its startup heap out of the collector's reach
(orchestrator/runtime.py freeze_heap); garbage made afterwards is still collected."""

from __future__ import annotations

import gc
import weakref

from orchestrator.runtime import freeze_heap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_the_startup_heap_is_frozen_and_later_cycles_are_still_collected():
    before = gc.get_freeze_count()
    try:
        freeze_heap()
        assert gc.get_freeze_count() > before
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: only the collector can free it
        alive = weakref.ref(a)
        del a, b
        gc.collect()
        assert alive() is None
    finally:
        gc.unfreeze()
