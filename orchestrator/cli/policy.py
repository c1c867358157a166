"""`bulkhead policy test|eval|check|replay|schemas`: the policy engineer's tools.

Imports of the policy machinery happen inside the commands, so `bulkhead --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from orchestrator.config import REPO_ROOT, Settings

SCHEMA_DIR = "schemas"


def register(commands: Any, common: Any) -> None:
    """Register `bulkhead policy …` on the top-level subparsers; `run` handles them."""
    policy = commands.add_parser("policy", help="test, evaluate, check and replay policies")
    policy.set_defaults(handler=run)
    sub = policy.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")

    test = sub.add_parser("test", help="run the Rego tests (test_* rules of *_test packages)")
    common(test)
    test.add_argument("dir", nargs="?", type=Path, help="policy directory (default: settings)")
    test.add_argument("--coverage", action="store_true", help="print the policy lines covered")
    test.add_argument("--run", metavar="REGEX", help="only tests whose package.name matches")

    evaluate = sub.add_parser("eval", help="evaluate one input and print the decision")
    common(evaluate)
    evaluate.add_argument("--input", required=True, type=Path, help="input, case or finding(s)")
    evaluate.add_argument("--explain", action="store_true", help="say why, step by step")
    evaluate.add_argument("--policy-dir", type=Path, help="policy directory (default: settings)")
    evaluate.add_argument("--paused", action="store_true", default=None, help="automation paused")
    evaluate.add_argument("--active", type=int, help="active automatic containments city-wide")

    check = sub.add_parser("check", help="compile, validate data, check cases/, run the tests")
    common(check)
    check.add_argument("dir", nargs="?", type=Path, help="policy directory (default: settings)")

    replay = sub.add_parser("replay", help="diff the decisions of two policy versions")
    common(replay)
    replay.add_argument("findings", type=Path, help="JSON lines: findings or incidents")
    replay.add_argument("--baseline", required=True, help="policy directory or git ref")
    replay.add_argument("--policy-dir", type=Path, help="candidate policies (default: settings)")
    replay.add_argument("--fail-on-change", action="store_true", help="exit 1 if any changed")

    schemas = sub.add_parser("schemas", help="check (or --write) policies/schemas/")
    common(schemas)
    schemas.add_argument("dir", nargs="?", type=Path, help="policy directory (default: settings)")
    schemas.add_argument("--write", action="store_true", help="regenerate them from the models")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.policy.bundle import PolicyLoadError  # noqa: PLC0415 - keeps --help fast
    from orchestrator.policy.replay import ReplayError  # noqa: PLC0415

    handlers = {
        "test": _test,
        "eval": _eval,
        "check": _check,
        "replay": _replay,
        "schemas": _schemas,
    }
    try:
        return handlers[args.policy_command](args, settings)
    except (PolicyLoadError, ReplayError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _dir(args: argparse.Namespace, settings: Settings, name: str = "dir") -> Path:
    given: Path | None = getattr(args, name, None)
    return given or settings.policy_dir


def _test(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.policy.bundle import PolicyBundle  # noqa: PLC0415
    from orchestrator.policy.testing import line_ranges, run_tests  # noqa: PLC0415

    bundle = PolicyBundle.read(_dir(args, settings))
    run = run_tests(bundle, coverage=args.coverage, match=args.run)
    for result in run.results:
        label = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "skip": "SKIP"}[result.status]
        took = f" ({result.duration_s * 1000:.1f} ms)" if result.status != "skip" else ""
        print(f"{label:<5} {result.path}{took}")
        if result.status in ("fail", "error"):
            print(f"      {result.message}")
            for line in result.prints:
                print(f"      print: {line}")
    if args.coverage:
        print("\ncoverage (policy modules; lines not covered):")
        for file in run.coverage:
            missing = line_ranges(file.not_covered) or "-"
            print(f"  {file.path:<44} {file.percent:5.1f}%  {missing}")
    passed, failed = run.count("pass"), run.count("fail") + run.count("error")
    print(f"\n{passed} passed, {failed} failed, {run.count('skip')} skipped")
    if not run.results or passed == 0:
        print("error: no Rego test ran", file=sys.stderr)
    return 0 if run.ok else 1


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.policy.dryrun import DryRunError, policy_input_from  # noqa: PLC0415
    from orchestrator.policy.embedded import EmbeddedEngine  # noqa: PLC0415
    from orchestrator.policy.explain import explain  # noqa: PLC0415

    engine = EmbeddedEngine(_dir(args, settings, "policy_dir"))
    try:
        document = json.loads(args.input.read_text())
        policy_input = policy_input_from(
            document,
            engine.inventory(),
            automation_paused=args.paused,
            active_containments=args.active,
        )
    except (OSError, ValueError) as exc:
        errors = exc.errors if isinstance(exc, DryRunError) else []
        print(f"error: {args.input}: {exc}", file=sys.stderr)
        for error in errors:
            print(f"  {error['pointer'] or '/'}: {error['detail']}", file=sys.stderr)
        return 2
    decision = engine.decide(policy_input)
    if not args.explain:
        print(decision.model_dump_json(indent=2))
        return 0
    why = explain(engine.bundle, policy_input)
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
    return 0


def _print_input_summary(policy_input: dict[str, Any], data: dict[str, Any]) -> None:
    zones = data.get("inventory", {}).get("zones", {})
    budget = data.get("guardrails", {}).get("blast_radius", {}).get("max_automatic_containments")
    findings = policy_input.get("findings", [])
    severity = max((f.get("severity_id", 0) for f in findings), default=0)
    assets = []
    for asset in policy_input.get("assets", []):
        essential = zones.get(asset.get("zone"), {}).get("essential")
        assets.append(f"{asset['id']} ({asset.get('zone')}{', essential' if essential else ''})")
    identities = [i["id"] for i in policy_input.get("identities", [])]
    print(f"findings  {len(findings)}, highest severity_id {severity}")
    print(f"assets    {', '.join(assets) or '-'}")
    print(f"identities {', '.join(identities) or '-'}")
    paused = policy_input.get("automation", {}).get("paused")
    active = policy_input.get("active_containments")
    print(f"automation {'paused' if paused else 'running'}; {active} active of budget {budget}")


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.policy import schemas  # noqa: PLC0415
    from orchestrator.policy.bundle import PolicyBundle  # noqa: PLC0415
    from orchestrator.policy.check import Check, check_bundle  # noqa: PLC0415

    directory = _dir(args, settings)
    report = check_bundle(PolicyBundle.read(directory))
    checks = list(report.checks)
    if (directory / SCHEMA_DIR).is_dir():
        stale = schemas.stale(directory / SCHEMA_DIR)
        detail = (
            f"stale: {', '.join(stale)} (run `bulkhead policy schemas --write`)"
            if stale
            else "up to date"
        )
        checks.append(Check("schemas", ok=not stale, detail=detail))
    for check in checks:
        print(f"{'ok' if check.ok else 'FAIL':<5} {check.name:<11} {check.detail}")
    ok = all(c.ok for c in checks)
    print("policy check passed" if ok else "policy check FAILED")
    return 0 if ok else 1


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.policy.bundle import PolicyBundle  # noqa: PLC0415
    from orchestrator.policy.replay import baseline_dir, read_records, render, replay  # noqa: PLC0415

    candidate_dir = _dir(args, settings, "policy_dir")
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


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
