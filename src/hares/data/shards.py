"""WebDataset tar shards for pre-training at scale: written by `hares shards`, streamed by `hares.train.data`.

A shard `shard-000000.tar` holds `{key}.flac` (16 kHz mono PCM 16) + `{key}.json` ({"labels": [...], "source":
path}); `shards.json` beside them records the counts, the label names and the files that could not be decoded.
Read and written with the standard library's `tarfile`; the WebDataset convention keeps them readable by
`webdataset` too.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import soundfile as sf

from hares.audio import SAMPLE_RATE, AudioError, load_audio
from hares.data.manifest import Clip
from hares.io import atomic_path, write_json

if TYPE_CHECKING:
    from hares.data.sources import Source

SHARD_INDEX = "shards.json"
AUDIO_MEMBERS = ("flac", "wav", "ogg", "mp3")
MAX_MEMBER_BYTES = 256 * 2**20  # one clip in a shard: 10 min of 48 kHz stereo WAV is ~115 MB
MAX_META_BYTES = 2**20


def shard_list(path: Path) -> list[Path]:
    """The shards of a folder (`*.tar`), a single `.tar`, or a text file listing shards one per line."""
    if path.is_file() and path.suffix == ".tar":
        return [path]
    if path.is_file():
        return [Path(ln.strip()) for ln in path.read_text().splitlines() if ln.strip()]
    return sorted(path.glob("*.tar"))


def _encode_flac(wav, sample_rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wav, sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def write_shards(source: Source, out_dir: str | os.PathLike, shard_size: int = 512, progress: bool = False) -> dict:
    """Decode every clip of a map-style `source` to 16 kHz mono and write WebDataset shards.

    Shards are written atomically, then `shards.json` (counts, labels, skipped files).
    """
    from tqdm import tqdm

    from hares.data.sources import DataError

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shards: list[dict] = []
    skipped: list[str] = []

    def encoded() -> Iterator[tuple[Clip, bytes]]:
        for clip in tqdm(source.items, disable=not progress, desc="shards", unit="clip"):
            try:
                yield clip, _encode_flac(load_audio(clip.path, SAMPLE_RATE, clip.start, clip.end), SAMPLE_RATE)
            except (AudioError, OSError) as e:
                skipped.append(str(e))

    stream, key = encoded(), 0
    while (first := next(stream, None)) is not None:
        name, count = f"shard-{len(shards):06d}.tar", 0
        with atomic_path(out_dir / name) as tmp, tarfile.open(tmp, "w") as tar:
            for clip, flac in itertools.chain([first], itertools.islice(stream, shard_size - 1)):
                k = f"{key:09d}"
                _add_member(tar, f"{k}.flac", flac)
                _add_member(tar, f"{k}.json", json.dumps({"labels": list(clip.labels), "source": clip.path}).encode())
                key, count = key + 1, count + 1
        shards.append({"name": name, "count": count})
    if not shards:
        raise DataError(f"none of the {len(source.items)} clips could be decoded; first error: {skipped[:1]}")
    summary = {
        "shards": shards,
        "num_samples": key,
        "skipped": len(skipped),
        "skipped_examples": skipped[:20],
        "label_names": source.label_names,
        "sample_rate": SAMPLE_RATE,
        "format": "webdataset: {key}.flac (PCM_16 mono) + {key}.json",
    }
    write_json(out_dir / SHARD_INDEX, summary)
    return summary


def count_members(shard: str | os.PathLike) -> int:
    """Audio samples in a shard (counted from its member names)."""
    with tarfile.open(shard) as tar:
        return sum(1 for m in tar.getmembers() if m.name.rpartition(".")[2] in AUDIO_MEMBERS)


def read_shard(shard: str) -> list[tuple[str, bytes | int, dict]]:
    """(name, audio bytes, json) for each sample of a shard, in key order.

    Sizes come from the (untrusted) tar headers: a member over `MAX_MEMBER_BYTES` (`MAX_META_BYTES` for its JSON)
    is not read; its sample keeps its place in the stream with the size instead of the bytes, and `decode_member`
    reports it as a bad clip."""
    samples: dict[str, dict] = {}
    with tarfile.open(shard) as tar:
        for m in tar:
            if not m.isfile():
                continue
            key, _, ext = m.name.rpartition(".")
            if ext not in AUDIO_MEMBERS and ext != "json":
                continue  # never used: never read
            limit = MAX_META_BYTES if ext == "json" else MAX_MEMBER_BYTES
            samples.setdefault(key, {})[ext] = m.size if m.size > limit else tar.extractfile(m).read()
    out = []
    for key in sorted(samples):
        s = samples[key]
        audio_ext = next((e for e in AUDIO_MEMBERS if e in s), None)
        if audio_ext is None:
            continue
        if isinstance(s.get("json"), int):  # oversized metadata: the sample is bad, its place is kept
            out.append((f"{shard}:{key}.json", s["json"], {}))
            continue
        meta = json.loads(s["json"]) if "json" in s else {}
        out.append((f"{shard}:{key}.{audio_ext}", s[audio_ext], meta))
    return out


def decode_member(name: str, data: bytes | int):
    """A shard sample's audio through the one decoder (`hares.audio.load_audio`); an int is the size of a member
    `read_shard` left unread (over the limit): AudioError."""
    if isinstance(data, int):
        raise AudioError(f"{name}: a {data:,d}-byte member, over the per-member limit (MAX_MEMBER_BYTES); not read")
    return load_audio(data, SAMPLE_RATE, name=name)
