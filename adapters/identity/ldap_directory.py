"""One LDAP directory from the inventory, and the DN syntax the LDAP adapter needs.

`LdapDirectory.from_config` reads an inventory record (config mistakes are ValueErrors,
so a loader catches one type); the instance knows where an account lives, where the
`move` strategy puts it, and where the account's own password is kept for verify.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

from adapters.base import PermanentAdapterError
from adapters.identity.ldap3_quiet import escape_rdn, to_dn
from adapters.identity.systems import lab_or
from adapters.secrets import SecretRef

Strategy = Literal["lock", "groups", "move"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)


@dataclass(frozen=True)
class LdapDirectory:
    """One directory from the inventory; `account_dn` is a template with `{identity}`."""

    system: str
    url: str
    bind_dn: str
    password: SecretRef
    account_dn: str
    strategy: Strategy = "lock"
    groups_base: str | None = None
    disabled_ou: str | None = None
    # The account's own password, as a template (`{identity}` in the file or env name);
    # used by verify only, to prove that a bind as the account fails.
    probe_password: SecretRef | None = None
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"{self.system}: strategy must be one of {', '.join(STRATEGIES)}, "
                f"not {self.strategy!r}"
            )
        if "{identity}" not in self.account_dn:
            raise ValueError(f"{self.system}: account_dn must contain {{identity}}")
        if self.strategy == "move" and not self.disabled_ou:
            raise ValueError(f"{self.system}: the move strategy needs disabled_ou")
        if not self.url.startswith(("ldap://", "ldaps://")):
            raise ValueError(
                f"{self.system}: url (endpoint) must be ldap:// or ldaps://, got {self.url!r}"
            )
        if self.timeout_s <= 0:
            raise ValueError(f"{self.system}: timeout_s must be positive")

    @classmethod
    def from_config(
        cls,
        system: str,
        config: Mapping[str, Any],
        *,
        url: str | None = None,
        secrets_dir: Path | None = None,
    ) -> LdapDirectory:
        """Read an inventory record; file names are relative to `secrets_dir`."""
        record = dict(config)
        if "password" in record or "probe_password" in record:
            raise ValueError(f"{system}: passwords are read from *_file or *_env keys only")
        endpoint = lab_or(_text(system, record, "endpoint"), url, f"{system}: key 'endpoint'")
        password = SecretRef.from_config(record, "password", base=secrets_dir)
        if password.env is None and password.file is None:
            raise ValueError(f"{system}: set key 'password_file' or 'password_env'")
        probe = SecretRef.from_config(record, "probe_password", base=secrets_dir)
        for template in (probe.env, probe.file):
            _check_template(system, "probe_password_file/_env", str(template or ""))
        timeout = record.get("timeout_s", 5.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"{system}: key 'timeout_s' must be a positive number of seconds")
        account_dn = _text(system, record, "account_dn")
        _check_template(system, "account_dn", account_dn)
        return cls(
            system=system,
            url=endpoint,
            bind_dn=_text(system, record, "bind_dn"),
            password=password,
            account_dn=account_dn,
            # Checked with the other values in __post_init__.
            strategy=cast("Strategy", record.get("strategy", "lock")),
            groups_base=_text(system, record, "groups_base", required=False),
            disabled_ou=_text(system, record, "disabled_ou", required=False),
            probe_password=probe if probe.env or probe.file else None,
            timeout_s=float(timeout),
        )

    def dn_of(self, identity: str) -> str:
        return self.account_dn.format(identity=escape_rdn(identity))

    def disabled_dn_of(self, identity: str) -> str:
        if not self.disabled_ou:
            raise PermanentAdapterError(f"{self.system}: no disabled_ou is configured")
        return f"{rdn(self.dn_of(identity))},{self.disabled_ou}"

    def probe_secret(self, identity: str) -> SecretRef | None:
        ref = self.probe_password
        if ref is None:
            return None
        env = ref.env.format(identity=identity) if ref.env else None
        file = Path(str(ref.file).format(identity=identity)) if ref.file else None
        return SecretRef(env=env, file=file)


def _text(system: str, record: Mapping[str, Any], key: str, *, required: bool = True) -> Any:
    value = record.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{system}: key {key!r} must be a non-empty string")
    return value


def _check_template(system: str, key: str, template: str) -> None:
    try:
        template.format(identity="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"{system}: key {key!r} may only use the {{identity}} field") from exc


def rdn(dn: str) -> str:
    """The first RDN of `dn` (`uid=svc-scada` of `uid=svc-scada,ou=services,...`)."""
    return str(to_dn(dn)[0])


def parent_dn(dn: str) -> str:
    """`dn` without its first RDN: the entry that holds it."""
    return ",".join(to_dn(dn)[1:])
