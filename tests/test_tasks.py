"""The task registry (Table 4 of the paper) and custom CSV tasks."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from hares.data.manifest import Clip, check_disjoint
from hares.tasks import DOMAINS, TASKS, TaskSpec, get_task, list_tasks

TABLE4 = {  # name: (domain, metric, classes)
    "audioset": ("environment", "mAP", 527),
    "birdsong": ("environment", "accuracy", 2),
    "tut18": ("environment", "accuracy", 10),
    "esc50": ("environment", "accuracy", 50),
    "speech_commands_v1": ("speech", "accuracy", 12),
    "speech_commands_v2": ("speech", "accuracy", 35),
    "fluent_speech_commands": ("speech", "accuracy", 31),
    "voxforge": ("speech", "accuracy", 6),
    "voxceleb1": ("speech", "accuracy", 1251),
    "nsynth_instrument": ("music", "accuracy", 11),
    "nsynth_pitch": ("music", "accuracy", 128),
    "magnatagatune": ("music", "mAP", 50),
}


def test_registry_matches_table4():
    assert list_tasks() == list(TABLE4)
    assert list_tasks("nsynth*") == ["nsynth_instrument", "nsynth_pitch"]
    for name, (domain, metric, n) in TABLE4.items():
        t = get_task(name)
        assert isinstance(t, TaskSpec) and t is TASKS[name]
        assert (t.domain, t.metric, t.num_classes) == (domain, metric, n)
        assert t.multilabel == (metric == "mAP") and t.domain in DOMAINS
        assert t.folders and t.url.startswith("http") and t.adapter
        assert t.label_set == () or len(t.label_set) == n == len(set(t.label_set))
    assert get_task("audioset").probe == "mlp"
    assert {t.probe for n, t in TASKS.items() if n != "audioset"} == {"linear"}


def test_unknown_task_lists_choices():
    with pytest.raises(KeyError, match="esc50"):
        get_task("esc51")


def test_locate_missing_returns_none(tmp_path):
    for name in list_tasks():
        assert get_task(name).locate(tmp_path) is None
        with pytest.raises(FileNotFoundError, match=get_task(name).url.split()[0]):
            get_task(name).build_manifest(tmp_path)


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_csv_task_given_splits_relative_paths(tmp_path):
    rows = ["path,label,split"]
    for i in range(20):
        rows.append(f"audio/a{i}.wav,{'cat' if i % 2 else 'dog'},{['train', 'valid', 'test', 'train'][i % 4]}")
    csv = _write(tmp_path / "my task.csv", "\n".join(rows) + "\n")
    task = get_task(f"csv:{csv}")
    assert (task.name, task.domain, task.metric, task.multilabel, task.folds) == (
        "csv:my task",
        "custom",
        "accuracy",
        False,
        (),
    )
    assert task.locate(None) == tmp_path and task.locate("/elsewhere") == tmp_path
    clips = task.build_manifest(None)
    assert clips[0].path == str(tmp_path / "audio" / "a0.wav")
    assert clips.report["clips"] == {"test": 5, "train": 10, "valid": 5}
    assert task.classes(clips) == ["cat", "dog"]
    ((_, sets),) = task.splits(clips)
    assert [len(sets[s]) for s in ("train", "valid", "test")] == [10, 5, 5]


def test_csv_task_without_split_is_deterministic_by_group(tmp_path):
    rows = ["path,label,group"] + [f"/abs/s{i % 10}_{i}.wav,{i % 3},spk{i % 10}" for i in range(100)]
    csv = _write(tmp_path / "t.csv", "\n".join(rows) + "\n")
    clips = get_task(f"csv:{csv}", domain="speech").build_manifest(None)
    assert get_task(f"csv:{csv}", domain="speech").domain == "speech"
    check_disjoint(clips)  # groups never straddle splits
    per_split = {s: len({c.group for c in clips if c.split == s}) for s in ("train", "valid", "test")}
    assert per_split == {"train": 7, "valid": 1, "test": 2}
    assert clips[0].path == "/abs/s0_0.wav"
    # the same assignment in a fresh interpreter (hashlib, not hash())
    code = (
        "from hares.tasks import get_task; import sys;"
        f"print([c.split for c in get_task('csv:{csv}').build_manifest(None)])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == str([c.split for c in clips])


def test_csv_task_without_valid_carves_it_from_train(tmp_path):
    rows = ["path,label,split"] + [f"x{i}.wav,{i % 2},{'test' if i < 20 else 'train'}" for i in range(100)]
    clips = get_task(f"csv:{_write(tmp_path / 't.csv', chr(10).join(rows))}").build_manifest(None)
    n = {s: sum(c.split == s for c in clips) for s in ("train", "valid", "test")}
    assert n == {"train": 70, "valid": 10, "test": 20}
    assert all(c.split == "test" for c in clips if int(c.path.rsplit("x", 1)[1][:-4]) < 20)


def test_csv_task_multilabel_and_folds(tmp_path):
    rows = ["path,labels,split,domain"] + [f"x{i}.wav,a;b{i % 3},fold{i % 4 + 1},music" for i in range(16)]
    rows.append("y.wav,,fold1,music")
    task = get_task(f"csv:{_write(tmp_path / 'm.csv', chr(10).join(rows))}")
    assert (task.metric, task.multilabel, task.folds, task.domain) == (
        "mAP",
        True,
        ("fold1", "fold2", "fold3", "fold4"),
        "music",
    )
    clips = task.build_manifest(None)
    assert clips[0].labels == ("a", "b0") and clips[-1].labels == ()
    assert task.classes(clips) == ["a", "b0", "b1", "b2"]
    splits = task.splits(clips)
    assert [n for n, _ in splits] == ["fold1", "fold2", "fold3", "fold4"]
    assert [len(s["test"]) for _, s in splits] == [5, 4, 4, 4]


@pytest.mark.parametrize(
    "text, match",
    [
        ("file,label\nx.wav,a\n", "needs a `path` column"),
        ("path,label,labels\nx.wav,a,a\n", "exactly one of"),
        ("path,label,split\nx.wav,a,holdout\n", "split 'holdout'"),
        ("path,label,split\nx.wav,,train\n", "empty label"),
        ("path,label,split\nx.wav,a,train\ny.wav,a,fold1\n", "mixes fold"),
        ("path,label,split\nx.wav,a,train\ny.wav,a,valid\nx.wav,a,test\n", "appears in splits"),
        ("path,label,split\nx.wav,a,train\ny.wav,a,test\n", "1 group.* cannot fill"),
    ],
)
def test_csv_task_bad_input(tmp_path, text, match):
    csv = _write(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError, match=match):
        get_task(f"csv:{csv}").build_manifest(None)


def test_csv_missing_file():
    with pytest.raises(FileNotFoundError, match="custom task CSV not found"):
        get_task("csv:/nonexistent/x.csv")


def test_classes_never_read_test_labels():
    task = replace(get_task("esc50"), name="t", label_set=(), folds=())
    clips = [Clip(f"/{i}.wav", (str(i // 3),), s) for i, s in enumerate(["train", "valid", "test"] * 3)]
    assert task.classes(clips) == ["0", "1", "2"]
    with pytest.raises(ValueError, match="outside the class list"):
        task.classes(clips + [Clip("/new.wav", ("9",), "test")])
    multi = replace(task, multilabel=True)
    assert multi.classes(clips + [Clip("/new.wav", ("9",), "test")]) == ["0", "1", "2"]


def test_csv_task_accepts_excel_bom_and_quoted_paths(tmp_path):
    text = '\ufeffpath,label,split\n"dir, with comma/a.wav",x,train\n"b.wav",y,valid\nc.wav,y,test\n'
    (tmp_path / "t.csv").write_text(text, encoding="utf-8")
    clips = get_task(f"csv:{tmp_path / 't.csv'}").build_manifest(None)
    assert clips[0].path == str(tmp_path / "dir, with comma" / "a.wav") and clips[1].labels == ("y",)


def test_csv_task_few_groups_still_fill_every_split(tmp_path):
    rows = ["path,label,group"] + [f"x{i}.wav,{i % 2},spk{i % 6}" for i in range(60)]
    clips = get_task(f"csv:{_write(tmp_path / 't.csv', chr(10).join(rows))}").build_manifest(None)
    assert {s: len({c.group for c in clips if c.split == s}) for s in ("train", "valid", "test")} == {
        "train": 4, "valid": 1, "test": 1
    }  # fmt: skip
    rows = ["path,label,group"] + [f"x{i}.wav,{i % 2},spk{i % 2}" for i in range(10)]
    with pytest.raises(ValueError, match="2 group"):
        get_task(f"csv:{_write(tmp_path / 'u.csv', chr(10).join(rows))}").build_manifest(None)


def test_status_rows_for_hares_tasks(tmp_path):
    (tmp_path / "ESC-50-master").mkdir()
    rows = {t: get_task(t).status(tmp_path) for t in list_tasks()}
    assert rows["esc50"]["found"] == str(tmp_path / "ESC-50-master")
    assert rows["esc50"]["looks_in"][0] == str(tmp_path / "ESC-50")
    assert rows["audioset"]["found"] is None and rows["audioset"]["metric"] == "mAP"
    assert rows["voxceleb1"]["classes"] == 1251


def test_straddling_groups_are_reported_for_release_splits_and_refused_for_ours():
    clips = [Clip("/a.wav", ("x",), "fold1", "src:1"), Clip("/b.wav", ("y",), "fold2", "src:1"),
             Clip("/c.wav", ("x",), "fold2", "src:2")]  # fmt: skip
    assert check_disjoint(clips, groups="report") == {"src:1": ["fold1", "fold2"]}
    with pytest.raises(ValueError, match="group 'src:1' appears in splits 'fold1' and 'fold2'"):
        check_disjoint(clips)
    with pytest.raises(ValueError, match="appears in splits"):  # one clip in two splits: refused either way
        check_disjoint([*clips, Clip("/a.wav", ("x",), "fold3")], groups="report")
    assert get_task("esc50").release_split and not get_task("birdsong").release_split


def test_report_names_the_groups_a_release_puts_in_two_splits():
    from hares.evaluate.report import data_notes

    results = {"tasks": {
        "esc50": {"manifest_report": {"straddling": {"src:131943": ["fold2", "fold3"]}}},
        "audioset": {"manifest_report": {"missing": {"eval_segments.csv": 12, "balanced_train_segments.csv": 3}}},
        "tut18": {"manifest_report": {}},
        "birdsong": {"manifest_report": {"missing": ["a.wav", "b.wav"]}},
    }}  # fmt: skip
    text = "\n".join(data_notes(results))
    assert "## Data notes" in text and "`src:131943` (fold2/fold3)" in text and "15 listed clip(s)" in text
    assert "birdsong: 2 listed clip(s)" in text
    assert "tut18" not in text and data_notes({"tasks": {"tut18": {}}}) == []
