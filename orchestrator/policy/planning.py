"""The adapters a decision's steps go to, built from an inventory as the worker builds them,
asked only whether they would take a step: each adapter's own plan-time checks
(`validate`), which touch no target, need no root and open no connection.

`bulkhead policy check` uses it to catch, before a merge, the steps an adapter would
refuse during an incident (a zone no enforcement point guards, a mode a device lacks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from adapters.base import AdapterError
from contracts.adapter import StepCommand
from contracts.decision import DecisionStep
from orchestrator.config import Settings
from orchestrator.wiring.adapters import Endpoints, adapters_for
from orchestrator.wiring.inventory import Inventory

# Only what "lab" stands for comes from these settings, and no endpoint is contacted here,
# so the defaults do (model_construct: the environment of the checking host plays no part).
OFFLINE_SETTINGS = Settings.model_construct(lab=True)
CHECK_INCIDENT = "policy-check"


@runtime_checkable
class StepValidator(Protocol):
    def validate(self, command: StepCommand) -> None:
        """Raise an AdapterError saying why the step would be refused."""
        ...


class AdapterBuildError(ValueError):
    """The inventory holds a record no adapter can be built from (the worker would not start)."""


def command_for(step: DecisionStep) -> StepCommand:
    return StepCommand(
        incident_id=CHECK_INCIDENT,
        step_id=step.id,
        adapter=step.adapter,
        action=step.action,
        target=step.target,
        args=step.args,
    )


@dataclass(frozen=True)
class StepAdapters:
    """Every adapter the worker would build from one inventory, by adapter name."""

    adapters: dict[str, object]

    @classmethod
    def from_inventory(cls, data: dict[str, Any]) -> StepAdapters:
        """As the worker builds them (orchestrator.wiring.adapters), with the lab's endpoints."""
        inventory = Inventory(data)
        try:
            built: dict[str, object] = dict(
                adapters_for(inventory, Endpoints.from_settings(OFFLINE_SETTINGS))
            )
        except (AttributeError, KeyError, TypeError, ValueError, AdapterError) as exc:
            # KeyError: a record lacks a key the wiring indexes directly (modbus.unit);
            # AttributeError, TypeError: a record that is not an object where one belongs.
            what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
            raise AdapterBuildError(f"the adapters cannot be built: {what}") from exc
        return cls(built)

    def names(self) -> str:
        return ", ".join(sorted(self.adapters))

    def refusal(self, step: DecisionStep) -> str | None:
        """Why the step's adapter would refuse it, in the adapter's words; None if it would not."""
        adapter = self.adapters.get(step.adapter)
        if adapter is None:
            return f"no adapter {step.adapter!r} exists (adapters: {self.names()})"
        if not isinstance(adapter, StepValidator):
            # Every adapter offers `validate` today; a new one without it is not waved through.
            return f"adapter {step.adapter!r} offers no plan-time validation to check the step"
        try:
            adapter.validate(command_for(step))
        except AdapterError as exc:
            return str(exc)
        return None
