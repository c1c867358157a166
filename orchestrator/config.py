"""Settings from environment (`BULKHEAD_…`), an optional TOML file, then defaults."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, IPvAnyNetwork, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from orchestrator.ingest.sources import SourceConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POLICY_DIR = REPO_ROOT / "policies"
WEBHOOK_SECRET_FILE = "webhook-secret"  # noqa: S105 - a file name, not a secret


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BULKHEAD_", extra="forbid")

    state_dir: Path = Path(".bulkhead")
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_tls: bool = False
    temporal_tls_ca: Path | None = None
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    # --- Temporal clusters, Temporal Cloud and the lab (#16; docs/DEPLOYMENT.md) ------------
    # An API key (Temporal Cloud) goes out as `authorization: Bearer <key>`, so it turns TLS
    # on: a key is never sent in the clear. Any CA, client cert or server name does too.
    temporal_api_key: SecretStr | None = None
    # The name the server's certificate must carry (also the TLS SNI and HTTP/2 authority)
    # when it differs from the host in temporal_address, e.g. an address behind a proxy.
    temporal_tls_server_name: str | None = None
    # Task slots one worker process takes at once; unset: temporalio's default for
    # activities, two per core (at least 4) for workflow tasks (wiring/worker.py). A
    # cached workflow needs two workflow-task slots (the SDK refuses fewer).
    max_concurrent_activities: int | None = Field(default=None, ge=1)
    max_concurrent_workflow_tasks: int | None = Field(default=None, ge=2)
    # Run the workflows in temporalio's sandbox, which imports the workflow module afresh
    # for every run a worker starts: 35-40% of time-to-contain (docs/PERFORMANCE.md,
    # session 7). Off in production; the test suite runs every workflow test and every
    # replay in it, so a clock read or a file opened in workflows/ fails CI.
    workflow_sandbox: bool = False
    # True only where the local lab runs (`bulkhead up` and `make run` set it; or
    # BULKHEAD_LAB=true next to `bulkhead lab up`): then an inventory record without an
    # endpoint means the lab's simulator. Off, such a record is a configuration error that
    # `bulkhead adapters check` names and `bulkhead worker` refuses to start on.
    lab: bool = False
    # --- end of Temporal clusters and the lab (#16) ------------------------------------------
    task_queue: str = "bulkhead"
    policy_dir: Path = DEFAULT_POLICY_DIR
    # Policy engine: "embedded" (regorus, in-process, hot-reloads policy_dir) or "opa"
    # (an OPA server at opa_url serving the same policies; see README "Policies").
    policy_engine: Literal["embedded", "opa"] = "embedded"
    policy_reload_interval_s: float = Field(default=1.0, ge=0)  # 0 turns hot reload off
    opa_url: str = "http://127.0.0.1:8181"
    opa_timeout_s: float = Field(default=1.0, gt=0)
    opa_token: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # --- Webhooks (#8): per-source authentication and payload limits ----------------------
    # `[sources.<name>]` tables in the TOML file (auth, secrets/tokens, tolerance_s,
    # allow_ips; see orchestrator/ingest/sources.py and docs/SIEMS.md). BULKHEAD_SOURCES takes
    # the same as JSON and is merged over the file, so a deployment can keep the tables
    # in the file and inject only the tokens from its secret store. A source without a
    # table is HMAC-signed with webhook_secret; max_body_bytes bounds every body.
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    webhook_max_depth: int = Field(default=32, ge=2, le=256)  # nesting of objects/arrays
    webhook_max_array_items: int = Field(default=1000, gt=0)  # any array, and NDJSON lines
    # --- end of webhooks (#8) ---------------------------------------------------------------
    # Where inventory records' relative credential file names resolve. Unset: the lab's
    # secrets directory when `lab` is on (the lab writes its credentials there), else
    # <state_dir>/secrets (orchestrator/wiring/adapters.py).
    secrets_dir: Path | None = None
    lab_host: str = "127.0.0.1"
    lab_modbus_port: int = 15020
    # The lab's identity servers (slapd, SCIM, OpenBao) and service simulators (OPC UA,
    # HTTP city service); inventory endpoint "lab" resolves to these on lab_host.
    lab_ldap_port: int = 15389
    lab_scim_port: int = 15380
    lab_vault_port: int = 15820
    lab_opcua_port: int = 14840
    lab_http_port: int = 15081
    # The network lab's namespaces are <prefix>gw and <prefix><zone>; inventory endpoint
    # "lab" is <prefix>gw. Short: the names become file names under /run/netns.
    lab_netns_prefix: str = Field(default="bh-", pattern=r"^[a-z][a-z0-9-]{0,11}$")
    nft_timeout_s: float = Field(default=5.0, gt=0)  # one `nft` call at an enforcement point
    # After a guarded step is verified, wait this long before probing its essential
    # services again: harm can take a moment to show. Containment does not wait for it:
    # the step is reported contained, and the workflow probes again after a timer.
    guard_settle_s: float = Field(default=1.0, ge=0)
    # While a step holds, its target is verified again this often: a reboot or a hand
    # that undid the containment is caught, and the step re-applied or escalated.
    drift_check_s: int = Field(default=30, ge=1)
    log_level: str = "info"
    # A standalone `bulkhead worker` serves its Prometheus metrics here (`bulkhead up`
    # serves them at the API's /metrics); unset: not served.
    worker_metrics_port: int | None = None
    # OpenTelemetry traces: "console" prints spans, "otlp" sends them to otlp_endpoint.
    tracing: Literal["off", "console", "otlp"] = "off"
    otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    principals_file: Path | None = None  # default: <state_dir>/principals.json
    # Audit export beyond the JSONL file: a signed webhook and/or PostgreSQL.
    audit_webhook_url: str | None = None
    audit_webhook_secret: SecretStr | None = None
    audit_postgres_dsn: SecretStr | None = None
    # --- Audit integrity (#16 item 4) --------------------------------------------------------
    # The key that seals the audit chain (HMAC-SHA256) and signs its checkpoints. It lives
    # outside the audit file so that whoever can edit the file cannot re-seal it. Unset: the
    # key in <state_dir>/audit-key, generated there (0600) by the first worker. Every worker
    # of one trail and every `bulkhead audit verify` of it needs the same key.
    # At least 32 characters (checked where the key is read: a validation error would echo it).
    audit_key: SecretStr | None = None
    # The key the API MACs responder grants with and workers verify them with (#16 item 3);
    # unset: <state_dir>/approval-key, made by the first process that needs it.
    approval_key: SecretStr | None = None
    # A signed checkpoint of every incident's head is written this long after the trail
    # last changed (and at once at each release), to the checkpoint file and the anchors.
    audit_checkpoint_interval_s: float = Field(default=60.0, gt=0)
    # --- end of audit integrity (#16 item 4) -----------------------------------------------
    # --- Events out (#19): each step outcome as an OCSF Remediation event (docs/SIEMS.md) --
    # A webhook signed with Standard Webhooks (the secret is whsec_<base64 key>), and/or
    # syslog: RFC 5424 over TCP to host:port (octet-counted), over TLS when
    # events_syslog_tls or a CA file is set (unset CA: the system's roots).
    events_webhook_url: str | None = None
    events_webhook_secret: SecretStr | None = None
    events_syslog_address: str | None = None
    events_syslog_tls: bool = False
    events_syslog_tls_ca: Path | None = None
    # --- end of events out (#19) -------------------------------------------------------------
    # --- Notifications (#19 item 1; docs/NOTIFICATIONS.md) ----------------------------------
    # Apprise URLs (BULKHEAD_NOTIFY_URLS as a JSON list), each optionally with tags before it
    # as Apprise's text config writes them: "duty,ops=json://host/path". The notify policy
    # (policies/bulkhead/notify/) names the tags each event goes to. Empty: nobody is told.
    notify_urls: list[str] = Field(default_factory=list)
    # Where people reach the console: messages link to <public_url>/console/incidents/<id>.
    # Unset: http://<api_host>:<api_port>, which is right only on the API's own machine.
    public_url: str | None = None
    # --- end of notifications (#19) ----------------------------------------------------------
    # Raw SIEM payloads (the claim check, orchestrator/ingest/raw_store.py): PostgreSQL when set,
    # else files under <state_dir>/raw. Several API processes need the shared one.
    raw_postgres_dsn: SecretStr | None = None
    # The CLI's bearer token for responder commands (env BULKHEAD_TOKEN, or `token` in TOML).
    token: SecretStr | None = None
    # OIDC for responders (optional): bearer JWTs from this issuer, checked against its
    # JWKS (a URL, or a file for an offline key set); roles from `oidc_roles_claim`.
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_jwks_file: Path | None = None
    oidc_roles_claim: str = "roles"
    oidc_name_claim: str = "preferred_username"
    oidc_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    oidc_leeway_s: int = Field(default=30, ge=0)
    # Without an audience any token of the issuer is accepted, including ones minted for
    # other applications; refusing to start unless told so keeps that a conscious choice.
    oidc_allow_any_audience: bool = False
    # --- OpenC2 consumer (#20; docs/STANDARDS.md) ----------------------------------------------
    # Commands a producer may send a minute (the `rate_limit` of `query features`); past it
    # a command is answered 503. A `complete` command waits this long for its step.
    openc2_rate_limit: int = Field(default=60, ge=1)
    openc2_wait_s: float = Field(default=20.0, gt=0, le=120)
    # --- The front door (#14) ----------------------------------------------------------------
    # /metrics: served to loopback clients only unless metrics_public; a bearer token when set.
    metrics_token: SecretStr | None = None
    metrics_public: bool = False
    # Proxies whose X-Forwarded-For is believed (client addresses for IP allowlists and
    # /metrics). Empty: the socket's peer is the client, whatever a header claims.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    # /docs and /redoc (Swagger UI, ReDoc) load scripts from a public CDN: off by default.
    # /openapi.json is always served.
    api_docs: bool = False
    # Policy dry runs (POST /v1/policy/evaluate) evaluated at once, off the event loop.
    evaluate_concurrency: int = Field(default=2, ge=1, le=32)
    # A client must send its request headers within this, and an idle keep-alive
    # connection is closed after http_keepalive_timeout_s (slowloris).
    http_header_timeout_s: float = Field(default=10.0, gt=0)
    http_keepalive_timeout_s: float = Field(default=5.0, gt=0)
    # A request body must arrive in full within this (a trickled body holds a socket).
    http_body_timeout_s: float = Field(default=30.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        # The TOML file named by --config (load_settings) or else BULKHEAD_CONFIG.
        config_file = settings_cls.model_config.get("toml_file") or _env_path("BULKHEAD_CONFIG")
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @property
    def principals_path(self) -> Path:
        return self.principals_file or self.state_dir / "principals.json"

    @property
    def lab_dir(self) -> Path:
        """Where the lab keeps its servers' data and the secrets it generates."""
        return self.state_dir / "lab"

    @property
    def lab_secrets_dir(self) -> Path:
        """The lab's credentials (0600); inventory records name files relative to it."""
        return self.lab_dir / "secrets"

    @property
    def lab_gateway_netns(self) -> str:
        return f"{self.lab_netns_prefix}gw"

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def console_base_url(self) -> str:
        return (self.public_url or self.api_url).rstrip("/")


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings; explicit overrides (CLI flags) beat env, which beats the TOML file."""
    if config_file is None:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    if not config_file.is_file():
        raise FileNotFoundError(f"config file {config_file} does not exist")
    # A subclass that names the file reads it as its lowest source; the values are then
    # taken as plain Settings (model_validate reads no source again), so the result pickles
    # and compares like any other.
    from_file = type(
        "SettingsFromFile",
        (Settings,),
        {"model_config": {**Settings.model_config, "toml_file": config_file}},
    )
    read = from_file(**{k: v for k, v in overrides.items() if v is not None})
    return Settings.model_validate(dict(read))


def secure_state_dir(state_dir: Path) -> None:
    """The state dir 0700 and everything in it private to its owner (0600 for files).

    A state dir made by an older version, or by hand, is tightened in place; symlinks
    are left alone (they may point outside it)."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    for path in state_dir.rglob("*"):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            path.chmod(mode & 0o700)


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_secret(settings: Settings, *, create: bool = False) -> str | None:
    """The dev secret: env first, else the one generated into the state dir."""
    if settings.webhook_secret is not None:
        return settings.webhook_secret.get_secret_value()
    path = settings.state_dir / WEBHOOK_SECRET_FILE
    if path.is_file():
        return path.read_text().strip()
    if not create:
        return None
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    secret = new_webhook_secret()
    # Created 0600 from the start so the secret is never world-readable, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret
