"""CPC and wav2vec 2.0: two gloo processes equal one process on the combined batch (same random draws)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import _waveform_worker as ww
import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file
from test_dist import free_port


@pytest.mark.slow  # two spawned interpreters importing torch and transformers; SimCLR's runs in the fast suite
def test_two_process_waveform_objectives_equal_one_process(tmp_path: Path) -> None:
    kinds = ["cpc"] + (["wav2vec2"] if importlib.util.find_spec("transformers") else [])  # one spawn for both
    mp.start_processes(ww.waveform_worker, args=(2, free_port(), str(tmp_path), kinds), nprocs=2, start_method="spawn")
    for kind in kinds:
        ranks = [load_file(str(tmp_path / f"{kind}-rank{r}.safetensors")) for r in range(2)]
        objective = ww.build(kind).train()
        batch = ww.waveform_batch()
        ww.use_draws(objective, ww.global_draws(objective, batch), slice(None))
        ref = ww.loss_and_grads(objective, objective, batch)

        # DDP averages the per-rank losses' gradients: that must be the gradient of the global loss
        global_loss = (ranks[0]["loss"] + ranks[1]["loss"]) / 2
        assert torch.allclose(global_loss, ref["loss"], atol=1e-8, rtol=1e-8), (kind, global_loss, ref["loss"])
        assert (ranks[0]["loss"] - ranks[1]["loss"]).abs() > 1e-5  # the halves really differ
        grads = [k for k in ref if k.startswith("grad.")]
        heads = ("grad.forward_heads", "grad.backward_heads") if kind == "cpc" else ("grad.encoder.hf.quantizer",)
        assert all(any(k.startswith(h) for k in grads) for h in ("grad.encoder", *heads))
        for k in grads:
            for r in range(2):
                diff = (ranks[r][k] - ref[k]).abs().max()
                assert torch.allclose(ranks[r][k], ref[k], atol=1e-8, rtol=1e-6), (kind, k, r, diff)
