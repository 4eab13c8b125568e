"""Per-layer probes: one extraction, each layer probed, the layer chosen on validation only."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from torch import nn

from hares.evaluate import run_eval
from hares.evaluate.encoders import load_encoder
from hares.evaluate.layers import choose_layer
from hares.models import MODELS, register_model

FAST = {"max_epochs": 60, "seeds": (0,), "num_workers": 0, "progress": False}


class Bands(nn.Module):
    """Log-mels -> three "layers": a noise band, the whole spectrum (carries the tone's pitch), another noise band.

    The tones of the CSV task lie below 3 kHz, so the mel bands above ~6 kHz hold only the same white noise for
    every class: the intermediate layer carries the label and the last one does not.
    """

    def __init__(self) -> None:
        super().__init__()
        self.embed_dim = 10

    def forward_layers(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        spectrum = x[:, 0].mean(dim=1)  # (B, 80)
        return {"noise": spectrum[:, 70:80], "spectrum": spectrum, "final": spectrum[:, 60:70]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_layers(x)["final"]


@pytest.fixture
def bands_net():
    def evaluate_test_bands(**overrides) -> nn.Module:
        return Bands(**overrides)

    register_model(evaluate_test_bands)
    yield "evaluate_test_bands"
    MODELS._items.pop("evaluate_test_bands", None)


def test_the_intermediate_layer_is_chosen_on_validation(tmp_path, csv_task, bands_net, monkeypatch):
    spec = f"bands=random:{bands_net}@layers=all"
    enc = load_encoder(spec)
    assert [n for n, _ in enc.layers] == ["noise", "spectrum", "final"] and enc.embed_dim == 100
    extractions = []
    import hares.evaluate.embed as embed

    real = embed._run_shards
    monkeypatch.setattr(embed, "_run_shards", lambda *a, **k: extractions.append(1) or real(*a, **k))
    out = tmp_path / "out"
    results = run_eval([spec], [f"csv:{csv_task}"], out=out, cache_dir=tmp_path / "cache", **FAST)
    assert len(extractions) == 1  # one pass embeds every layer
    r = results["results"][0]
    by_name = {row["name"]: row for row in r["layers"]}
    assert r["layer"] == "spectrum"
    assert by_name["spectrum"]["valid"] > 90 and by_name["final"]["valid"] < 70 and by_name["noise"]["valid"] < 70
    assert r["score"] == by_name["spectrum"]["score"]  # the reported score is the chosen layer's
    assert (out / "report_layers.png").read_bytes()[:4] == b"\x89PNG"
    assert (
        "## Per-layer probes" in (out / "report.md").read_text() and "**spectrum**" in (out / "report.md").read_text()
    )
    saved = json.loads((out / "results.json").read_text())
    assert saved["encoders"]["bands"]["layers"] == ["noise", "spectrum", "final"]

    # The test split is never read to choose: scramble the test labels (every test clip now carries another
    # class) and the choice and every validation score stay the same while the test scores collapse.
    rows = list(csv.DictReader(open(csv_task)))
    rotate = {"low": "mid", "mid": "high", "high": "low"}
    scrambled = tmp_path / "scrambled" / "task.csv"
    scrambled.parent.mkdir()
    with open(scrambled, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "label", "split"])
        w.writeheader()
        for row in rows:
            label = rotate[row["label"]] if row["split"] == "test" else row["label"]
            w.writerow({"path": str(csv_task.parent / row["path"]), "label": label, "split": row["split"]})
    again = run_eval([spec], [f"csv:{scrambled}"], cache_dir=tmp_path / "cache", **FAST)["results"][0]
    assert again["layer"] == "spectrum"
    assert [x["valid"] for x in again["layers"]] == [x["valid"] for x in r["layers"]]
    assert again["score"] < 10 < r["score"]


def test_choose_layer_ties_go_to_the_shallower_layer():
    assert choose_layer([0.5, 0.9, 0.9, 0.1]) == 1


@pytest.mark.parametrize("name", ["sf_nfnet_micro", "cnn14_tiny", "resnet_tiny"])
def test_native_layers_end_with_the_usual_embedding(name):
    torch.manual_seed(0)
    plain = load_encoder(f"random:{name}")
    every = load_encoder(f"random:{name}@layers=all")
    wav = torch.randn(2, 16000)
    out = every(wav)
    assert out.shape == (2, every.embed_dim) and len(every.layers) >= 3
    last = every.layers[-1][1]
    torch.testing.assert_close(out[:, last], plain(wav), rtol=1e-4, atol=1e-4)
    assert every.info.fingerprint() != plain.info.fingerprint()
