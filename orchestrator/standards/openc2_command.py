"""OpenC2 commands in: media types, the two message forms, and a command checked against the
Language Specification v1.0 (CS02, 24 November 2019) and the profiles Bulkhead consumes,
SLPF v1.0 (CS01) and Endpoint Response v1.0 (CSD01).

What is checked, and where it is written:
- LS §3.3.1: a command is an object of `action` (§3.3.1.1, one of the 20 actions), `target`
  (§3.3.1.2, exactly one; an extension target as `nsid:name` (§3.1.4) or nested under its
  namespace as the ER profile's examples write it, `{"er": {"account": ...}}`), optional
  `args` (§3.3.1.4: at least one; `start_time`, `stop_time`, `duration` (milliseconds,
  §3.4.2.2-3, at most two of the three), `response_requested`, and extension args nested
  under their namespace), `actuator` (§3.3.1.3, one namespace) and `command_id` (§3.4.2.16,
  `^\\S{0,36}$`). Nothing else (the LS JSON Schema oc2ls-v1.0.json: additionalProperties
  false).
- LS §3.4.1: the target types Bulkhead reads (IPv4-Net and IPv6-Net with an optional prefix,
  IPv4/IPv6-Connection with at least one of the five-tuple, Device, Features), SLPF §2.1.2.2
  `slpf:rule_number` (an integer), ER §2.1.3 `er:account` (uid, account_name, directory).
- The extension arguments: SLPF §2.1.3.2 (`drop_process`, `persistent`, `direction`,
  `insert_rule`) and ER §2.1.4 (`account_status`, `device_containment`,
  `permitted_addresses`, `downstream_device`, ...).

A command that breaks these is malformed: 400 (LS §3.3.2.1). One Bulkhead understands but
does not carry out is 501 (handled by the translation, openc2_consumer.py).

Why not otupy (PyPI, maintained): it pins ~40 heavy packages exactly, among them
protobuf==3.20.0 where temporalio needs the protobuf 7 of our lock, grpcio, azure,
kubernetes, openstacksdk and libvirt-python, and it has no Endpoint Response profile. The
rules above are short; tests/fixtures/openc2/ holds commands written from the specs'
annexes (SLPF Annex A, ER Annex E, LS Annex A) and the LS JSON Schema's constraints.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from orchestrator.standards.openc2 import OPENC2_CONTENT_TYPE

# HTTPS transfer v1.1 (CS01) §3.3.1: one content type for commands and responses, the
# message envelope of §3.3.2; v1.0 (CS01) §3.2.1: a bare command and a bare response each
# under a type of its own. A producer gets the form and the type it sent.
COMMAND_TYPE_V10 = "application/openc2-cmd+json;version=1.0"
RESPONSE_TYPE_V10 = "application/openc2-rsp+json;version=1.0"
MEDIA_TYPES = {
    "application/openc2+json": OPENC2_CONTENT_TYPE,
    "application/openc2-cmd+json": RESPONSE_TYPE_V10,
}

ACTIONS = frozenset(
    [
        "scan",
        "locate",
        "query",
        "deny",
        "contain",
        "allow",
        "start",
        "stop",
        "restart",
        "cancel",
        "set",
        "update",
        "redirect",
        "create",
        "delete",
        "detonate",
        "restore",
        "copy",
        "investigate",
        "remediate",
    ]
)
TARGETS = frozenset(
    [
        "artifact",
        "command",
        "device",
        "domain_name",
        "email_addr",
        "features",
        "file",
        "idn_domain_name",
        "idn_email_addr",
        "ipv4_net",
        "ipv6_net",
        "ipv4_connection",
        "ipv6_connection",
        "iri",
        "mac_addr",
        "process",
        "properties",
        "uri",
    ]
)
FEATURES = ("versions", "profiles", "pairs", "rate_limit")
RESPONSE_TYPES = ("none", "ack", "status", "complete")
PROTOCOLS = ("icmp", "tcp", "udp", "sctp")
NSID = re.compile(r"^(x-)?[A-Za-z]\w{0,15}$")  # LS §3.4.2.12: Nsid is String{1..16}
EXTENDED = re.compile(r"^((?:x-)?[A-Za-z]\w{0,15}):([A-Za-z]\w*)$")
COMMAND_ID = re.compile(r"^\S{0,36}$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*$")
TEXT_MAX = 256  # any free string Bulkhead keeps (an account name, a device id)

# The extension arguments of each profile and the values each may take (None: any of type).
PROFILE_ARGS: dict[str, dict[str, tuple[str, ...] | type | None]] = {
    "slpf": {
        "drop_process": ("none", "reject", "false_ack"),
        "persistent": bool,
        "direction": ("both", "ingress", "egress"),
        "insert_rule": int,
    },
    "er": {
        "account_status": ("enabled", "disabled"),
        "device_containment": ("network_isolation", "app_restriction", "disable_nic"),
        "permitted_addresses": dict,
        "scan_depth": ("shallow", "deep"),
        "periodic_scan": ("enabled", "disabled"),
        "downstream_device": dict,
    },
}


class CommandError(Exception):
    """Why a command is answered without being carried out: 400 malformed, 501 not
    supported (LS §3.3.2.1); `text` is the response's status_text."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def malformed(text: str) -> CommandError:
    return CommandError(400, text)


def unsupported(text: str) -> CommandError:
    return CommandError(501, text)


@dataclass(frozen=True)
class Command:
    """A well-formed command; `target` is the target's name (`nsid:name` for an extension)."""

    action: str
    target: str
    value: Any
    args: dict[str, Any] = field(default_factory=dict)  # the LS arguments
    extension_args: dict[str, dict[str, Any]] = field(default_factory=dict)  # by namespace
    actuator: str | None = None  # the actuator's namespace (its profile), if named
    command_id: str | None = None

    @property
    def response_requested(self) -> str:
        # LS §3.3.1.4: absent means `complete`.
        return str(self.args.get("response_requested", "complete"))

    def profile_args(self, nsid: str) -> dict[str, Any]:
        return self.extension_args.get(nsid, {})

    def document(self) -> dict[str, Any]:
        """The command as JSON again, in the nested form (for the policy and the audit)."""
        target_value = self.value
        nsid, _, name = self.target.partition(":")
        target = {nsid: {name: target_value}} if name else {self.target: target_value}
        args: dict[str, Any] = {**self.args, **self.extension_args}
        out: dict[str, Any] = {"action": self.action, "target": target}
        if args:
            out["args"] = args
        if self.actuator:
            out["actuator"] = {self.actuator: {}}
        if self.command_id:
            out["command_id"] = self.command_id
        return out


def response_type(content_type: str) -> str | None:
    """The response media type for a request's Content-Type; None when it is no OpenC2
    type Bulkhead takes. Parameters are compared without case or spaces; a version other
    than 1.0 is refused (LS §3.2: `application/openc2` names every 1.x version as 1.0)."""
    main, *params = (p.strip().lower() for p in content_type.split(";"))
    if main not in MEDIA_TYPES:
        return None
    version = dict(p.partition("=")[::2] for p in params if p).get("version", "1.0")
    return MEDIA_TYPES[main] if version.strip('"') == "1.0" else None


def _object(value: Any, where: str, *, keys: frozenset[str] | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise malformed(f"{where} must be an object")
    if keys is not None and set(value) - keys:
        raise malformed(f"{where}: unknown propert(ies) {sorted(set(value) - keys)}")
    return value


def _integer(value: Any, where: str, *, low: int = 0, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise malformed(f"{where} must be an integer of at least {low}")
    if high is not None and value > high:
        raise malformed(f"{where} must be at most {high}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > TEXT_MAX:
        raise malformed(f"{where} must be a string of 1 to {TEXT_MAX} characters")
    return value


def parse_net(
    value: Any, version: int, where: str
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """LS §3.4.1.9/11: an address and an optional prefix (none: one host). Host bits set
    under the prefix are refused rather than widened: a cut must be exactly what was asked."""
    if not isinstance(value, str) or len(value) > 64:
        raise malformed(f"{where} must be an IPv{version} address or CIDR string")
    try:
        net = ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as exc:
        raise malformed(f"{where}: {exc}") from None
    if net.version != version:
        raise malformed(f"{where} holds an IPv{net.version} address, not IPv{version}")
    return net


def _connection(value: Any, version: int, where: str) -> dict[str, Any]:
    """LS §3.4.1.10/12: at least one of the five-tuple; SLPF §2.1.2.1 reads it per protocol."""
    keys = frozenset({"src_addr", "src_port", "dst_addr", "dst_port", "protocol"})
    tuple_ = _object(value, where, keys=keys)
    if not tuple_:
        raise malformed(f"{where} must hold at least one of {sorted(keys)}")
    out: dict[str, Any] = {}
    for end in ("src_addr", "dst_addr"):
        if end in tuple_:
            out[end] = str(parse_net(tuple_[end], version, f"{where}.{end}"))
    for port in ("src_port", "dst_port"):
        if port in tuple_:
            out[port] = _integer(tuple_[port], f"{where}.{port}", high=65535)
    if "protocol" in tuple_:
        if tuple_["protocol"] not in PROTOCOLS:
            raise malformed(f"{where}.protocol must be one of {list(PROTOCOLS)}")
        out["protocol"] = tuple_["protocol"]
        if out["protocol"] == "icmp" and ({"src_port", "dst_port"} & set(out)):
            raise malformed(f"{where}: an icmp connection has no ports (SLPF §2.1.2.1)")
    return out


def _target_value(name: str, value: Any) -> Any:
    """The value of the targets Bulkhead reads, checked; any other target only as JSON."""
    where = f"target.{name}"
    if name == "features":
        if not isinstance(value, list) or len(value) > 10 or len(set(map(str, value))) < len(value):
            raise malformed(f"{where} must be a list of at most 10 unique features")
        if any(item not in FEATURES for item in value):
            raise malformed(f"{where}: each feature is one of {list(FEATURES)}")
        return list(value)
    if name in ("ipv4_net", "ipv6_net"):
        return str(parse_net(value, 4 if name == "ipv4_net" else 6, where))
    if name in ("ipv4_connection", "ipv6_connection"):
        return _connection(value, 4 if name == "ipv4_connection" else 6, where)
    if name == "device":
        device = _object(value, where, keys=frozenset({"hostname", "idn_hostname", "device_id"}))
        if not device:
            raise malformed(f"{where} must hold hostname, idn_hostname or device_id")
        if "hostname" in device and not HOSTNAME.match(str(device["hostname"])):
            raise malformed(f"{where}.hostname is no RFC 1123 host name")
        return {key: _text(text, f"{where}.{key}") for key, text in device.items()}
    if name == "er:account":
        account = _object(value, where, keys=frozenset({"uid", "account_name", "directory"}))
        if not account:
            raise malformed(f"{where} must hold uid, account_name or directory")
        return {key: _text(text, f"{where}.{key}") for key, text in account.items()}
    if name == "slpf:rule_number":
        return _integer(value, where)
    return value


def _target(target: Any) -> tuple[str, Any]:
    body = _object(target, "target")
    if len(body) != 1:
        raise malformed("target must hold exactly one target (LS §3.3.1.2)")
    ((key, value),) = body.items()
    if key in TARGETS:
        return key, _target_value(key, value)
    if EXTENDED.match(key):
        return key, _target_value(key, value)
    # The nested form of an extension target: {"er": {"account": {...}}}.
    if NSID.match(key) and isinstance(value, dict) and len(value) == 1:
        ((name, inner),) = value.items()
        if re.match(r"^[A-Za-z]\w*$", str(name)):
            extended = f"{key}:{name}"
            return extended, _target_value(extended, inner)
    raise malformed(f"target {key!r} is neither an LS target nor an extension `nsid:name`")


def _args(args: Any) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    body = _object(args, "args")
    if not body:
        raise malformed("args, when present, must hold at least one argument (LS §3.3.1)")
    common: dict[str, Any] = {}
    extensions: dict[str, dict[str, Any]] = {}
    for key, value in body.items():
        if key in ("start_time", "stop_time", "duration"):
            common[key] = _integer(value, f"args.{key}")
        elif key == "response_requested":
            if value not in RESPONSE_TYPES:
                raise malformed(f"args.response_requested must be one of {list(RESPONSE_TYPES)}")
            common[key] = value
        elif NSID.match(key):
            extensions[key] = _extension_args(key, value)
        else:
            raise malformed(f"args.{key} is neither an LS argument nor a profile namespace")
    if all(k in common for k in ("start_time", "stop_time", "duration")):
        raise malformed("args: only two of start_time, stop_time and duration (LS §3.3.1.4)")
    return common, extensions


def _extension_args(nsid: str, value: Any) -> dict[str, Any]:
    body = _object(value, f"args.{nsid}")
    allowed = PROFILE_ARGS.get(nsid)
    if allowed is None:
        return body  # another profile's arguments; the translation refuses the profile
    for key, item in body.items():
        if key not in allowed:
            raise malformed(f"args.{nsid}.{key} is no {nsid} argument")
        kind = allowed[key]
        if isinstance(kind, tuple) and item not in kind:
            raise malformed(f"args.{nsid}.{key} must be one of {list(kind)}")
        if kind is bool and not isinstance(item, bool):
            raise malformed(f"args.{nsid}.{key} must be true or false")
        if kind is int:
            _integer(item, f"args.{nsid}.{key}")
        if kind is dict:
            _object(item, f"args.{nsid}.{key}")
    return body


def _actuator(actuator: Any) -> str:
    body = _object(actuator, "actuator")
    if len(body) != 1:
        raise malformed("actuator must name exactly one actuator namespace (LS §3.3.1.3)")
    ((nsid, specifiers),) = body.items()
    if not NSID.match(nsid):
        raise malformed(f"actuator {nsid!r} is no namespace identifier")
    _object(specifiers, f"actuator.{nsid}")
    return str(nsid)


COMMAND_KEYS = frozenset({"action", "target", "args", "actuator", "command_id"})


def parse_command(body: Any, *, request_id: str | None = None) -> Command:
    """The command in `body`, checked (CommandError 400 when malformed). LS §3.3.1: with
    no `command_id`, the message's `request_id` is the command's id."""
    command = _object(body, "the command", keys=COMMAND_KEYS)
    for required in ("action", "target"):
        if required not in command:
            raise malformed(f"a command must have `{required}` (LS §3.3.1)")
    action = command["action"]
    if action not in ACTIONS:
        raise malformed(f"action {action!r} is not an LS action (LS §3.3.1.1)")
    target, value = _target(command["target"])
    args, extensions = _args(command["args"]) if "args" in command else ({}, {})
    actuator = _actuator(command["actuator"]) if "actuator" in command else None
    command_id = command.get("command_id", request_id)
    if command_id is not None and (
        not isinstance(command_id, str) or not COMMAND_ID.match(command_id)
    ):
        raise malformed("command_id must be a string of up to 36 non-space characters")
    return Command(action, target, value, args, extensions, actuator, command_id or None)


@dataclass(frozen=True)
class Envelope:
    """The HTTPS v1.1 message around a command (§3.3.2): echoed around the response."""

    request_id: str | None
    sender: str | None


def unwrap(body: Any, *, header_request_id: str | None) -> tuple[Any, Envelope | None]:
    """(the command, its envelope or None for a bare command). HTTPS v1.1 §3.3.3: the
    request id is the message header's, else the X-Request-ID header's."""
    if not (isinstance(body, dict) and "body" in body and "action" not in body):
        return body, None
    message = _object(body, "the message", keys=frozenset({"headers", "body", "signature"}))
    headers = _object(message.get("headers", {}), "headers")
    inner = _object(message["body"], "body", keys=frozenset({"openc2"}))
    content = _object(inner.get("openc2"), "body.openc2", keys=frozenset({"request"}))
    if "request" not in content:
        raise malformed("body.openc2 must hold a request (an OpenC2 command)")
    request_id = headers.get("request_id", header_request_id)
    if request_id is not None and not isinstance(request_id, str):
        raise malformed("headers.request_id must be a string")
    sender = headers.get("from")
    return content["request"], Envelope(request_id, sender if isinstance(sender, str) else None)
