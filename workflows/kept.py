"""The findings an incident keeps in its state: bounded in number and in bytes.

Every finding is counted, audited and its raw payload stored; only these are kept whole
(as compact summaries) for the policy and the responders. When the budget is spent, a
finding that changes the picture (a higher severity, a new asset or endpoint) still gets
in: it displaces the oldest of the least severe kept findings, so the policy always sees
what is news. A finding that adds nothing new is then counted but not kept.
"""

from __future__ import annotations

from contracts.compact import size_of
from contracts.findings import ActivityId, Finding

MAX_KEPT = 200
KEPT_BYTES = 512 * 1024


class KeptFindings:
    def __init__(self, findings: list[Finding]) -> None:
        self.items = list(findings)
        # Histories from before the byte budget replay with the count limit alone;
        # the workflow turns the budget on once it knows (a patch, see bound()).
        self.bounded = False
        self._bytes = 0

    def bound(self) -> None:
        self.bounded = True
        self._bytes = sum(size_of(f) for f in self.items)

    def replace(self, finding: Finding) -> bool:
        """An update or close from the SIEM replaces the finding it refers to (same uid)
        instead of adding another; a create always adds."""
        if finding.activity_id not in (ActivityId.UPDATE, ActivityId.CLOSE):
            return False
        for index, kept in enumerate(self.items):
            if kept.finding_info.uid == finding.finding_info.uid:
                if self.bounded:
                    self._bytes += size_of(finding) - size_of(kept)
                self.items[index] = finding
                return True
        return False

    def add(self, finding: Finding, *, news: bool) -> bool:
        """Keep the finding if it fits, or if it is news and room can be made."""
        if not self.bounded:
            if len(self.items) >= MAX_KEPT:
                return False
            self.items.append(finding)
            return True
        size = size_of(finding)
        while self.items and not self._fits(size):
            if not news:
                return False
            self._drop(self._least_valuable())
        self.items.append(finding)
        self._bytes += size
        return True

    def _fits(self, size: int) -> bool:
        return len(self.items) < MAX_KEPT and self._bytes + size <= KEPT_BYTES

    def _least_valuable(self) -> int:
        lowest = min(int(f.severity_id) for f in self.items)
        return next(i for i, f in enumerate(self.items) if int(f.severity_id) == lowest)

    def _drop(self, index: int) -> None:
        self._bytes -= size_of(self.items.pop(index))
