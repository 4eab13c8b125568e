"""The README is the user's manual: its command blocks are checked here, so the manual cannot drift from the code.

Conventions (also stated in the README's "Development" section; follow them when you add a command):

- Every line of a ```bash block and every ```python block is RUN, in order, in one scratch folder that holds the
  output of `hares demo --quick --seed 0 --out runs/demo` (its data folder is also linked under the full demo's
  name, `runs/demo/data/hares-synth-v<N>-seed0`) and a short `clip.flac`. `hares` on PATH is the hares of this
  checkout. Blocks in any other language (```text, ```console, …) are never run.
- A bash line that cannot run there (it needs a real dataset, a GPU, many GPUs, the network, ten minutes…) ends
  with a comment `# needs: WHAT`. It is not run, but its `hares` arguments are still parsed by the real argument
  parser, so a renamed option or command is caught.
- A whole block that cannot run is preceded by `<!-- readme-test: needs WHAT -->` on the line above its fence.
  Its `hares` lines (bash) are parsed; its code (python) is compiled, not run.

The fast test parses and compiles every block and checks the hares-synth paths against the generator (well under a
second); the slow test runs the blocks (one quick demo and a dozen commands: 3.5 CPU minutes, 10 minutes of wall time on
the 2 shared cores of the dev box).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hares.cli import build_parser
from hares.data import synth

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

_FENCE = re.compile(r"^```(\w*)\s*$")
_BLOCK_NEEDS = re.compile(r"^<!--\s*readme-test:\s*needs\s+(.+?)\s*-->\s*$")
_LINE_NEEDS = re.compile(r"\s#\s*needs:\s*(.+)$")
_SYNTH_PATH = re.compile(r"runs/demo/data/(hares-synth-v\d+-seed\d+)(?:/([\w.]+))?")


@dataclass
class Block:
    lang: str
    line: int  # 1-based line of the opening fence in README.md
    text: str
    needs: str = ""  # why the whole block is not run ("" = it runs)
    commands: list[tuple[int, str, str]] = field(default_factory=list)  # (line, command, needs) for bash blocks


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of `text`, with bash blocks split into commands (`\\` continuations joined)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1)
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        if j == len(lines):
            raise AssertionError(f"README.md:{start + 1}: code fence never closed")
        prev = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        nm = _BLOCK_NEEDS.match(prev.strip())
        block = Block(lang, start + 1, "\n".join(lines[start + 1 : j]), nm.group(1) if nm else "")
        if lang == "bash":
            pending, first = "", 0
            for k in range(start + 1, j):
                raw = lines[k]
                if not pending:
                    first = k + 1
                if raw.rstrip().endswith("\\"):
                    pending += raw.rstrip()[:-1] + " "
                    continue
                full = (pending + raw).strip()
                pending = ""
                if not full or full.startswith("#"):
                    continue
                lm = _LINE_NEEDS.search(full)
                block.commands.append((first, full, lm.group(1).strip() if lm else ""))
        blocks.append(block)
        i = j + 1
    return blocks


def hares_args(command: str) -> list[str] | None:
    """The arguments given to hares by a shell command (`hares …`, `python -m hares …`, `torchrun … -m hares …`)."""
    argv = shlex.split(command, comments=True)
    if not argv:
        return None
    if argv[0] == "hares":
        return argv[1:]
    if "-m" in argv and argv.index("-m") + 1 < len(argv) and argv[argv.index("-m") + 1] == "hares":
        return argv[argv.index("-m") + 2 :]
    return None


@functools.cache
def _parser():
    return build_parser()


def parse_error(args: list[str]) -> str:
    """'' if the real `hares` parser accepts `args`, else what it printed."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            _parser().parse_args(args)
        except SystemExit as e:
            if e.code:
                return err.getvalue().strip() or f"exit {e.code}"
    return ""


@pytest.fixture(scope="module")
def blocks() -> list[Block]:
    return readme_blocks(README.read_text(encoding="utf-8"))


def test_every_hares_command_in_the_readme_parses(blocks):
    checked, bad = 0, []
    for b in blocks:
        for line, cmd, _ in b.commands:
            args = hares_args(cmd)
            if args is None:
                continue
            checked += 1
            if msg := parse_error(args):
                bad.append(f"README.md:{line}: `{cmd}`: {msg.splitlines()[-1]}")
    assert checked >= 10, f"only {checked} hares commands found in README.md: is the block parser broken?"
    assert not bad, "\n".join(bad)


def test_python_blocks_compile(blocks):
    py = [b for b in blocks if b.lang == "python"]
    assert py, "README.md has python blocks"
    for b in py:
        compile(b.text, f"README.md:{b.line}", "exec")


def test_demo_paths_name_what_the_demo_writes():
    """Every `runs/demo/data/hares-synth-v…` path names the folder and files the current generator writes."""
    text = README.read_text(encoding="utf-8")
    expected = synth.dataset_dir("runs/demo/data", 0).name
    known = {f"{t.name}.csv" for t in synth.TASKS} | {t.name for t in synth.TASKS} | {"pool", "pool.csv"}
    found = _SYNTH_PATH.findall(text)
    assert found, "the README names the demo's data folder"
    for folder, child in found:
        assert folder == expected, f"README names {folder}, the demo writes {expected}"
        assert not child or child in known, f"README names {folder}/{child}, which hares-synth does not write"


def test_linked_docs_exist():
    text = README.read_text(encoding="utf-8")
    links = set(re.findall(r"\]\(((?:docs/)?[\w./-]+\.(?:md|png))\)", text))
    assert {"docs/PROTOCOL.md", "docs/DATASETS.md", "docs/PRETRAINING.md"} <= links
    for link in links:
        assert (REPO / link).is_file(), f"README links {link}, which does not exist"


def test_the_convention_markers_are_understood():
    sample = (
        "text\n<!-- readme-test: needs real data -->\n```python\nx = 1\n```\n"
        "```bash\nhares tasks --data-root /data   # needs: the datasets\nhares eval --encoder logmel \\\n"
        "   --tasks x --out y\n# a comment\n```\n```text\nnot run\n```\n"
    )
    py, sh, txt = readme_blocks(sample)
    assert (py.lang, py.needs) == ("python", "real data")
    assert sh.needs == "" and [c[2] for c in sh.commands] == ["the datasets", ""]
    assert sh.commands[1][1] == "hares eval --encoder logmel     --tasks x --out y" and sh.commands[1][0] == 8
    assert txt.lang == "text" and not txt.commands
    assert hares_args("torchrun --nproc_per_node=8 -m hares pretrain --out x  # c") == ["pretrain", "--out", "x"]
    assert parse_error(["eval", "--no-such-option"]) and not parse_error(["tasks", "--data-root", "/x"])


@pytest.mark.slow
def test_readme_blocks_run_after_a_quick_demo(blocks, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HARES_CACHE": str(tmp_path / "cache")}
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env['PATH']}"
    shim = tmp_path / "bin" / "hares"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hares "$@"\n')
    shim.chmod(0o755)

    def run(cmd: list[str] | str, where: str) -> None:
        r = subprocess.run(cmd, cwd=work, env=env, shell=isinstance(cmd, str), capture_output=True, text=True)
        assert r.returncode == 0, f"{where} failed (exit {r.returncode}):\n{(r.stdout + r.stderr)[-3000:]}"

    run(["hares", "demo", "--quick", "--seed", "0", "--out", "runs/demo", "--threads", "1"], "hares demo --quick")
    quick = synth.dataset_dir(work / "runs/demo/data", 0, quick=True)
    full = synth.dataset_dir(work / "runs/demo/data", 0)
    full.symlink_to(quick.name, target_is_directory=True)
    sf.write(str(work / "clip.flac"), (0.1 * np.sin(np.arange(24000) / 7.0)).astype(np.float32), 48000)

    ran = 0
    for b in blocks:
        if b.needs:
            continue
        if b.lang == "python":
            run([sys.executable, "-c", b.text], f"README.md:{b.line} (python block)")
            ran += 1
        for line, cmd, needs in b.commands:
            if not needs:
                run(cmd, f"README.md:{line} `{cmd}`")
                ran += 1
    assert ran >= 8, f"only {ran} README commands ran"
