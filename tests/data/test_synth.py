"""hares-synth: deterministic for a seed, documented class balance and split sizes, finite audio in [-1, 1]."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hares.data import synth
from hares.data import synth_sources as src


@pytest.fixture(scope="module")
def quick_suite(tmp_path_factory) -> Path:
    return synth.generate(
        tmp_path_factory.mktemp("synth"), seed=3, quick=True, pool_size=6, workers=1, log=lambda m: None
    )


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_same_seed_same_audio_other_seed_other_audio():
    n = int(synth.CLIP_SECONDS * synth.SR)
    for task in synth.TASKS:
        label = task.classes[:2] if task.multi_label else task.classes[:1]
        group = "test03" if task.name == "keywords" else ""

        a, b, c = (synth._clip(task.name, label, "test", group, np.random.default_rng([s, 1]), s, n) for s in (0, 0, 1))
        assert a.dtype == np.float32 and a.shape == (n,)
        np.testing.assert_array_equal(a, b, err_msg=task.name)
        assert not np.allclose(a, c), task.name
    p1 = synth.pool_clip(np.random.default_rng(5), 2 * synth.SR)
    np.testing.assert_array_equal(p1, synth.pool_clip(np.random.default_rng(5), 2 * synth.SR))


def test_rewriting_clips_gives_identical_files(quick_suite, tmp_path):
    """The CSVs and wavs written by `generate` are reproduced byte for byte from (seed, task, index) alone."""
    for name, index in (("keywords", 25), ("events", 0), ("pitch", 80)):
        row = _rows(quick_suite / f"{name}.csv")[index]
        labels = tuple((row.get("label") or row.get("labels")).split(";"))
        job = (name, index, 3, labels, row["split"], row["group"], str(tmp_path / f"{name}.wav"))
        synth._make(job)
        assert (tmp_path / f"{name}.wav").read_bytes() == (quick_suite / row["path"]).read_bytes(), name
    synth._make(("pool", 1, 3, (), "train", "", str(tmp_path / "pool.wav")))
    assert (tmp_path / "pool.wav").read_bytes() == (quick_suite / "pool/00001.wav").read_bytes()


def test_class_balance_and_split_sizes(quick_suite):
    for task in synth.TASKS:
        rows = _rows(quick_suite / f"{task.name}.csv")
        sizes = synth.task_sizes(task, quick=True)
        per_split = Counter(r["split"] for r in rows)
        assert all(r["domain"] == task.domain for r in rows)
        if task.multi_label:
            assert [per_split[s] for s in synth.SPLITS] == list(sizes)
            for split in synth.SPLITS:
                labels = [r["labels"].split(";") for r in rows if r["split"] == split]
                assert Counter(len(x) for x in labels) == Counter({1: sizes_of(split, sizes) // 3} | {
                    2: sizes_of(split, sizes) // 3, 3: sizes_of(split, sizes) // 3})  # fmt: skip
                counts = Counter(c for x in labels for c in x)
                assert set(counts) <= set(task.classes)
                assert max(counts.values()) - min(counts.get(c, 0) for c in task.classes) <= 1  # dealt evenly
        else:
            for split, per_class in zip(synth.SPLITS, sizes, strict=True):
                counts = Counter(r["label"] for r in rows if r["split"] == split)
                assert counts == Counter({c: per_class for c in task.classes}), (task.name, split)


def sizes_of(split: str, sizes: tuple[int, int, int]) -> int:
    return sizes[synth.SPLITS.index(split)]


def test_documented_full_sizes():
    table = {t.name: (len(t.classes), t.sizes, t.metric) for t in synth.TASKS}
    assert table == {
        "scenes": (8, (20, 6, 12), "accuracy"),
        "events": (10, (240, 80, 160), "mAP"),
        "keywords": (10, (20, 6, 12), "accuracy"),
        "speakers": (20, (12, 4, 8), "accuracy"),
        "pitch": (36, (8, 3, 5), "accuracy"),
        "instrument": (8, (20, 6, 12), "accuracy"),
    }
    assert len(src.INSTRUMENTS) == 8 and len(src.SCENES) == 8 and len(src.EVENTS) == 10 and len(src.KEYWORDS) == 10


def test_audio_is_finite_in_range_and_not_silent(quick_suite):
    for task in [*synth.TASKS, None]:
        rows = _rows(quick_suite / f"{task.name if task else 'pool'}.csv")
        for r in rows[:: max(1, len(rows) // 6)]:
            wav, sr = sf.read(quick_suite / r["path"], dtype="float32")
            seconds = synth.CLIP_SECONDS if task else synth.POOL_SECONDS
            assert sr == synth.SR and wav.shape == (int(seconds * synth.SR),)
            assert np.isfinite(wav).all() and np.abs(wav).max() <= 1.0
            assert np.abs(wav).max() > 10 ** (-31 / 20) * 0.99  # peak drawn in [-30, -1] dBFS


def test_keyword_speakers_are_disjoint_across_splits(quick_suite):
    rows = _rows(quick_suite / "keywords.csv")
    by_group = {}
    for r in rows:
        assert r["group"], "every keyword clip names its speaker"
        assert by_group.setdefault(r["group"], r["split"]) == r["split"]


def test_manifests_load_through_the_custom_task_path(quick_suite):
    from hares.data.adapters import csv_task
    from hares.tasks import make_task

    for task in synth.TASKS:
        manifest = csv_task.build(quick_suite, str(quick_suite / f"{task.name}.csv"))
        spec = make_task(quick_suite / f"{task.name}.csv")
        assert spec.metric == task.metric and spec.domain == task.domain
        assert all(Path(c.path).is_file() for c in manifest)
        assert {c.split for c in manifest} == set(synth.SPLITS)


def test_generate_reuses_a_finished_suite(quick_suite):
    messages = []
    again = synth.generate(quick_suite.parent, seed=3, quick=True, pool_size=6, workers=1, log=messages.append)
    assert again == quick_suite and any("reusing" in m for m in messages)


def test_pool_renditions_are_levelled_tighter_than_task_clips():
    """Each pool rendition peaks within POOL_PEAK_DB (example mixing needs comparable levels); task clips span more."""
    lo, hi = synth.POOL_PEAK_DB
    assert synth.TASK_PEAK_DB[0] < lo
    for seed in range(6):
        clip = synth.pool_clip(np.random.default_rng(seed), int(synth.POOL_SECONDS * synth.SR))
        k = synth.POOL_RENDITIONS
        for part in np.split(clip[: k * (len(clip) // k)], k):
            peak_db = 20 * np.log10(np.abs(part).max())
            assert lo - 0.01 <= peak_db <= hi + 0.01, (seed, peak_db)


def test_keywords_come_in_pairs_of_the_same_sounds_in_another_order():
    """No keyword can be told from its average spectrum alone: each one has a partner with the same phonemes."""
    words = list(src.KEYWORDS.values())
    for w in words:
        partners = [v for v in words if v is not w and sorted(v) == sorted(w)]
        assert len(partners) == 1 and partners[0] != w, w
