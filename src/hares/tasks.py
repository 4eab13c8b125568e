"""The HARES benchmark in one screen: 12 tasks (Wang et al., ICASSP 2022, Table 4), plus custom CSV tasks.

A `TaskSpec` says what a task is (domain, metric, classes, probe) and where its data lives
(`<data-root>/<folder>`, official release layout). Its adapter (`hares.data.adapters.<adapter>`) turns that folder
into a manifest of `Clip`s; `splits` turns the manifest into the train / valid / test sets the probe uses.
Splits and class lists never depend on test-split content (docs/PROTOCOL.md section 5); each dataset's layout, split
and published counts are in docs/DATASETS.md.

    >>> task = get_task("esc50")
    >>> clips = task.build_manifest("/data")          # reads /data/ESC-50 or /data/ESC-50-master
    >>> for name, sets in task.splits(clips): ...     # 5 folds: test = fold i, valid = fold i+1, train = rest

Custom tasks: `get_task("csv:/path/manifest.csv")` (`make_task`; the CSV format is in `hares.data.adapters.csv_task`)
and HEAR task folders `get_task("hear:/path/tasks/esc50-v2.0.0-full")` (see `hares.data.adapters.hear_task`).
"""

from __future__ import annotations

import csv
import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hares.data.adapters import Manifest, load_adapter
from hares.data.adapters import birdsong as _birdsong
from hares.data.adapters import csv_task as _csv_task
from hares.data.adapters import esc50 as _esc50
from hares.data.adapters import magnatagatune as _mtat
from hares.data.adapters import nsynth as _nsynth
from hares.data.adapters import speech_commands as _sc
from hares.data.adapters import tut18 as _tut18
from hares.data.adapters import voxforge as _voxforge
from hares.data.adapters._util import count_splits, gc_paused
from hares.data.manifest import SPLITS, Clip, check_disjoint

__all__ = ["TASKS", "Manifest", "TaskSpec", "get_task", "list_tasks", "make_task"]

DOMAINS = ("environment", "speech", "music")


@dataclass(frozen=True)
class TaskSpec:
    """One evaluation task.

    folders: folder names tried under the data root (first found wins).
    num_classes: expected number of classes (0 = read from the data, as for CSV tasks).
    folds: fold names for cross-validation (ESC-50): test = fold i, valid = fold i+1 (mod k), train = the rest.
    probe: "linear" or "mlp" (AudioSet).
    adapter: module name under `hares.data.adapters`; `options` are its keyword arguments.
    label_set: the canonical class list in index order; () = the sorted labels of the train and valid clips.
    release_split: the release defines the split and hares follows it exactly: a group (speaker, recording) that the
        release itself puts in two splits is listed in the manifest report (`report["straddling"]`), not refused.
        Splits hares makes itself (release_split False) must keep every group inside one split.
    published: clip counts the release publishes, as (what, count); what = a split, splits joined by `+`, `all`,
        or `listed:<name>` (rows of one metadata file, `report["listed"][name]`). `hares tasks` flags differences.
    """

    name: str
    domain: str
    metric: str
    multilabel: bool
    folders: tuple[str, ...]
    url: str
    num_classes: int
    folds: tuple[str, ...] = ()
    probe: str = "linear"
    description: str = ""
    adapter: str = ""
    options: tuple[tuple[str, Any], ...] = ()
    label_set: tuple[str, ...] = field(default=(), repr=False)
    release_split: bool = False
    published: tuple[tuple[str, int], ...] = ()

    def candidates(self, data_root: str | os.PathLike | None) -> list[Path]:
        """Every folder `locate` tries, in order (for a CSV task: the CSV's folder, whatever the data root)."""
        source = dict(self.options).get("path") if self.adapter in ("csv_task", "hear_task") else None
        if source:  # a CSV file's folder, or a HEAR task folder itself
            return [Path(source).parent] if Path(source).is_file() else [Path(source)] if Path(source).is_dir() else []
        root = Path(data_root or ".").expanduser()
        out = [root / f for f in self.folders]
        if root.name in self.folders:  # the data root is the dataset folder itself: tried last
            out.append(root)
        return out

    def locate(self, data_root: str | os.PathLike | None) -> Path | None:
        """The dataset folder under `data_root` (else `data_root` itself if it is named like one), or None."""
        for p in self.candidates(data_root):
            if p.is_dir():
                return p
        return None

    def status(self, data_root: str | os.PathLike | None) -> dict[str, Any]:
        """One row for `hares tasks`: what the task is, where it looks, and the folder found (or None)."""
        found = self.locate(data_root)
        return {
            "name": self.name,
            "domain": self.domain,
            "metric": self.metric,
            "classes": self.num_classes or "from data",
            "looks_in": [str(p) for p in self.candidates(data_root)] or [self.url],
            "found": str(found) if found else None,
            "url": self.url,
        }

    def build_manifest(self, data_root: str | os.PathLike | None, **options: Any) -> Manifest:
        """Read the dataset under `data_root` into clips; `options` override the adapter's defaults.

        Raises FileNotFoundError / ValueError naming the expected file and where the dataset is downloaded.
        """
        root = self.locate(data_root)
        if root is None:
            tried = ", ".join(str(p) for p in self.candidates(data_root)) or self.url
            raise FileNotFoundError(f"{self.name}: dataset folder not found (tried {tried}); download: {self.url}")
        module = load_adapter(self.adapter)
        kwargs = {**dict(self.options), **options}
        try:
            with gc_paused():
                clips = module.build(root, **kwargs)
        except (FileNotFoundError, ValueError, csv.Error) as e:
            kind = FileNotFoundError if isinstance(e, FileNotFoundError) else ValueError
            where = f"download: {self.url}" if self.folders else f"custom task CSV {self.url}"
            raise kind(f"{self.name}: {e} (layout: see the docstring of {module.__name__}; {where})") from e
        allowed = set(SPLITS) | set(self.folds)
        bad = {c.split for c in clips} - allowed
        if bad:
            raise ValueError(f"{self.name}: adapter produced unknown split(s) {sorted(bad)}")
        if not clips:
            raise ValueError(f"{self.name}: no clips found under {root} (download: {self.url})")
        clips = clips if isinstance(clips, Manifest) else Manifest(clips)
        with gc_paused():
            straddling = check_disjoint(clips, f"{self.name}: ", groups="report" if self.release_split else "raise")
        if straddling:
            clips.report["straddling"] = straddling
        return clips

    def count_check(self, clips: list[Clip]) -> list[tuple[str, int, int]]:
        """(what, found, published) for every count the release publishes (see `published`)."""
        counts = count_splits(clips)
        listed = getattr(clips, "report", {}).get("listed", {})
        out = []
        for what, expected in self.published:
            if what.startswith("listed:"):
                found = int(listed.get(what[len("listed:") :], 0))
            elif what == "all":
                found = len(clips)
            else:
                found = sum(counts.get(s, 0) for s in what.split("+"))
            out.append((what, found, expected))
        return out

    def classes(self, clips: list[Clip]) -> list[str]:
        """The class list (index order of the probe's outputs).

        The canonical list for tasks that have one; otherwise the sorted labels of the clips that are not in the
        test split (all clips for cross-validation tasks), so the list never depends on test content. A
        single-label clip whose label is not in the list raises ValueError; multi-label tasks score only the
        listed classes.
        """
        if self.label_set:
            names = list(self.label_set)
        else:
            names = sorted({lab for c in clips if c.split != "test" for lab in c.labels})
        if not self.multilabel:
            known = set(names)
            for c in clips:
                if len(c.labels) != 1 or c.labels[0] not in known:
                    raise ValueError(
                        f"{self.name}: {c.path} ({c.split}) has label(s) {list(c.labels)} outside the class list "
                        f"built from the train and valid splits ({len(names)} classes)"
                    )
        return names

    def splits(self, clips: list[Clip]) -> list[tuple[str, dict[str, list[Clip]]]]:
        """The evaluation splits: [("", {"train", "valid", "test"})], or one entry per fold for CV tasks."""
        by_split: dict[str, list[Clip]] = {}
        for c in clips:
            by_split.setdefault(c.split, []).append(c)
        folds = [f for f in self.folds if f in by_split]
        if not folds:
            return [("", {s: by_split.get(s, []) for s in SPLITS})]
        if len(folds) < 3 or set(by_split) - set(folds):
            raise ValueError(f"{self.name}: cross-validation needs >= 3 folds and only folds, got {sorted(by_split)}")
        out = []
        for i, test in enumerate(folds):
            valid = folds[(i + 1) % len(folds)]
            train = [c for f in folds if f not in (test, valid) for c in by_split[f]]
            out.append((test, {"train": train, "valid": by_split[valid], "test": by_split[test]}))
        return out


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec(
            "audioset", "environment", "mAP", True, ("AudioSet", "audioset"),
            "https://research.google.com/audioset/download.html", 527, probe="mlp", adapter="audioset",
            published=(("listed:balanced_train_segments.csv", 22160), ("listed:eval_segments.csv", 20371)),
            description="527 sound-event labels; train = balanced + unbalanced (5% held out as valid), test = eval",
        ),
        TaskSpec(
            "birdsong", "environment", "accuracy", False, ("birdsong", "Birdsong", "dcase2018_task3"),
            "http://dcase.community/challenge2018/task-bird-audio-detection", 2, adapter="birdsong",
            label_set=_birdsong.CLASSES,
            published=(("all", 35690), ("listed:ff1010bird", 7690), ("listed:warblrb10k_public", 8000),
                       ("listed:BirdVox-DCASE-20k", 20000)),
            description="bird presence (DCASE 2018 BAD dev sets); seeded 80/10/10 split stratified by set and label",
        ),
        TaskSpec(
            "tut18", "environment", "accuracy", False,
            ("TUT-urban-acoustic-scenes-2018-development", "TUT18", "tut18"),
            "https://zenodo.org/record/1228142", 10, adapter="tut18", label_set=_tut18.CLASSES,
            release_split=True, published=(("train+valid", 6122), ("test", 2518)),
            description="10 acoustic scenes; fold1 train (10% of locations as valid) / fold1 evaluate",
        ),
        TaskSpec(
            "esc50", "environment", "accuracy", False, ("ESC-50", "ESC-50-master", "esc50"),
            "https://github.com/karolpiczak/ESC-50", 50, folds=_esc50.FOLDS, adapter="esc50",
            label_set=_esc50.CLASSES, release_split=True, published=tuple((f, 400) for f in _esc50.FOLDS),
            description="50 environmental sound classes; 5-fold CV (test fold i, valid fold i+1)",
        ),
        TaskSpec(
            "speech_commands_v1", "speech", "accuracy", False, _sc.FOLDERS,
            "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz (+ speech_commands_test_set_v0.02)",
            12, adapter="speech_commands", options=(("protocol", "12"),), label_set=_sc.CLASSES_12,
            release_split=True, published=(("train", 85511), ("valid", 10102), ("test", 4890)),
            description="12 classes (10 words, _silence_, _unknown_), TFDS convention on v0.02 audio",
        ),
        TaskSpec(
            "speech_commands_v2", "speech", "accuracy", False, _sc.FOLDERS,
            "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz", 35, adapter="speech_commands",
            options=(("protocol", "35"),), label_set=_sc.CLASSES_35,
            release_split=True, published=(("train", 84843), ("valid", 9981), ("test", 11005)),
            description="35 words; official validation_list / testing_list",
        ),
        TaskSpec(
            "fluent_speech_commands", "speech", "accuracy", False,
            ("fluent_speech_commands_dataset", "fluent_speech_commands", "FSC"),
            "https://fluent.ai/fluent-speech-commands-a-dataset-for-spoken-language-understanding-research/", 31,
            adapter="fluent_speech_commands",
            release_split=True, published=(("train", 23132), ("valid", 3118), ("test", 3793)),
            description="31 intents (action|object|location); official train/valid/test csv",
        ),
        TaskSpec(
            "voxforge", "speech", "accuracy", False, ("voxforge", "VoxForge"),
            "https://storage.googleapis.com/tfds-data/downloads/voxforge/voxforge_urls.txt", 6, adapter="voxforge",
            label_set=_voxforge.CLASSES,
            description="6 languages; TFDS speaker-group split 70/10/20 with seed 0",
        ),
        TaskSpec(
            "voxceleb1", "speech", "accuracy", False, ("VoxCeleb1", "voxceleb1", "vox1"),
            "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox1.html", 1251, adapter="voxceleb1",
            release_split=True, published=(("train", 138361), ("valid", 6904), ("test", 8251)),
            description="1,251 speakers; official iden_split.txt (1 train, 2 valid, 3 test)",
        ),
        TaskSpec(
            "nsynth_instrument", "music", "accuracy", False, _nsynth.FOLDERS,
            "https://magenta.tensorflow.org/datasets/nsynth", 11, adapter="nsynth",
            options=(("target", "instrument"),), label_set=_nsynth.FAMILIES,
            release_split=True, published=_nsynth.PUBLISHED,
            description="11 instrument families; official nsynth-train / valid / test",
        ),
        TaskSpec(
            "nsynth_pitch", "music", "accuracy", False, _nsynth.FOLDERS,
            "https://magenta.tensorflow.org/datasets/nsynth", 128, adapter="nsynth",
            options=(("target", "pitch"),), label_set=_nsynth.PITCHES,
            release_split=True, published=_nsynth.PUBLISHED,
            description="128 MIDI pitches; official nsynth-train / valid / test",
        ),
        TaskSpec(
            "magnatagatune", "music", "mAP", True, ("MagnaTagATune", "magnatagatune", "mtat"),
            "https://mirg.city.ac.uk/codeapps/the-magnatagatune-dataset", 50, adapter="magnatagatune",
            label_set=_mtat.TOP50, published=(("all", 25860),),
            description="top-50 tags; folders 0-b train / c valid / d-f test",
        ),
    )
}  # fmt: skip


def make_task(path: str | os.PathLike, domain: str | None = None, name: str | None = None) -> TaskSpec:
    """The TaskSpec of a custom CSV task (metric, folds and domain read from its header and rows; see
    `hares.data.adapters.csv_task`)."""
    info = _csv_task.describe(path)
    csv_path = Path(info["path"])
    return TaskSpec(
        name=name or f"csv:{csv_path.stem}",
        domain=domain or info["domain"] or "custom",
        metric="mAP" if info["multilabel"] else "accuracy",
        multilabel=info["multilabel"],
        folders=(),
        url=str(csv_path),
        num_classes=0,
        folds=info["folds"],
        description=f"custom task from {csv_path}",
        adapter="csv_task",
        options=(("path", str(csv_path)),),
    )


def list_tasks(pattern: str = "*") -> list[str]:
    """The 12 HARES task names in Table 4 order (filtered by an fnmatch pattern)."""
    return [n for n in TASKS if fnmatch.fnmatch(n, pattern)]


def get_task(name: str, **kwargs: Any) -> TaskSpec:
    """A HARES task by name, or a custom one: `csv:PATH` or a HEAR task folder `hear:DIR` (kwargs: `domain`,
    `name`; see `make_task`, `hear_task.make_task`)."""
    if name.startswith("csv:"):
        return make_task(name[4:], **kwargs)
    if name.startswith("hear:"):
        from hares.data.adapters import hear_task

        return hear_task.make_task(name[5:], **kwargs)
    if kwargs:
        raise TypeError(f"get_task({name!r}) takes no options; got {sorted(kwargs)}")
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; choose from: {', '.join(TASKS)}, csv:PATH or hear:DIR")
    return TASKS[name]
