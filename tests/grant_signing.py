"""Tests that act on incidents straight through Temporal (no API) sign like the API does.

The workflow refuses an approve/deny/extend/release without the API's grant (#16 item
3). Many workflow tests drive Updates directly, to test the workflow rather than HTTP;
the shared test client signs those with the tests' approval key, exactly as the API
would after its policy allowed them. A request that already carries a grant (the API's
own, or a forged one a test sends on purpose) is left as it is, and the forgery tests
use a client without this interceptor.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SecretStr
from temporalio.client import Client, Interceptor, OutboundInterceptor, StartWorkflowUpdateInput

from contracts.incident import (
    ApproveRequest,
    DenyRequest,
    ExtendRequest,
    ReleaseRequest,
    ReleaseStepRequest,
)
from orchestrator.responders import grants

TEST_APPROVAL_KEY = SecretStr("tests-approval-key-" + "k" * 32)
REQUESTS: dict[str, type[BaseModel]] = {
    "approve": ApproveRequest,
    "deny": DenyRequest,
    "extend": ExtendRequest,
    "release": ReleaseRequest,
    "release_step": ReleaseStepRequest,
}
ACTIONS = frozenset(REQUESTS)
# The grant names the action the policy allowed; releasing one step is a release of it.
GRANTED_AS = {"release_step": "release"}


class SigningInterceptor(Interceptor):
    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:  # noqa: A002
        return _Signing(next)


class _Signing(OutboundInterceptor):
    async def start_workflow_update(self, input: StartWorkflowUpdateInput) -> Any:  # noqa: A002
        request = input.args[0] if len(input.args) == 1 else None
        if input.update in ACTIONS and request is not None:
            input.args = [_signed(request, input.update, input.id)]
        return await super().start_workflow_update(input)


def _signed(request: Any, action: str, workflow_id: str) -> Any:
    key = TEST_APPROVAL_KEY.get_secret_value().encode()
    if isinstance(request, dict):  # a raw payload (as an older client sends): same grant
        if "grant" in request:
            return request
        model = REQUESTS[action].model_validate(request)
        grant = grants.granted(key, model, GRANTED_AS.get(action, action), workflow_id).grant
        return {**request, "grant": grant.model_dump(mode="json")}
    if request.grant is not None:
        return request
    return grants.granted(key, request, GRANTED_AS.get(action, action), workflow_id)


def signing_client(client: Client) -> Client:
    """The same connection, with its responder Updates signed as the API would."""
    config = client.config()
    config["interceptors"] = [*config["interceptors"], SigningInterceptor()]
    return Client(**config)
