"""The adapters on the REAL metadata of the releases (shared/data/meta), with stub audio, against published counts.

Each test lays out a release exactly as it unpacks, using the real metadata files byte for byte (CRLF, BOM-less,
missing final newlines and all) and empty audio files (adapters list folders, they never decode), then checks the
split counts the release publishes and the quirks listed in shared/data/meta/README.md. Skipped when shared/ is
absent (it lies beside the repository).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from hares.cli import main
from hares.data.adapters import magnatagatune
from hares.tasks import get_task


@pytest.fixture(scope="module")
def meta(shared_dir: Path) -> Path:
    d = shared_dir / "data" / "meta"
    if not (d / "esc50" / "esc50.csv").is_file():
        pytest.skip(f"no real release metadata in {d}")
    return d


@pytest.fixture
def tmp_path(tmp_path: Path):
    """A scratch folder in memory (/dev/shm) where there is one: the layouts hold up to 42,000 stub files, and
    creating them on a busy disk costs far more than the test itself. Falls back to pytest's tmp_path."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    d = Path(tempfile.mkdtemp(prefix="hares-releases-", dir=shm))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def stub(paths) -> int:
    """Empty files at `paths` (parents created once each); returns how many."""
    made, n = set(), 0
    for p in paths:
        parent = os.path.dirname(p)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
        n += 1
    return n


def counts(task: str, clips) -> dict[str, tuple[int, int]]:
    return {what: (got, want) for what, got, want in get_task(task).count_check(clips)}


def assert_published(task: str, clips, only=None) -> None:
    for what, (got, want) in counts(task, clips).items():
        if only is None or what in only:
            assert got == want, f"{task} {what}: {got} clips, the release publishes {want}"


# ---------------------------------------------------------------- ESC-50


def esc50_layout(meta: Path, root: Path, csv_text: str | None = None) -> Path:
    d = root / "ESC-50-master"
    (d / "meta").mkdir(parents=True)
    src = meta / "esc50" / "esc50.csv"
    if csv_text is None:
        shutil.copyfile(src, d / "meta" / "esc50.csv")
    else:
        (d / "meta" / "esc50.csv").write_text(csv_text)
    names = [line.split(",")[0] for line in src.read_text().splitlines()[1:]]
    stub(str(d / "audio" / n) for n in names)
    return d


def test_esc50_real_folds_and_straddling_sources(meta, tmp_path):
    esc50_layout(meta, tmp_path)
    task = get_task("esc50")
    clips = task.build_manifest(tmp_path)  # the release's folds, followed as published: no refusal
    assert len(clips) == 2000
    assert_published("esc50", clips)
    assert clips.report["straddling"] == {  # four src_file ids sit in two folds (and two classes) in the release
        "src:131943": ["fold2", "fold3"],
        "src:134049": ["fold2", "fold3"],
        "src:209698": ["fold4", "fold5"],
        "src:234879": ["fold4", "fold5"],
    }
    assert len(task.classes(clips)) == 50
    folds = task.splits(clips)
    assert [f for f, _ in folds] == list(task.folds)
    for _, sets in folds:
        assert {k: len(v) for k, v in sets.items()} == {"train": 1200, "valid": 400, "test": 400}


def test_esc50_modified_copy_is_refused(meta, tmp_path):
    """A circulating copy renames class 25 `footsteps` to `walking running`: refused with the row."""
    text = (meta / "esc50" / "esc50.csv").read_text()
    first = next(line for line in text.splitlines() if line.split(",")[3] == "footsteps")
    esc50_layout(meta, tmp_path, text.replace(first, first.replace("footsteps", "walking running")))
    with pytest.raises(ValueError, match=r"esc50\.csv:\d+: category 'walking running' does not match target 25"):
        get_task("esc50").build_manifest(tmp_path)


# ---------------------------------------------------------------- Speech Commands


def speech_commands_layout(meta: Path, root: Path, version: str) -> tuple[Path, list[str], list[str]]:
    d = root / "speech_commands_v0.02"
    d.mkdir(parents=True)
    lists = {}
    for name in ("validation_list.txt", "testing_list.txt"):
        shutil.copyfile(meta / f"speech_commands_{version}" / name, d / name)
        lists[name] = [x.strip() for x in (d / name).read_text().splitlines() if x.strip()]
    words = sorted({rel.split("/")[0] for rels in lists.values() for rel in rels})
    train = [f"{w}/ffffff{k:02d}_nohash_0.wav" for w in words for k in range(2)]  # speakers in neither list
    stub(str(d / rel) for rel in [*lists["validation_list.txt"], *lists["testing_list.txt"], *train])
    return d, words, train


@pytest.mark.parametrize("version,valid,test,nwords", [("v0.02", 9981, 11005, 35), ("v0.01", 6798, 6835, 30)])
def test_speech_commands_real_lists(meta, tmp_path, capsys, version, valid, test, nwords):
    _, words, train = speech_commands_layout(meta, tmp_path, version)
    assert len(words) == nwords
    clips = get_task("speech_commands_v2").build_manifest(tmp_path)
    n = clips.report["clips"]
    assert (n["valid"], n["test"], n["train"]) == (valid, test, len(train))
    assert "straddling" not in clips.report  # the official lists keep speakers disjoint
    if version == "v0.02":  # the published valid/test counts; train needs the whole archive, so it is flagged
        assert_published("speech_commands_v2", clips, only={"valid", "test"})
        assert main(["tasks", "--data-root", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert f"! train: {len(train)} clips, the release publishes 84,843" in out
        assert "! valid" not in out and "! test" not in out


# ---------------------------------------------------------------- TUT18


def test_tut18_real_fold1(meta, tmp_path):
    src = meta / "tut_urban_acoustic_scenes_2018"
    d = tmp_path / "TUT-urban-acoustic-scenes-2018-development"
    shutil.copytree(src, d)  # meta.csv, evaluation_setup/fold1_*.txt (CRLF), LICENSE, README.md
    files = [line.split("\t")[0] for line in (d / "meta.csv").read_text().splitlines()[1:]]
    assert stub(str(d / f) for f in files) == 8640
    task = get_task("tut18")
    clips = task.build_manifest(tmp_path)
    assert_published("tut18", clips)
    n = clips.report["clips"]
    assert n["test"] == 2518 and n["train"] + n["valid"] == 6122 and 0.1 <= n["valid"] / 6122 < 0.2
    assert "straddling" not in clips.report  # train and evaluate share no location; valid takes whole locations
    assert task.classes(clips) == list(task.label_set)
    assert {c.label for c in clips if c.split == "test"} == set(task.label_set)


# ---------------------------------------------------------------- AudioSet


def audioset_layout(meta: Path, root: Path) -> Path:
    d = root / "AudioSet"
    d.mkdir(parents=True)
    for name in ("class_labels_indices.csv", "balanced_train_segments.csv", "eval_segments.csv"):
        shutil.copyfile(meta / "audioset" / name, d / name)
    for name, sub in (("balanced_train_segments.csv", "bal_train"), ("eval_segments.csv", "eval")):
        ids = [line.split(",")[0] for line in (d / name).read_text().splitlines() if not line.startswith("#")]
        stub(str(d / "audio" / sub / f"{y}.flac") for y in ids)
    return d


def test_audioset_real_segment_lists(meta, tmp_path):
    d = audioset_layout(meta, tmp_path)
    task = get_task("audioset")
    clips = task.build_manifest(tmp_path)
    assert_published("audioset", clips)
    n = clips.report["clips"]
    assert n["test"] == 20371 and n["train"] + n["valid"] == 22160 and 0.04 < n["valid"] / 22160 < 0.06
    assert clips.report["missing"] == {"balanced_train_segments.csv": 0, "eval_segments.csv": 0}
    dashed = [c for c in clips if Path(c.path).name.startswith("-")]
    assert len(dashed) == 459 + 392  # ids starting with '-' (balanced, eval)
    assert len(task.classes(clips)) == 527 and {lab for c in clips for lab in c.labels} == set(task.classes(clips))
    assert max(len(c.labels) for c in clips) == 12

    # a spreadsheet round-trip turns the '-' ids into #NAME? (not a comment: those start with '# '), or rewrites
    # 0.000 / 10.000 as 0 / 10000: refused with the line, never skipped
    text = (d / "eval_segments.csv").read_text()
    for broken, message in (
        (text.replace("--4gqARaEJE,", "#NAME?,", 1), r"eval_segments\.csv:4: '#NAME\?' is not a YouTube id"),
        (text.replace("--4gqARaEJE, 0.000, 10.000", "--4gqARaEJE, 0, 10000"), r"eval_segments\.csv:4: segment 0-10000"),
    ):
        (d / "eval_segments.csv").write_text(broken)
        with pytest.raises(ValueError, match=message):
            task.build_manifest(tmp_path)


# ---------------------------------------------------------------- Birdsong


def test_birdsong_real_ff1010_and_warblr_2016(meta, tmp_path):
    src = meta / "birdsong_dcase2018_task3"
    d = tmp_path / "birdsong"
    d.mkdir()
    shutil.copyfile(src / "ff1010bird_metadata_2018.csv", d / "ff1010bird_metadata_2018.csv")  # CRLF, no final EOL
    shutil.copyfile(src / "warblrb10k_public_metadata.csv", d / "warblrb10k_public_metadata.csv")  # 2016: no datasetid
    # BirdVox-DCASE-20k's label file is not in shared/: a synthetic stand-in of its format (20,000 rows, half birds)
    birdvox = [f"{k:08x}-0000-4000-8000-{k:012x},BirdVox-DCASE-20k,{k % 2}" for k in range(20000)]
    (d / "BirdVoxDCASE20k_csvpublic.csv").write_text("itemid,datasetid,hasbird\n" + "\n".join(birdvox) + "\n")
    for folder, name in (
        ("ff1010bird", "ff1010bird_metadata_2018.csv"),
        ("warblrb10k_public", "warblrb10k_public_metadata.csv"),
        ("BirdVox-DCASE-20k", "BirdVoxDCASE20k_csvpublic.csv"),
    ):
        ids = [line.split(",")[0] for line in (d / name).read_text().splitlines()[1:] if line.strip()]
        stub(str(d / folder / "wav" / f"{i}.wav") for i in ids)
    task = get_task("birdsong")
    clips = task.build_manifest(tmp_path)
    assert_published("birdsong", clips)
    by_set: dict[str, list] = {}
    for c in clips:
        by_set.setdefault(c.group.split(":")[0], []).append(c)
    assert sum(c.label == "bird" for c in by_set["ff1010bird"]) == 1935
    assert sum(c.label == "bird" for c in by_set["warblrb10k"]) == 6045
    for ds, cs in by_set.items():  # 80/10/10 inside every (set, label) stratum
        for label in ("bird", "no_bird"):
            stratum = [c for c in cs if c.label == label]
            share = sum(c.split == "test" for c in stratum) / len(stratum)
            assert abs(share - 0.1) < 0.002, (ds, label, share)


# ---------------------------------------------------------------- VoxCeleb1


def test_voxceleb1_real_meta(meta, tmp_path):
    d = tmp_path / "VoxCeleb1"
    d.mkdir()
    shutil.copyfile(meta / "voxceleb1" / "vox1_meta.csv", d / "vox1_meta.csv")
    speakers = [line.split("\t")[0] for line in (d / "vox1_meta.csv").read_text().splitlines()[1:]]
    # iden_split.txt is not in shared/: one video per speaker and split, in the official line format
    lines = [f"{code} {s}/vid{code}abcdefg/00001.wav" for s in speakers for code in "123"]
    (d / "iden_split.txt").write_text("\n".join(lines) + "\n")
    stub(str(d / "wav" / line.split()[1]) for line in lines)
    task = get_task("voxceleb1")
    clips = task.build_manifest(tmp_path)
    assert clips.report["meta_sets"] == {"dev": 1211, "test": 40}
    assert "meta_not_in_split" not in clips.report
    assert len(task.classes(clips)) == 1251 == task.num_classes
    (d / "iden_split.txt").write_text("\n".join([*lines, "1 id99999/vid/00001.wav"]) + "\n")
    stub([str(d / "wav" / "id99999" / "vid" / "00001.wav")])
    with pytest.raises(ValueError, match=r"vox1_meta\.csv: speakers of iden_split\.txt missing, e\.g\. \['id99999'\]"):
        task.build_manifest(tmp_path)


# ---------------------------------------------------------------- MagnaTagATune


def test_magnatagatune_top50_is_the_published_list(meta):
    """The circulating top-50 list (camelCase, Lee/Won split) names the same 50 tags as hares' fixed list."""
    camel = [t.strip() for t in (meta / "magnatagatune" / "top50_tags.txt").read_text().splitlines() if t.strip()]
    assert len(camel) == 50
    spaced = {"".join(" " + ch.lower() if ch.isupper() else ch for ch in t) for t in camel}
    assert spaced == set(magnatagatune.TOP50)
