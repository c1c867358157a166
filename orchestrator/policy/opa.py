"""OPA server engine: the REST data API through opa-python-client's async client.

`POST /v1/data/bulkhead/containment/decision {"input": …}` answers `{"result": …,
"decision_id": …}`; the result is absent when the rule is undefined, and `decision_id`
is present only when OPA's decision logging is on (we mint one otherwise, so the audit
can still point at the decision). Every failure (connection, timeout, HTTP error, bad
JSON) fails closed: an escalation, or a refusal for authorization.

The client is aiohttp-based and its session belongs to one event loop, while the engine
protocol is synchronous (the embedded engine answers in microseconds). So the client
lives on a private loop in a daemon thread and each call waits for it with a deadline:
a caller is never blocked longer than `timeout_s`. Client retries are off: a retry on a
500 (which is how OPA reports an evaluation error) would only delay the escalation.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import uuid
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import structlog
from opa_client import AsyncOpaClient  # type: ignore[import-untyped]  # ships no types

from contracts.decision import Decision
from orchestrator.policy.base import (
    Authorization,
    AuthorizationRequest,
    escalation,
    tags_from,
)
from orchestrator.policy.bundle import PolicyBundle
from orchestrator.policy.models import ContainmentInput
from orchestrator.policy.results import (
    InvalidRequestError,
    authorization_document,
    authorization_from,
    canonical_json,
    decision_from,
    digest_of,
    refusal,
)
from orchestrator.policy.status import PolicyStatus

if TYPE_CHECKING:
    from orchestrator.policy.explain import Explanation  # builds regorus engines; a type here

log = structlog.get_logger(__name__)

CONTAINMENT_PACKAGE, CONTAINMENT_RULE = "bulkhead.containment", "decision"
APPROVAL_PACKAGE = "bulkhead.approval"
NOTIFY_PACKAGE = "bulkhead.notify"
# Waiting for the private loop costs a little beyond the HTTP deadline itself.
GRACE_S = 0.25


class OpaError(Exception):
    """OPA could not be asked, or answered something that is not a policy result."""


class OpaEngine:
    name = "opa"

    def __init__(
        self,
        url: str,
        *,
        policy_version: str,
        timeout_s: float = 1.0,
        token: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"OPA URL must be http(s)://host[:port], not {url!r}")
        self.url = url
        self.timeout_s = timeout_s
        # OPA serves what it was given; this names it (the hash of the same policy
        # directory, exported by PolicyBundle.export_for_opa).
        self._version = policy_version
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="opa-client", daemon=True
        )
        self._thread.start()
        self._client = AsyncOpaClient(
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "https" else 80),
            ssl=parts.scheme == "https",
            token=token,
            retries=0,
            timeout=timeout_s,
        )
        self._call(self._client.__aenter__())  # the aiohttp session, on the private loop

    @property
    def version(self) -> str:
        return self._version

    @property
    def bundle(self) -> PolicyBundle | None:
        return None  # OPA holds the policy; this process only asks

    def inventory(self) -> None:
        return None  # OPA's copy of the data stays in OPA; callers load the directory's

    def status(self) -> PolicyStatus:
        return PolicyStatus(
            engine=self.name, version=self._version, source=self.url, loaded_at=None
        )

    def explain(self, policy_input: ContainmentInput) -> Explanation | None:
        return None  # coverage and prints are the embedded evaluator's, not OPA's REST API

    def watcher(self, *, interval_s: float) -> Awaitable[None] | None:
        return None  # OPA is handed new policies by its deployment (bundles), not by us

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._call(self._client.close_connection())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    def _call(self, coroutine: Any) -> Any:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout=self.timeout_s + GRACE_S)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    async def _query(self, package: str, rule: str | None, document: dict[str, Any]) -> Any:
        async with asyncio.timeout(self.timeout_s):
            return await self._client.query_rule(
                input_data=document, package_path=package, rule_name=rule
            )

    def query(self, package: str, rule: str | None, document: dict[str, Any]) -> dict[str, Any]:
        """OPA's response body; OpaError for anything that is not one."""
        try:
            body = self._call(self._query(package, rule, document))
        except aiohttp.ClientResponseError as exc:
            raise OpaError(f"OPA answered {exc.status} {exc.message}") from exc
        except (TimeoutError, concurrent.futures.TimeoutError) as exc:
            raise OpaError(f"OPA did not answer within {self.timeout_s:g} s") from exc
        except (aiohttp.ClientError, ValueError, OSError) as exc:
            raise OpaError(f"OPA unreachable at {self.url}: {exc!r}") from exc
        if not isinstance(body, dict):
            raise OpaError(f"OPA answered a {type(body).__name__}, not an object")
        return body

    def decide(self, policy_input: ContainmentInput) -> Decision:
        minted = str(uuid.uuid4())
        try:
            document = policy_input.document()
            digest = digest_of(canonical_json(document))
        except (TypeError, ValueError) as exc:  # a non-JSON value where any is allowed
            return escalation(
                f"policy input is not JSON: {exc}",
                policy_version=self._version,
                decision_id=minted,
                digest="",
            )
        try:
            body = self.query(CONTAINMENT_PACKAGE, CONTAINMENT_RULE, document)
        except OpaError as exc:
            log.warning("policy.opa_error", error=str(exc), decision_id=minted)
            return escalation(
                f"policy error: {exc}",
                policy_version=self._version,
                decision_id=minted,
                digest=digest,
            )
        decision_id = str(body.get("decision_id") or minted)
        return decision_from(
            body.get("result"),
            policy_version=self._version,
            decision_id=decision_id,
            digest=digest,
        )

    def notify(self, event: dict[str, Any]) -> list[str] | None:
        try:
            body = self.query(NOTIFY_PACKAGE, "tags", {"event": event})
        except OpaError as exc:
            log.warning("notify.opa_error", error=str(exc))
            return None
        return tags_from(body.get("result"))

    def authorize(self, request: AuthorizationRequest) -> Authorization:
        minted = str(uuid.uuid4())
        try:
            document = authorization_document(request)
        except InvalidRequestError as exc:
            return refusal(str(exc), policy_version=self._version, decision_id=minted)
        try:
            # One call for allow and reasons: the package document holds both.
            body = self.query(APPROVAL_PACKAGE, None, document)
        except OpaError as exc:
            log.warning("authz.opa_error", error=str(exc), decision_id=minted)
            return refusal(
                f"approval policy error: {exc}", policy_version=self._version, decision_id=minted
            )
        decision_id = str(body.get("decision_id") or minted)
        result = body.get("result")
        package = result if isinstance(result, dict) else {}
        return authorization_from(
            package.get("allow"),
            package.get("reasons"),
            policy_version=self._version,
            decision_id=decision_id,
        )
