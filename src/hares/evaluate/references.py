"""Published numbers as reference columns: Tables 2, 3 and 4 of Wang et al. (ICASSP 2022), shipped as data.

`references/paper.json` holds every per-task number and aggregate of those tables with each row's architecture,
objective and training data (null where the paper prints "-"). A reference is named `paper:ROW` (case-insensitive),
e.g. `paper:SF_NFNET_F0` (Table 4), `paper:T2_RESNET50_SUPERVISED`, `paper:T3_SF_RESNET50_LN`; `hares references`
lists them. Reports show them as published numbers: no intervals, and measured by the paper on its own data
pipeline, so a difference from them is not a paired comparison.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

SOURCES = ("paper",)


@cache
def load_source(source: str = "paper") -> dict[str, Any]:
    if source not in SOURCES:
        raise KeyError(f"unknown reference source {source!r}; choose from: {', '.join(SOURCES)}")
    text = resources.files("hares.evaluate").joinpath("references", f"{source}.json").read_text()
    return json.loads(text)


def list_references() -> list[dict[str, Any]]:
    """Every reference row of every source, as `{"name": "paper:ID", **row}`."""
    return [{"name": f"{s}:{r['id']}", **r} for s in SOURCES for r in load_source(s)["rows"]]


def get_reference(name: str) -> dict[str, Any]:
    """The row `SOURCE:ID` (case-insensitive), with `name`, `source` (the citation) and `column` (a short title)."""
    source, sep, row_id = name.partition(":")
    if not sep or not row_id:
        raise KeyError(f"reference {name!r}: expected SOURCE:ROW, e.g. paper:SF_NFNET_F0 (see `hares references`)")
    data = load_source(source.lower())
    for r in data["rows"]:
        if r["id"].lower() == row_id.lower():
            column = f"{r['label']}, Table {r['table']}"
            return {"name": f"{source.lower()}:{r['id']}", "source": data["source"], "column": column, **r}
    known = ", ".join(r["id"] for r in data["rows"])
    raise KeyError(f"no reference row {row_id!r} in {source!r}; choose from: {known}")


def render_listing() -> str:
    """The `hares references` table: name, table, training data, objective, HARES score and per-task coverage."""
    lines = [f"{'name':32s} {'table':>5s} {'HARES':>6s} {'tasks':>5s}  {'training data':14s} objective / label"]
    for r in list_references():
        hares = "-" if r["hares"] is None else f"{r['hares']:.1f}"
        tasks = sum(v is not None for v in r["tasks"].values())
        lines.append(f"{r['name']:32s} {r['table']:5d} {hares:>6s} {tasks:5d}  {r['training_data'][:14]:14s} "
                     f"{r['objective']} / {r['label']}")  # fmt: skip
    src = load_source("paper")["source"]
    lines.append(f"\npaper = {src['authors'].split(',')[0]} et al., \"{src['title']}\", {src['venue']} "
                 f"(arXiv {src['arxiv']}). Use one with --compare NAME on `hares eval` or `hares report`.")  # fmt: skip
    return "\n".join(lines)
