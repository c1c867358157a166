"""`bulkhead policy test|eval|check|replay|schemas|cases`: the policy engineer's tools.

Every command takes the policy directory as `--policy-dir` (default: the configured one).
The positional directory that `test`, `check` and `schemas` once took, and `eval --input`,
still work, with a note saying what to write instead.
Imports of the policy machinery happen inside the commands, so `bulkhead --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.cli import options
from orchestrator.config import REPO_ROOT, Settings

if TYPE_CHECKING:
    from contracts.decision import Decision
    from orchestrator.policy.check import Check
    from orchestrator.policy.embedded import EmbeddedEngine
    from orchestrator.policy.models import ContainmentInput

SCHEMA_DIR = "schemas"


def _policy_dir(parser: argparse.ArgumentParser, *, legacy_positional: bool = False) -> None:
    parser.add_argument(
        "--policy-dir", type=Path, help="policy directory (default: the configured one)"
    )
    if legacy_positional:
        # Kept for scripts written before --policy-dir was everywhere; not shown in --help.
        parser.add_argument("legacy_dir", nargs="?", type=Path, help=argparse.SUPPRESS)


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON (for CI)")


def register(commands: Any) -> None:
    """Register `bulkhead policy …` on the top-level subparsers; `run` handles them."""
    policy = commands.add_parser("policy", help="test, evaluate, check and replay policies")
    policy.set_defaults(handler=run)
    sub = policy.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")

    test = sub.add_parser("test", help="run the Rego tests (test_* rules of *_test packages)")
    options.common(test)
    _policy_dir(test, legacy_positional=True)
    test.add_argument("--coverage", action="store_true", help="print the policy lines covered")
    test.add_argument("--run", metavar="REGEX", help="only tests whose package.name matches")
    _json_flag(test)

    evaluate = sub.add_parser("eval", help="evaluate one input and print the decision")
    options.common(evaluate)
    evaluate.add_argument("file", nargs="?", type=Path, help="input, case, finding(s) or payload")
    evaluate.add_argument("--input", type=Path, help="deprecated: give FILE instead")
    evaluate.add_argument("--source", metavar="SIEM", help="FILE is this SIEM's own payload")
    evaluate.add_argument("--explain", action="store_true", help="say why, step by step")
    _policy_dir(evaluate)
    evaluate.add_argument("--paused", action="store_true", default=None, help="automation paused")
    evaluate.add_argument("--active", type=int, help="active automatic containments city-wide")

    check = sub.add_parser("check", help="every stage a policy version must pass")
    options.common(check)
    _policy_dir(check, legacy_positional=True)
    _json_flag(check)

    replay = sub.add_parser("replay", help="diff the decisions of two policy versions")
    options.common(replay)
    replay.add_argument("findings", type=Path, help="JSON lines: findings or incidents")
    replay.add_argument("--baseline", required=True, help="policy directory or git ref")
    _policy_dir(replay)
    replay.add_argument("--fail-on-change", action="store_true", help="exit 1 if any changed")

    schemas = sub.add_parser("schemas", help="check (or --write) policies/schemas/")
    options.common(schemas)
    _policy_dir(schemas, legacy_positional=True)
    schemas.add_argument("--write", action="store_true", help="regenerate them from the models")

    cases = sub.add_parser("cases", help="the example decisions in cases/")
    case_commands = cases.add_subparsers(dest="cases_command", required=True, metavar="COMMAND")
    update = case_commands.add_parser(
        "update", help="regenerate expected decisions from the policy (after a review)"
    )
    options.common(update)
    _policy_dir(update)
    update.add_argument("--dry-run", action="store_true", help="show the diff, write nothing")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.policy.bundle import PolicyLoadError  # noqa: PLC0415 - keeps --help fast
    from orchestrator.policy.replay import ReplayError  # noqa: PLC0415

    handlers = {
        "test": _test,
        "eval": _eval,
        "check": _check,
        "replay": _replay,
        "schemas": _schemas,
        "cases": _cases_update,
    }
    try:
        return handlers[args.policy_command](args, settings)
    except (PolicyLoadError, ReplayError, _UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, _UsageError) else 1


class _UsageError(Exception):
    """Arguments that contradict each other."""


def _deprecated(old: str, new: str) -> None:
    print(f"note: {old} is deprecated; write {new}", file=sys.stderr)


def _dir(args: argparse.Namespace, settings: Settings) -> Path:
    given: Path | None = args.policy_dir
    legacy: Path | None = getattr(args, "legacy_dir", None)
    if legacy is not None:
        if given is not None and given != legacy:
            raise _UsageError(f"two policy directories: {legacy} and --policy-dir {given}")
        _deprecated(
            f"`bulkhead policy {args.policy_command} DIR`",
            f"`bulkhead policy {args.policy_command} --policy-dir DIR`",
        )
        given = legacy
    return given or settings.policy_dir


def _test(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.policy.bundle import PolicyBundle  # noqa: PLC0415
    from orchestrator.policy.report import tests_json, tests_text  # noqa: PLC0415
    from orchestrator.policy.testing import run_tests  # noqa: PLC0415

    bundle = PolicyBundle.read(_dir(args, settings))
    run = run_tests(bundle, coverage=args.coverage, match=args.run)
    if args.json:
        print(json.dumps(tests_json(run), indent=2))
    else:
        print(tests_text(run, coverage=args.coverage))
    if run.count("pass") == 0:
        print("error: no Rego test ran", file=sys.stderr)
    return 0 if run.ok else 1


def _eval_file(args: argparse.Namespace) -> Path:
    if args.input is not None:
        if args.file is not None:
            raise _UsageError("give the file once: FILE or --input, not both")
        _deprecated("`bulkhead policy eval --input FILE`", "`bulkhead policy eval FILE`")
        return Path(args.input)
    if args.file is None:
        raise _UsageError("bulkhead policy eval needs the FILE to evaluate")
    return Path(args.file)


def _eval_input(args: argparse.Namespace, path: Path, engine: EmbeddedEngine) -> ContainmentInput:
    """The policy input of FILE: a SIEM payload through its connector, or what dry runs read."""
    from orchestrator.policy.dryrun import input_for_findings, policy_input_from  # noqa: PLC0415
    from orchestrator.policy.siem import findings_from_source  # noqa: PLC0415

    if args.source is None:
        return policy_input_from(
            json.loads(path.read_text()),
            engine.inventory(),
            automation_paused=args.paused,
            active_containments=args.active,
        )
    found = findings_from_source(args.source, path.read_text())
    for note in found.ignored:
        print(f"note: the {args.source} connector skips {note}", file=sys.stderr)
    return input_for_findings(
        found.findings,
        engine.inventory(),
        automation_paused=bool(args.paused),
        active_containments=args.active or 0,
    )


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.policy.dryrun import DryRunError  # noqa: PLC0415
    from orchestrator.policy.embedded import EmbeddedEngine  # noqa: PLC0415

    path = _eval_file(args)
    engine = EmbeddedEngine(_dir(args, settings))
    try:
        policy_input = _eval_input(args, path, engine)
    except (OSError, ValueError) as exc:
        errors = exc.errors if isinstance(exc, DryRunError) else []
        print(f"error: {path}: {exc}", file=sys.stderr)
        for error in errors:
            print(f"  {error['pointer'] or '/'}: {error['detail']}", file=sys.stderr)
        return 2
    decision = engine.decide(policy_input)
    if not args.explain:
        print(decision.model_dump_json(indent=2))
        return 0
    _print_explanation(engine, policy_input, decision)
    return 0


def _print_explanation(
    engine: EmbeddedEngine, policy_input: ContainmentInput, decision: Decision
) -> None:
    why = engine.explain(policy_input)
    print(f"verdict   {decision.verdict.value}   (policy {decision.policy_version})")
    print(f"input     {decision.input_digest}")
    _print_input_summary(policy_input, engine.bundle.data)
    print("reasons")
    for reason in decision.reasons:
        print(f"  - {reason}")
    print("steps" if decision.steps else "steps     (none)")
    for step in decision.steps:
        approval = step.approval
        who = "automatic"
        if approval.required:
            who = f"{approval.required} approval(s) from {', '.join(approval.roles)}"
        if approval.must_include_roles:
            who += f", incl. {', '.join(approval.must_include_roles)}"
        what = " ".join(f"{k}={v}" for k, v in {**step.target, **step.args}.items())
        print(f"  {step.id}: {step.adapter} {step.action} {what} → {who}")
        for note in why.notes.get(step.id, []):
            print(f"      because {note}")
    print("policy lines evaluated")
    for module, lines in sorted(why.lines.items()):
        print(f"  {module}: {lines}")
    for line in why.prints:
        print(f"print: {line}")


def _print_input_summary(policy_input: ContainmentInput, data: dict[str, Any]) -> None:
    zones = data.get("inventory", {}).get("zones", {})
    budget = data.get("guardrails", {}).get("blast_radius", {}).get("max_automatic_containments")
    findings = policy_input.findings
    severity = max((int(f.severity_id) for f in findings), default=0)
    assets = []
    for asset in policy_input.assets:
        essential = zones.get(asset.zone, {}).get("essential")
        assets.append(f"{asset.id} ({asset.zone}{', essential' if essential else ''})")
    identities = [i.id for i in policy_input.identities]
    print(f"findings  {len(findings)}, highest severity_id {severity}")
    print(f"assets    {', '.join(assets) or '-'}")
    print(f"identities {', '.join(identities) or '-'}")
    paused = policy_input.automation.paused
    active = policy_input.active_containments
    print(f"automation {'paused' if paused else 'running'}; {active} active of budget {budget}")


def _schema_check(directory: Path) -> Check | None:
    from orchestrator.policy import schemas  # noqa: PLC0415
    from orchestrator.policy.check import Check  # noqa: PLC0415
    from orchestrator.policy.problems import Problem  # noqa: PLC0415

    if not (directory / SCHEMA_DIR).is_dir():
        return None
    stale = [
        Problem(f"{SCHEMA_DIR}/{name}", "stale: run `bulkhead policy schemas --write`")
        for name in schemas.stale(directory / SCHEMA_DIR)
    ]
    return Check.of("schemas", stale, "up to date")


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.policy.bundle import PolicyBundle  # noqa: PLC0415
    from orchestrator.policy.check import check_bundle  # noqa: PLC0415
    from orchestrator.policy.report import check_json, check_text  # noqa: PLC0415

    directory = _dir(args, settings)
    bundle = PolicyBundle.read(directory)
    checks = list(check_bundle(bundle).checks)
    if (schema_check := _schema_check(directory)) is not None:
        checks.append(schema_check)
    if args.json:
        shown = _shown(directory)
        print(json.dumps(check_json(checks, policy_dir=shown, version=bundle.version), indent=2))
    else:
        print(check_text(checks))
    return 0 if all(c.ok for c in checks) else 1


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.policy.bundle import PolicyBundle  # noqa: PLC0415
    from orchestrator.policy.replay import baseline_dir, read_records, render, replay  # noqa: PLC0415

    candidate_dir = _dir(args, settings)
    records = read_records(args.findings)
    candidate = PolicyBundle.read(candidate_dir)
    with baseline_dir(args.baseline, candidate_dir) as directory:
        baseline = PolicyBundle.read(directory)
    results = replay(records, baseline, candidate)
    print(
        render(
            results,
            before=f"baseline {args.baseline} ({baseline.version})",
            after=f"candidate {_shown(candidate_dir)} ({candidate.version})",
        )
    )
    changed = any(r.changes for r in results)
    return 1 if changed and args.fail_on_change else 0


def _schemas(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.policy import schemas  # noqa: PLC0415

    directory = _dir(args, settings) / SCHEMA_DIR
    if args.write:
        written = schemas.write(directory)
        print(f"wrote {', '.join(written)}" if written else "schemas already up to date")
        return 0
    stale = schemas.stale(directory)
    for name in stale:
        print(f"stale: {directory / name}")
    if stale:
        print("run `bulkhead policy schemas --write` to regenerate them", file=sys.stderr)
    return 1 if stale else 0


def _cases_update(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.policy.bundle import PolicyBundle  # noqa: PLC0415
    from orchestrator.policy.cases import CaseUpdateError, case_updates  # noqa: PLC0415

    directory = _dir(args, settings)
    try:
        updates = case_updates(PolicyBundle.read(directory))
    except CaseUpdateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    changed = [u for u in updates if u.changed]
    for update in changed:
        print(f"cases/{update.name}")
        for change in update.changes:
            print(f"  {change.describe()} (expected → now)")
        for reason in update.dropped_reasons:
            print(f"  - reason no longer given, dropped: {reason!r}")
        print(update.diff())
        if not args.dry_run:
            (directory / "cases" / update.name).write_text(update.after)
    verb = "would update" if args.dry_run else "updated"
    print(f"{verb} {len(changed)} of {len(updates)} case(s)")
    return 0


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
