"""`hares encoders` (list the registered networks) and `hares convert-haiku` (Haiku params -> safetensors)."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encoders", help="list the registered encoders with parameter counts and embedding sizes")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern over model names (default: all)")
    p.add_argument("--json", action="store_true", help="print one JSON object per model")
    p.set_defaults(func=cmd_encoders)

    p = sub.add_parser(
        "convert-haiku",
        help="convert official Haiku Slowfast NFNet parameters (.npz) to a hares safetensors checkpoint",
        description="Reads an .npz whose keys are Haiku names ('slow_fast_nf_net/~/NFNet_1/~/nf_block/~/conv0/w', "
        "optionally prefixed 'params/'), loads them into the model and writes a checkpoint that "
        "`hares.models.load_checkpoint` and `hares eval` read.",
    )
    p.add_argument("params", help="Haiku parameters as .npz")
    p.add_argument("out", help="output .safetensors checkpoint")
    p.add_argument(
        "--model",
        default=None,
        help="registered Slowfast NFNet name (default: the sf_nfnet_* variant whose table matches the npz's "
        "`config_json`, else sf_nfnet_f0)",
    )
    p.add_argument(
        "--config",
        default=None,
        help='JSON model overrides, e.g. \'{"slow": {"depth": [1, 2, 3, 2]}}\'; default: the npz\'s '
        "`config_json` pathways if present, else none",
    )
    p.set_defaults(func=cmd_convert_haiku)


def cmd_encoders(args: argparse.Namespace) -> int:
    import torch

    from hares.models import MODELS, create_model, list_models

    names = list_models(args.pattern)
    if not names:
        print(f"no encoder matches {args.pattern!r}", file=sys.stderr)
        return 1
    if not args.json:
        print(f"{'name':22s} {'params':>12s} {'embed_dim':>9s}  description")
    for name in names:
        with torch.device("meta"):  # counts without allocating or initialising weights
            model = create_model(name)
        count = sum(p.numel() for p in model.parameters())
        doc = ((MODELS.get(name).__doc__ or "").strip().splitlines() or [""])[0]
        if args.json:
            print(json.dumps({"name": name, "params": count, "embed_dim": model.embed_dim, "doc": doc}))
        else:
            print(f"{name:22s} {count:12,d} {model.embed_dim:9d}  {doc}")
    return 0


def _overrides_from_npz(data, config: str | None) -> dict:
    if config is not None:
        return json.loads(config)
    if "config_json" not in data.files:
        return {}
    meta = json.loads(bytes(data["config_json"]).decode())
    paths = meta.get("pathways", {})
    slow = [v for k, v in paths.items() if k.endswith("-slow")]
    fast = [v for k, v in paths.items() if k.endswith("-fast")]
    return {"slow": slow[0], "fast": fast[0]} if len(slow) == 1 and len(fast) == 1 else {}


def cmd_convert_haiku(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hares.io import load_npz_checked
    from hares.models import check_model_config, create_model, load_haiku, save_checkpoint
    from hares.models.nfnet import VARIANTS

    src = Path(args.params)
    if not src.is_file():
        print(f"{src}: no such file", file=sys.stderr)
        return 2
    try:
        data = load_npz_checked(src)  # headers checked first: a crafted shape cannot make us allocate
    except ValueError as e:
        print(f"hares convert-haiku: error: {e}", file=sys.stderr)
        return 2
    try:
        overrides = _overrides_from_npz(data, args.config)
    except json.JSONDecodeError as e:
        print(f"--config: not valid JSON ({e})", file=sys.stderr)
        return 2
    params = {k: data[k] for k in data.files if k.removeprefix("params/").startswith("slow_fast_nf_net/")}
    if not params:
        print(f"{src}: no 'slow_fast_nf_net/...' parameters among its {len(data.files)} arrays", file=sys.stderr)
        return 2
    name = args.model
    if name is None:
        name = "sf_nfnet_f0"
        for variant, table in VARIANTS.items():
            if overrides == table:  # a registered variant: keep the checkpoint config short
                name, overrides = f"sf_nfnet_{variant}", {}
                break
    try:  # the npz's config is untrusted: schema, types and size checked on the meta device first
        check_model_config(name, overrides, where=f"{src}: ")
    except ValueError as e:
        print(f"hares convert-haiku: error: {e}", file=sys.stderr)
        return 2
    model = create_model(name, **overrides)
    try:
        load_haiku(model, params)
    except ValueError as e:
        print(f"hares convert-haiku: error: {src}: {e}", file=sys.stderr)
        return 2
    save_checkpoint(model, args.out, extra={"converted_from": src.name})
    count = sum(p.numel() for p in model.parameters())
    custom = " (custom variant table)" if overrides else ""
    print(f"wrote {args.out}: {name}{custom}, {len(params)} arrays, {count:,d} parameters")
    return 0
