"""CPC's InfoNCE and wav2vec 2.0's contrastive / diversity terms against naive loop implementations; wav2vec 2.0's
random draws (masks, negatives) and quantizer; the linear learning-rate decay."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch
from torch import nn

from hares.train.config import get_preset
from hares.train.loop import lr_at
from hares.train.losses import codebook_diversity, cpc_infonce, wav2vec2_contrastive

needs_hf = pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="needs transformers")


@torch.no_grad()
def naive_cpc(context, frames, heads, pool, negatives) -> float:
    b, t, c = frames.shape
    k_max = len(heads)
    s = t - k_max
    total = 0.0
    for k, head in enumerate(heads, 1):
        losses = []
        for i in range(b):
            for j in range(s):
                p = head.weight @ context[i, j] + head.bias
                scores = [float(p @ frames[i, j + k]) / c] + [float(p @ pool[n]) / c for n in negatives[i, j]]
                log_z = math.log(sum(math.exp(x) for x in scores))
                losses.append(log_z - scores[0])
        total += sum(losses) / len(losses)
    return total


@pytest.mark.parametrize("dense", [True, False])
def test_cpc_infonce_equals_naive_reference(dense: bool) -> None:
    g = torch.Generator().manual_seed(0)
    b, t, c, h, k, n = 3, 9, 5, 4, 3, 6
    context, frames = torch.randn(b, t, h, generator=g).double(), torch.randn(b, t, c, generator=g).double()
    pool = torch.cat([frames.reshape(-1, c), torch.randn(10, c, generator=g).double()])  # + another rank's frames
    negatives = torch.randint(pool.shape[0], (b, t - k, n), generator=g)
    torch.manual_seed(0)
    heads = nn.ModuleList(nn.Linear(h, c) for _ in range(k)).double()
    loss, acc = cpc_infonce(context, frames, heads, pool, negatives, dense=dense)
    assert loss.item() == pytest.approx(naive_cpc(context, frames, heads, pool, negatives), rel=1e-10)
    assert 0.0 <= float(acc) <= 1.0


def test_cpc_infonce_rewards_a_correct_prediction_and_needs_enough_frames() -> None:
    g = torch.Generator().manual_seed(1)
    b, t, c = 2, 8, 16
    frames = torch.randn(b, t, c, generator=g)
    head = nn.Linear(c, c, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.eye(c) * 50)
    pool = torch.cat([frames.reshape(-1, c), torch.randn(20, c, generator=g)])
    negatives = b * t + torch.randint(20, (b, t - 1, 4), generator=g)  # other frames than the positives
    exact = torch.cat([frames[:, 1:], frames[:, :1]], dim=1)  # c_t = z_{t+1}: head 1 predicts the future exactly
    loss_good, acc_good = cpc_infonce(exact, frames, nn.ModuleList([head]), pool, negatives)
    loss_rand, _ = cpc_infonce(torch.randn(b, t, c, generator=g), frames, nn.ModuleList([head]), pool, negatives)
    assert loss_good < 0.01 * loss_rand and float(acc_good) == 1.0
    with pytest.raises(ValueError, match="more than 2 frames"):
        cpc_infonce(frames[:, :2], frames[:, :2], nn.ModuleList([head, head]), pool, negatives)


def naive_w2v(context, targets, negatives, temp) -> float:
    b, m, _ = targets.shape
    total = 0.0
    for i in range(b):
        for j in range(m):
            cands = [targets[i, j]] + [targets[i, int(n)] for n in negatives[i, j]]
            scores = []
            for q_i, q in enumerate(cands):
                if q_i > 0 and torch.equal(q, targets[i, j]):
                    continue  # a negative equal to the positive is dropped
                cos = float(context[i, j] @ q / (context[i, j].norm() * q.norm()))
                scores.append(cos / temp)
            total += math.log(sum(math.exp(x) for x in scores)) - scores[0]
    return total


def test_wav2vec2_contrastive_equals_naive_reference() -> None:
    g = torch.Generator().manual_seed(2)
    b, m, d, k = 2, 7, 6, 5
    context, targets = torch.randn(b, m, d, generator=g).double(), torch.randn(b, m, d, generator=g).double()
    targets[0, 3] = targets[0, 4]  # two identical codes: the duplicate of a positive is masked out
    negatives = torch.randint(m, (b, m, k), generator=g)
    negatives[0, 3, 0] = 4
    loss, correct = wav2vec2_contrastive(context, targets, negatives, 0.1)
    assert loss.item() == pytest.approx(naive_w2v(context, targets, negatives, 0.1), rel=1e-10)
    assert 0 <= int(correct) <= b * m
    codes = torch.arange(b * m).reshape(b, m, 1).repeat(1, 1, 2)  # (B, M, G) codeword ids
    codes[0, 4] = codes[0, 3]
    targets[0, 4] += 1e-15  # round-off: the same codewords, vectors one ulp apart
    by_ids, _ = wav2vec2_contrastive(context, targets, negatives, 0.1, codes)
    assert by_ids.item() == pytest.approx(loss.item(), rel=1e-10)


def test_codebook_diversity_equals_reference() -> None:
    probs = torch.softmax(torch.randn(2, 10, 3, 8, generator=torch.Generator().manual_seed(3)), dim=-1)  # B, M, G, V
    div, ppl = codebook_diversity(probs.sum((0, 1)), torch.tensor(20.0))
    avg = probs.mean((0, 1))
    ref = sum(math.exp(-sum(float(p) * math.log(float(p) + 1e-7) for p in avg[gi])) for gi in range(3))
    assert ppl.item() == pytest.approx(ref, rel=1e-5) and div.item() == pytest.approx((24 - ref) / 24, rel=1e-5)
    uniform, _ = codebook_diversity(torch.full((2, 8), 5.0), torch.tensor(40.0))
    assert uniform.item() == pytest.approx(0.0, abs=1e-5)  # every codeword used equally: no penalty


@needs_hf
def test_wav2vec2_draws_fairseq_masks_and_negatives() -> None:
    from hares.models import create_model
    from hares.train.objectives import Wav2Vec2

    obj = Wav2Vec2(create_model("wav2vec2_tiny"))
    g = torch.Generator().manual_seed(4)
    r = obj.draw(6, 200, g, "cpu")
    mask, neg = r["mask"], r["negatives"]
    counts = mask.sum(1)
    m = int(counts[0])
    assert (counts == m).all() and 0.3 * 200 < m < 0.75 * 200  # ~49% of frames for p = 0.65, spans of 10
    assert neg.shape == (6, m, 100) and neg.min() >= 0 and neg.max() < m
    assert not (neg == torch.arange(m)[None, :, None]).any()  # never the frame itself
    assert r["gumbel"].shape == (6, m, 2 * 32) and torch.isfinite(r["gumbel"]).all()
    again = obj.draw(6, 200, torch.Generator().manual_seed(4), "cpu")
    assert all(torch.equal(r[key], again[key]) for key in r)  # a function of the generator alone
    with pytest.raises(ValueError, match="more than 11 frames"):
        obj.draw(2, 11, g, "cpu")


@needs_hf
def test_wav2vec2_quantizer_is_straight_through_and_anneals() -> None:
    from hares.models import create_model
    from hares.train.objectives import Wav2Vec2

    torch.manual_seed(0)
    obj = Wav2Vec2(create_model("wav2vec2_tiny")).train()
    x = torch.randn(2, 5, 32, requires_grad=True)
    codes, probs_sum, ids = obj.quantize(x, torch.zeros(2, 5, 64))
    q = obj.encoder.hf.quantizer
    hard = q.weight_proj(x).reshape(10, 2, 32).argmax(-1)  # no noise: the argmax codeword of each group
    expect = torch.cat([q.codevectors[0, hard[:, gi] + 32 * gi] for gi in range(2)], dim=-1).reshape(2, 5, 32)
    torch.testing.assert_close(codes, expect)
    assert torch.equal(ids, hard.reshape(2, 5, 2))
    codes.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # the straight-through estimator passes gradients
    torch.testing.assert_close(probs_sum.sum(), torch.tensor(20.0))  # 10 frames x 2 groups, each sums to 1
    assert obj.temperature() == 2.0
    obj.num_updates.fill_(10**7)
    assert obj.temperature() == 0.5


def test_linear_decay_after_warmup() -> None:
    cfg = get_preset("paper-wav2vec2")
    assert lr_at(0, cfg) == pytest.approx(5e-4 / 32000)
    assert lr_at(31_999, cfg) == pytest.approx(5e-4)
    assert lr_at(32_000, cfg) == pytest.approx(5e-4)
    assert lr_at(216_000, cfg) == pytest.approx(2.5e-4)
    assert lr_at(399_999, cfg) == pytest.approx(5e-4 / 368_000)
    assert lr_at(100_000, get_preset("paper-cpc")) == 2e-4  # CPC_audio: constant
