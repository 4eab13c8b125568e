"""Spawned-process side of the 2-process gloo tests of the waveform objectives (CPC, wav2vec 2.0).

Both ranks and the one-process reference use the same random draws (negatives, masks, Gumbel noise): one draw for
the global batch with a fixed seed, each rank taking its rows, so the comparison isolates the distributed maths
(gathered negatives, global perplexity, the global count of masked frames, DDP's gradient averaging).
"""

from __future__ import annotations

from pathlib import Path

import torch
from _ddp_worker import loss_and_grads, set_env
from safetensors.torch import save_file

from hares.models import create_model
from hares.train import dist
from hares.train.objectives import CPC, Wav2Vec2

W2V_NO_DROPOUT = dict(
    hidden_dropout=0.0, attention_dropout=0.0, feat_proj_dropout=0.0, feat_quantizer_dropout=0.0, layerdrop=0.0
)


def waveform_batch(b: int = 4, n: int = 4800) -> dict[str, torch.Tensor]:
    """A global batch of one view per clip, deliberately asymmetric between the halves."""
    g = torch.Generator().manual_seed(321)
    wav = 0.1 * torch.randn(b, 1, n, generator=g)
    wav[b // 2 :] *= 3.0
    wav[b // 2 :, :, ::5] += 0.2
    return {"wav": wav.double(), "target": torch.zeros(b, 1, dtype=torch.float64)}


def build(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "cpc":
        return CPC(create_model("cpc_bidir_tiny"), steps=3, negatives=5).double()
    return Wav2Vec2(create_model("wav2vec2_tiny", **W2V_NO_DROPOUT), negatives=7).double()


def global_draws(objective: torch.nn.Module, batch: dict) -> object:
    """The random choices of the whole global batch (fixed seed)."""
    g = torch.Generator().manual_seed(7)
    b, n = batch["wav"].shape[0], batch["wav"].shape[-1]
    with torch.no_grad():
        if isinstance(objective, CPC):
            t = objective.encoder.encoder(batch["wav"][:, 0]).shape[1]
            return objective.draw(b, t, b * t, g, "cpu")
        t = objective.encoder.hf.wav2vec2._get_feat_extract_output_lengths(n)
        return objective.draw(b, int(t), g, "cpu")


def use_draws(objective: torch.nn.Module, draws, rows: slice) -> None:
    """Make `objective.draw` return rows `rows` of the global draws (gumbel/mask/negatives, or CPC's negatives)."""
    if isinstance(draws, dict):
        objective.draw = lambda *a, **k: {key: v[rows] for key, v in draws.items()}
    else:
        objective.draw = lambda *a, **k: [v[rows] for v in draws]


def waveform_worker(rank: int, world: int, port: int, out: str, kinds: list[str]) -> None:
    """Each rank: DDP(objective) on its rows of the global batch, for each of `kinds`; saves loss and grads."""
    torch.set_num_threads(1)
    set_env(rank, world, port)
    env = dist.setup("cpu")
    for kind in kinds:
        objective = build(kind).train()
        batch = waveform_batch()
        per = batch["wav"].shape[0] // world
        use_draws(objective, global_draws(objective, batch), slice(rank * per, (rank + 1) * per))
        model = dist.wrap_ddp(objective, torch.device("cpu"))
        local = {k: v[rank * per : (rank + 1) * per] for k, v in batch.items()}
        save_file(loss_and_grads(model, objective, local), str(Path(out) / f"{kind}-rank{env.rank}.safetensors"))
    dist.cleanup()
