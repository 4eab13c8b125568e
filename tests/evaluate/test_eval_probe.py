"""The grid probe: Adam per head, selection on validation only, restored weights, agreement with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _eval_helpers import blobs, sklearn_tuned
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from hares.evaluate.metrics import accuracy, mean_average_precision
from hares.evaluate.probe import (
    ArrayRows,
    GridAdam,
    GridAverage,
    GridModel,
    ProbeConfig,
    _backward,
    _Curvature,
    _Features,
    _loss,
    _predict,
    _train_seed,
    standardizer,
    targets_for,
    train_probe,
)


def test_grid_adam_equals_torch_adam_per_head():
    torch.manual_seed(0)
    lrs, wds = [1e-3, 3e-3, 1e-2], [0.0, 1e-2, 1e-1]
    w = torch.randn(3, 5, 4, requires_grad=True)
    b = torch.randn(3, 4, requires_grad=True)
    opt = GridAdam([w, b], [True, False], lrs, wds, (0.9, 0.999), 1e-8)
    refs = []
    for h in range(3):
        wh, bh = w[h].detach().clone().requires_grad_(), b[h].detach().clone().requires_grad_()
        refs.append((wh, bh, torch.optim.Adam([{"params": [wh], "weight_decay": wds[h]},
                                               {"params": [bh], "weight_decay": 0.0}], lr=lrs[h])))  # fmt: skip
    for step in range(6):
        heads = torch.tensor([0, 1, 2]) if step < 3 else torch.tensor([0, 2])  # head 1 stops after 3 steps
        gw, gb = torch.randn(3, 5, 4), torch.randn(3, 4)
        w.grad, b.grad = gw.clone(), gb.clone()
        opt.step(heads)
        for h in heads.tolist():
            wh, bh, ref = refs[h]
            wh.grad, bh.grad = gw[h].clone(), gb[h].clone()
            ref.step()
    for h in range(3):  # head 1's reference also stepped 3 times only
        torch.testing.assert_close(w[h].detach(), refs[h][0].detach())
        torch.testing.assert_close(b[h].detach(), refs[h][1].detach())


def test_stopped_head_is_frozen():
    torch.manual_seed(0)
    w = torch.randn(2, 3, 2, requires_grad=True)
    opt = GridAdam([w], [True], [1e-2, 1e-2], [0.0, 0.0], (0.9, 0.999), 1e-8)
    before = w[1].detach().clone()
    w.grad = torch.randn(2, 3, 2)
    opt.step(torch.tensor([0]))
    torch.testing.assert_close(w[1].detach(), before)
    assert not torch.allclose(w[0].detach(), before)


def test_grid_average_is_the_bias_corrected_mean_of_each_heads_iterates():
    torch.manual_seed(0)
    w = torch.zeros(2, 3)
    average, decay = GridAverage([w], 0.9), 0.9
    iterates = [[], []]
    for step in range(5):
        heads = torch.tensor([0, 1]) if step < 2 else torch.tensor([0])  # head 1 stops after 2 steps
        w[heads] = torch.randn(len(heads), 3)
        average.update(heads)
        for h in heads.tolist():
            iterates[h].append(w[h].clone())
    got = average.weights(torch.tensor([0, 1]))[0]
    for h in (0, 1):
        k = len(iterates[h])
        weights = torch.tensor([(1 - decay) * decay ** (k - 1 - i) for i in range(k)]) / (1 - decay**k)
        assert weights.sum().item() == pytest.approx(1.0)
        torch.testing.assert_close(got[h], (weights[:, None] * torch.stack(iterates[h])).sum(0))
    last = GridAverage([w], 0.0)
    last.update(torch.tensor([0]))
    torch.testing.assert_close(last.weights(torch.tensor([1]))[0], w[[1]])  # decay 0: the last iterate


def _features(x: np.ndarray, mean, std) -> _Features:
    return _Features(ArrayRows(x), mean, std, torch.device("cpu"), 1 << 30)


def test_selection_uses_validation_only_and_restores_best_weights():
    (xtr, ytr), (xva, yva), (xte, yte) = blobs([600, 300, 300], classes=4, dim=16, seed=1, sep=0.4)
    mean, std = standardizer(ArrayRows(xtr))
    xs = [_features(x, mean, std) for x in (xtr, xva, xte)]
    cfg = ProbeConfig(max_epochs=60, patience=5, seeds=(0,), max_steps=0, patience_steps=0)  # epochs only
    ys = [torch.tensor(y) for y in (ytr, yva, yte)]
    record, model = _train_seed(xs, ys, "linear", False, 4, accuracy, cfg, 0, torch.device("cpu"), None)
    grid_valid = [g["valid"] for g in record["grid_valid"]]
    assert record["valid"] == max(grid_valid)
    assert (record["lr"], record["weight_decay"]) == cfg.grid()[grid_valid.index(max(grid_valid))]
    for h, g in enumerate(record["grid_valid"]):  # every head holds its best-on-validation weights
        logits = _predict(model, xs[1], torch.tensor([h]))[0]
        assert accuracy(logits, ys[1]) == pytest.approx(g["valid"])
        assert g["best_epoch"] <= record["epochs_run"] <= 60
    assert record["epochs_run"] <= max(g["best_epoch"] for g in record["grid_valid"]) + cfg.patience

    shuffled = [ys[0], ys[1], ys[2][torch.randperm(len(ys[2]), generator=torch.Generator().manual_seed(0))]]
    again, _ = _train_seed(xs, shuffled, "linear", False, 4, accuracy, cfg, 0, torch.device("cpu"), None)
    for key in ("lr", "weight_decay", "best_epoch", "valid", "grid_valid"):
        assert again[key] == record[key]  # test labels never influence any choice
    assert again["test"] != record["test"]


def test_mlp_probe_multilabel_map_and_seeds():
    rng = np.random.default_rng(0)
    n, dim, classes = 900, 24, 6
    x = rng.normal(size=(n, dim)).astype(np.float32)
    proj = rng.normal(size=(dim, classes))
    y = ((x @ proj + 0.5 * rng.normal(size=(n, classes))) > 1.0).astype(np.uint8)  # (N, C) multi-hot
    splits = [(ArrayRows(x[a:b]), torch.from_numpy(y[a:b])) for a, b in ((0, 500), (500, 700), (700, 900))]
    cfg = ProbeConfig(max_epochs=40, seeds=(0, 1), mlp_hidden=32, max_steps=0, patience_steps=0)
    result = train_probe(*splits, kind="mlp", multilabel=True, num_classes=classes, metric="mAP", cfg=cfg)
    chance = mean_average_precision(rng.random((200, classes)), y[700:])
    assert result["test"] > chance + 0.3
    assert len(result["seeds"]) == 2 and result["test_std"] >= 0
    assert result["seeds"][0]["grid_valid"] != result["seeds"][1]["grid_valid"]  # seeds differ

    seen = {}  # the epoch hook (benchmarks/mlp_probe.py) sees every epoch's valid/test logits and changes nothing

    def hook(seed, epoch, heads, valid_logits, test_logits):
        assert valid_logits.shape == (len(heads), 200, classes) and test_logits.shape == (len(heads), 200, classes)
        for j, h in enumerate(heads.tolist()):
            seen[seed, h, epoch] = (mean_average_precision(valid_logits[j], y[500:700]), test_logits[j])

    hooked = train_probe(*splits, kind="mlp", multilabel=True, num_classes=classes, metric="mAP", cfg=cfg,
                         epoch_hook=hook)  # fmt: skip
    assert hooked["test"] == result["test"] and hooked["seeds"] == result["seeds"]
    for seed in hooked["seeds"]:
        for h, g in enumerate(seed["grid_valid"]):
            assert seen[seed["seed"], h, g["best_epoch"]][0] == pytest.approx(g["valid"])
        chosen = cfg.grid().index((seed["lr"], seed["weight_decay"]))
        test_logits = seen[seed["seed"], chosen, seed["best_epoch"]][1]
        assert mean_average_precision(test_logits, y[700:]) == pytest.approx(seed["test"])
    assert max(e for _, _, e in seen) == max(s["epochs_run"] for s in hooked["seeds"])


def test_targets_for():
    assert targets_for([("b",), ("a",)], ["a", "b"], False).tolist() == [1, 0]
    assert targets_for([("b", "a"), (), ("z", "a")], ["a", "b"], True).tolist() == [[1, 1], [0, 0], [1, 0]]
    with pytest.raises(ValueError, match="not in the task's classes"):
        targets_for([("z",)], ["a", "b"], False)


def test_grid_model_shapes():
    m = GridModel("mlp", 5, 3, 8, ProbeConfig(mlp_hidden=7), "cpu")
    assert m.forward(torch.randn(4, 5), torch.tensor([0, 3, 5]), train=True).shape == (3, 4, 3)
    with pytest.raises(ValueError, match="unknown probe"):
        GridModel("svm", 5, 3, 8, ProbeConfig(), "cpu")


@pytest.mark.parametrize("multilabel", [False, True])
def test_closed_form_linear_gradients_equal_autograd(multilabel):
    torch.manual_seed(0)
    model = GridModel("linear", 6, 4, 5, ProbeConfig(), "cpu")
    x = torch.randn(9, 6)
    y = (torch.rand(9, 4) < 0.3).to(torch.uint8) if multilabel else torch.randint(0, 4, (9,))
    heads = torch.tensor([0, 2, 3])
    _loss(model.forward(x, heads, train=True), y, multilabel).backward()
    expected = [p.grad.clone() for p in model.params]
    _backward(model, x, y, heads, multilabel)
    for p, e in zip(model.params, expected):
        torch.testing.assert_close(p.grad, e)


def test_streamed_features_match_in_memory():
    (xtr, ytr), (xva, yva), (xte, yte) = blobs([300, 100, 100], classes=3, dim=8, seed=2)
    splits = [(ArrayRows(x), torch.tensor(y)) for x, y in ((xtr, ytr), (xva, yva), (xte, yte))]
    cfg = ProbeConfig(max_epochs=5, seeds=(0,), batch_size=64)
    in_memory = train_probe(*splits, num_classes=3, cfg=cfg)
    streamed = train_probe(*splits, num_classes=3, cfg=cfg, max_bytes=0)  # read from the rows batch by batch
    assert streamed["seeds"][0]["grid_valid"] == in_memory["seeds"][0]["grid_valid"]
    assert streamed["test"] == pytest.approx(in_memory["test"])


def test_test_logits_are_the_chosen_heads_raw_outputs_per_seed():
    (xtr, ytr), (xva, yva), (xte, yte) = blobs([300, 100, 120], classes=3, dim=8, seed=3)
    splits = [(ArrayRows(x), torch.tensor(y)) for x, y in ((xtr, ytr), (xva, yva), (xte, yte))]
    result = train_probe(*splits, num_classes=3, cfg=ProbeConfig(max_epochs=5, seeds=(0, 1), batch_size=64))
    assert len(result["test_logits"]) == 2
    for logits, seed in zip(result["test_logits"], result["seeds"]):
        assert isinstance(logits, np.ndarray) and logits.dtype == np.float32 and logits.shape == (120, 3)
        assert accuracy(torch.from_numpy(logits), torch.tensor(yte)) == pytest.approx(seed["test"])
        assert "test_logits" not in seed  # the per-seed records stay JSON-sized


WIDE_C = tuple(10.0 ** np.arange(-5, 3.1, 0.5))  # 1e-5 .. 1e3


def _probe(splits, **kw):
    rows = [(ArrayRows(x), torch.tensor(y)) for x, y in splits]
    return train_probe(*rows, num_classes=int(splits[0][1].max()) + 1, **kw)


def _check_lbfgs_against_sklearn(n_train: int, cs: tuple[float, ...]) -> None:
    splits = blobs([n_train, 2000, 4000], classes=10, dim=48, seed=4, sep=0.25)
    result = _probe(splits, cfg=ProbeConfig(seeds=(0, 1)))
    sklearn_acc, _, c = sklearn_tuned(splits, cs)
    assert 0.4 < sklearn_acc < 0.95  # neither trivial nor hopeless: regularisation matters
    assert abs(result["test"] - sklearn_acc) <= 0.005, (result["test"], sklearn_acc, c, result["seeds"][0]["l2"])
    first, second = result["seeds"]
    assert first["test"] == second["test"] and result["test_std"] == 0.0  # convex, full batch: seed-independent
    (xte, yte) = splits[2]
    shuffled = _probe([*splits[:2], (xte, np.random.default_rng(0).permutation(yte))], cfg=ProbeConfig(seeds=(0,)))
    assert shuffled["seeds"][0]["grid_valid"] == first["grid_valid"]  # test labels never influence a choice
    assert all(p["converged"] for p in first["grid_valid"])
    scores = [p["valid"] for p in first["grid_valid"]]
    assert first["valid"] == max(scores) and first["l2"] == ProbeConfig().l2_grid[scores.index(max(scores))]
    assert first["points_run"] <= scores.index(max(scores)) + 1 + ProbeConfig().path_patience


def test_lbfgs_linear_probe_small_split_within_half_a_point_of_tuned_sklearn():
    _check_lbfgs_against_sklearn(1500, tuple(10.0 ** np.arange(-4, 2.1)))  # batch 1024 > a tenth of the split


@pytest.mark.slow
def test_lbfgs_linear_probe_large_split_within_half_a_point_of_tuned_sklearn():
    _check_lbfgs_against_sklearn(12000, WIDE_C)


def test_lbfgs_reaches_the_regularised_optimum():
    """At a fixed L2 the fit equals scikit-learn's at C = 1 / (l2 N) (same objective, same tolerance)."""
    splits = blobs([800, 200, 200], classes=4, dim=12, seed=5, sep=0.4)
    l2 = 0.01
    result = _probe(splits, cfg=ProbeConfig(seeds=(0,), l2_grid=(l2,), lbfgs_tol=1e-6))
    scaler = StandardScaler().fit(splits[0][0])
    ref = LogisticRegression(C=1 / (l2 * 800), tol=1e-10, max_iter=5000).fit(
        scaler.transform(splits[0][0]).astype(np.float64), splits[0][1]
    )  # float64: the exact optimum (scikit-learn keeps float32 input in float32)
    ref_logits = ref.decision_function(scaler.transform(splits[2][0]))
    ours = result["test_logits"][0]
    # softmax is shift-invariant: compare centred logits
    np.testing.assert_allclose(ours - ours.mean(1, keepdims=True), ref_logits - ref_logits.mean(1, keepdims=True),
                               atol=1e-3)  # fmt: skip


def test_lbfgs_multilabel_is_one_vs_rest_logistic_regression():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(700, 10)).astype(np.float32) * 3 + 1
    y = ((x @ rng.normal(size=(10, 3)) + 2 * rng.normal(size=(700, 3))) > 0).astype(np.uint8)
    splits = [(ArrayRows(x[a:b]), torch.from_numpy(y[a:b])) for a, b in ((0, 500), (500, 600), (600, 700))]
    l2 = 0.02
    result = train_probe(*splits, multilabel=True, num_classes=3, metric="mAP",
                         cfg=ProbeConfig(seeds=(0,), l2_grid=(l2,), lbfgs_tol=1e-6))  # fmt: skip
    scaler = StandardScaler().fit(x[:500])
    for c in range(3):
        xtr = scaler.transform(x[:500]).astype(np.float64)  # float64: the exact optimum
        ref = LogisticRegression(C=1 / (l2 * 500), tol=1e-10, max_iter=5000).fit(xtr, y[:500, c])
        np.testing.assert_allclose(result["test_logits"][0][:, c], ref.decision_function(scaler.transform(x[600:])),
                                   atol=1e-3)  # fmt: skip


def _correlated(n: int, dim: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Features that share a few strong latent factors (as real embeddings do): an ill-conditioned covariance."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(8, dim)) * 3
    means = rng.normal(size=(5, 8))
    out = []
    for m in (n, n // 4, n // 4):
        y = rng.integers(0, 5, m)
        z = means[y] + rng.normal(size=(m, 8))
        out.append(((z @ mixing + 0.3 * rng.normal(size=(m, dim))).astype(np.float32), y))
    return out


@pytest.mark.parametrize("dim, rank", [(40, None), (90, 16)])
def test_curvature_inverse_is_the_kronecker_factored_inverse_hessian(monkeypatch, dim, rank):
    """H0 applied to a class row is (a_c Sigma + l2 I)^-1 with a_c = pi_c (1 - pi_c) (the bias column: / a_c).
    Sigma is exact for small D and top-k + the mean of the rest above 2k dimensions: built here with 8 strong
    directions and a flat rest, where that approximation is exact too."""
    import hares.evaluate.probe as probe

    if rank is not None:
        monkeypatch.setattr(probe, "PRECONDITION_RANK", rank)
    rng = np.random.default_rng(1)
    u, _ = np.linalg.qr(rng.normal(size=(600, dim)))
    v, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    singular = np.r_[np.linspace(60, 20, 8), np.full(dim - 8, 3.0)]
    x = (u * singular) @ v.T  # (600, D), Sigma = v diag(singular^2 / 600) v^T
    y = rng.integers(0, 5, 600)
    feats = _Features(ArrayRows(x.astype(np.float32)), torch.zeros(dim), torch.ones(dim), torch.device("cpu"), 1 << 30)
    curvature = _Curvature(feats, torch.from_numpy(y), False, 5)
    sigma = torch.from_numpy(x.T @ x / 600)
    prior = torch.bincount(torch.from_numpy(y), minlength=5).double() / len(y)
    a = prior * (1 - prior)
    theta = torch.randn(5, dim + 1, dtype=torch.float64)
    l2 = 0.05
    got = curvature.inverse(l2)(theta.float()).double()
    for c in range(5):
        want = torch.linalg.solve(a[c] * sigma + l2 * torch.eye(dim, dtype=torch.float64), theta[c, :dim])
        torch.testing.assert_close(got[c, :dim], want, rtol=2e-3, atol=1e-4)
        torch.testing.assert_close(got[c, dim], theta[c, dim] / a[c], rtol=1e-5, atol=1e-6)


def test_preconditioner_reaches_the_same_optimum_in_fewer_evaluations():
    """Correlated features: with and without H0 the path picks the same L2 with the same logits (one optimum);
    the preconditioned walk reaches the pinned tolerance at every point in under half the loss evaluations
    (plain L-BFGS stalls above it at some points here: float32 cannot resolve its line search's last steps)."""
    splits = _correlated(3000, 60, seed=2)
    runs = [_probe(splits, cfg=ProbeConfig(seeds=(0,), lbfgs_precondition=p)) for p in (True, False)]
    (pre, plain) = [r["seeds"][0] for r in runs]
    assert pre["l2"] == plain["l2"] and all(p["converged"] and p["grad_max"] <= 1e-5 for p in pre["grid_valid"])
    logits = [r["test_logits"][0] for r in runs]
    np.testing.assert_allclose(*(z - z.mean(1, keepdims=True) for z in logits), atol=1e-2)
    assert pre["lbfgs_evaluations"] < plain["lbfgs_evaluations"] / 2, (pre, plain)


def test_probe_config_rejects_values_outside_their_declared_range():
    with pytest.raises(ValueError, match="linear_solver"):
        ProbeConfig(linear_solver="sgd")
    with pytest.raises(ValueError, match="l2_grid"):
        ProbeConfig(l2_grid=(1.0, -1.0))
    with pytest.raises(ValueError, match="empty"):
        ProbeConfig(lrs=())
    assert ProbeConfig().epoch_budget(1900) == (1000, 100)  # 2 steps per epoch: steps count, not epochs
    assert ProbeConfig().epoch_budget(2_000_000) == (200, 20)
