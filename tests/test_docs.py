"""Docs checked by tests: every command, option and input format is documented."""

from __future__ import annotations

import re
from pathlib import Path

import click

from paperfeed.cli import main
from paperfeed.sources import FORMATS

ROOT = Path(__file__).resolve().parent.parent
CLI_DOC = (ROOT / "docs" / "cli.md").read_text()
# A command may be documented in the guide of its area (docs/web.md, ...), linked from cli.md.
ALL_DOCS = "\n".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))
FORMATS_DOC = (ROOT / "docs" / "formats.md").read_text()
README = (ROOT / "README.md").read_text()


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, cmd in sorted(group.commands.items()):
        full = f"{prefix}{name}"
        found.append((full, cmd))
        if isinstance(cmd, click.Group):
            found.extend(_commands(cmd, full + " "))
    return found


def test_every_command_and_option_is_documented() -> None:
    missing = []
    for name, cmd in _commands(main):
        section = re.search(
            rf"^## `paperfeed {re.escape(name)}`.*?(?=^## |\Z)", ALL_DOCS, re.M | re.S
        )
        if section is None:
            missing.append(f"command {name}")
            continue
        for param in cmd.params:
            if isinstance(param, click.Option):
                for opt in param.opts:
                    # --data-dir is shared by every command and documented once, on top.
                    if opt == "--data-dir":
                        continue
                    if opt.startswith("--") and opt not in section.group(0):
                        missing.append(f"{name} {opt}")
        assert cmd.help, f"{name} has no --help text"
    assert not missing, f"undocumented in docs/cli.md: {missing}"
    assert "--data-dir" in CLI_DOC.split("## ", 1)[0]


def test_every_format_is_documented() -> None:
    for name in FORMATS:
        assert f"`{name}`" in FORMATS_DOC, f"format {name} missing from docs/formats.md"


def test_readme_opens_with_the_two_commands_and_ci_uses_the_second() -> None:
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", README, re.S)
    assert len(blocks) >= 2
    first, second = blocks[0].strip(), blocks[1].strip()
    assert "paperfeed demo" in first
    assert "pytest" in second
    ci = (ROOT / ".ci" / "run").read_text()
    assert second in ci
