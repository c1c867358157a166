"""docs/POLICIES.md runs as written: each section with shell blocks is played, command by
command, in a workspace of its own (a copy of policies/ and examples/ committed to a
throwaway git repository, so `--baseline HEAD` is the unedited copy).

The guide's conventions, which these tests read:
- ```sh: one command per line; `# exit N` at the end of a line is its expected exit code
  (0 otherwise); lines starting with `#` are comments.
- ```text right after a ```sh block: every line of it appears in what the block's last
  command printed (stdout and stderr).
- ```json merge=PATH: deep-merged into PATH (objects merge key by key; anything else
  replaces); ```json file=PATH: written to PATH. Other blocks are illustrations.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import DEFAULT_POLICY_DIR, REPO_ROOT
from orchestrator.policy import schemas

GUIDE = REPO_ROOT / "docs" / "POLICIES.md"
BIN = Path(sys.executable).parent  # .venv/bin: where `bulkhead` is installed
COMMAND_TIMEOUT_S = 120
_FENCE = re.compile(r"^```(?P<lang>\w*)(?P<attrs>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
_HEADING = re.compile(r"^#{2,3} (?P<title>.+)$", re.M)
_EXIT = re.compile(r"\s+#\s*exit\s+(?P<code>\d+)\s*$")


@dataclass(frozen=True)
class Block:
    lang: str
    attrs: dict[str, str]
    body: str


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def runs(self) -> bool:
        return any(b.lang == "sh" for b in self.blocks)


def sections(text: str) -> list[Section]:
    """The guide cut at its ## and ### headings (what precedes the first is "Introduction"),
    each with its fenced blocks in order."""
    found: list[Section] = []
    headings = list(_HEADING.finditer(text))
    starts = [(0, 0, "Introduction")] + [(h.start(), h.end(), h["title"]) for h in headings]
    for index, (_, body_start, title) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(text)
        section = Section(title.strip())
        for fence in _FENCE.finditer(text, body_start, end):
            attrs = dict(re.findall(r"(\w+)=(\S+)", fence["attrs"]))
            section.blocks.append(Block(fence["lang"], attrs, fence["body"]))
        found.append(section)
    return found


SECTIONS = [s for s in sections(GUIDE.read_text()) if s.runs]


def deep_merge(into: Any, change: Any) -> Any:
    if isinstance(into, dict) and isinstance(change, dict):
        return {**into, **{k: deep_merge(into.get(k), v) for k, v in change.items()}}
    return change


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the recipes replay against --baseline HEAD")
    root = tmp_path / "work"
    shutil.copytree(DEFAULT_POLICY_DIR, root / "policies")
    shutil.copytree(REPO_ROOT / "examples", root / "examples")
    # The recipes prove their own edits; the shipped schemas' freshness is test_contract's.
    schemas.write(root / "policies" / "schemas")
    identity = ["-c", "user.name=Policy Guide", "-c", "user.email=guide@example.invalid"]
    for argv in (["init", "-q"], ["add", "."], [*identity, "commit", "-q", "-m", "base"]):
        subprocess.run(["git", *argv], cwd=root, check=True, capture_output=True)
    return root


def environment(workspace: Path) -> dict[str, str]:
    """The caller's environment minus Bulkhead's settings; the copy is the policy dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKHEAD_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["BULKHEAD_POLICY_DIR"] = str(workspace / "policies")
    return env


def run_command(line: str, workspace: Path) -> str:
    found = _EXIT.search(line)
    expected = int(found["code"]) if found else 0
    command = line[: found.start()] if found else line
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=workspace,
        env=environment(workspace),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == expected, f"`{command}` exited {done.returncode}:\n{output}"
    return output


def apply_json(block: Block, workspace: Path) -> None:
    change = json.loads(block.body)
    if "merge" in block.attrs:
        path = workspace / block.attrs["merge"]
        merged = deep_merge(json.loads(path.read_text()), change)
        path.write_text(json.dumps(merged, indent=2) + "\n")
    elif "file" in block.attrs:
        path = workspace / block.attrs["file"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(change, indent=2) + "\n")


def play(section: Section, workspace: Path) -> None:
    output = ""
    for block in section.blocks:
        if block.lang == "sh":
            for line in block.body.splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    output = run_command(line.strip(), workspace)
        elif block.lang == "text":
            for expected in filter(None, (line.strip() for line in block.body.splitlines())):
                assert expected in output, f"{section.title}: not in the output: {expected!r}"
        elif block.lang == "json":
            apply_json(block, workspace)


@pytest.mark.parametrize("section", SECTIONS, ids=[s.title for s in SECTIONS])
def test_the_guide_runs_as_written(section: Section, workspace: Path) -> None:
    play(section, workspace)


def test_each_recipe_is_there_and_ends_with_the_run_that_proves_it():
    recipes = {s.title: s for s in SECTIONS if s.title.startswith("Recipe: ")}
    assert set(recipes) == {
        "Recipe: add a zone",
        "Recipe: add an asset",
        "Recipe: add an essential service",
        "Recipe: add a shared identity",
    }
    for title, recipe in recipes.items():
        commands = [
            line.strip()
            for block in recipe.blocks
            if block.lang == "sh"
            for line in block.body.splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        assert commands[-1].startswith(("bulkhead policy check", "bulkhead policy replay")), title


def test_a_wrong_expectation_in_the_guide_would_fail(workspace: Path) -> None:
    """The harness itself: a command's exit code and an output line are really checked."""
    wrong_exit = Section("x", [Block("sh", {}, "bulkhead policy check  # exit 1\n")])
    with pytest.raises(AssertionError, match="exited 0"):
        play(wrong_exit, workspace)
    wrong_text = Section(
        "x",
        [Block("sh", {}, "bulkhead policy check\n"), Block("text", {}, "ok    nothing\n")],
    )
    with pytest.raises(AssertionError, match="not in the output"):
        play(wrong_text, workspace)
