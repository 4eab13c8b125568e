"""`hares download`: fetch, verify and unpack the freely downloadable HARES releases into the adapters' layouts.

For every file: a streamed HTTP download with a progress bar into `<data-root>/.hares-downloads/<name>.part`,
resumed after an interruption with an HTTP range request, then verified against the checksum its publisher gives
(`Checksum.source` says where that value comes from; some are looked up from the publisher at download time). A
file that fails verification is deleted and the command stops with the URL, the expected and the actual digest.
Archives are extracted into a staging folder next to the data; only when every file of the release is in and the
adapter reads the staged folder with the release's published counts is the folder renamed into place, so a
dataset folder is either absent or complete. A marker file (`.hares-download.json`) in the finished folder makes a
second run a no-op; a folder that exists without the marker (the user's own copy) is never touched.

Releases that need a registration or a licence form (AudioSet, VoxCeleb1, Fluent Speech Commands) print the steps
and the folder to fill instead. VoxForge is a list of ~13,800 small archives (`VoxForgeList`), each extracted in
place as soon as it arrives, so an interrupted run loses at most one archive.

Written with the standard library (urllib, hashlib, tarfile, zipfile) plus tqdm: no download library handles
range resumption, publisher-side checksum look-ups and adapter-checked atomic extraction together.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from hares.io import write_json

DOWNLOADS = ".hares-downloads"
MARKER = ".hares-download.json"
CHUNK = 1 << 20
USER_AGENT = "hares-download (+https://github.com/; research dataset fetcher)"


class DownloadError(RuntimeError):
    """A download that cannot complete: network, checksum, archive or layout problem (message names the file)."""


@dataclass(frozen=True)
class Checksum:
    """How a file is verified.

    algo/value: the digest ("md5" or "sha256"); value "" with `lookup` set = read from the publisher at download
    time; algo "" = the release publishes no checksum (the file is then checked by `size` if known and, after
    extraction, by the adapter reading the release with its published counts).
    source: where the value comes from, in words (recorded in the marker file and printed).
    lookup: ("zenodo", API URL of the record) or ("archive.org", URL of the item's `<item>_files.xml`).
    """

    algo: str
    value: str
    source: str
    lookup: tuple[str, str] = ()


@dataclass(frozen=True)
class Resource:
    """One file of a release. extract: "tar" (any compression), "zip", "part" (a piece of `join`), "" = copy.
    into: folder under the dataset's staging root where the content goes ("" = the root itself)."""

    url: str
    name: str
    checksum: Checksum
    size: int = 0
    extract: str = ""
    into: str = ""


@dataclass(frozen=True)
class Release:
    """A freely downloadable release: its files, the top-level folder(s) they make under the data root, and the
    tasks whose adapters read it. `joins` concatenates downloaded parts into one archive (name, parts, into)."""

    name: str
    tasks: tuple[str, ...]
    folders: tuple[str, ...]
    resources: tuple[Resource, ...]
    licence: str
    joins: tuple[tuple[str, tuple[str, ...], str], ...] = ()
    notes: str = ""


@dataclass(frozen=True)
class Gated:
    """A release behind a registration or licence form: what to do by hand."""

    name: str
    tasks: tuple[str, ...]
    folder: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class VoxForgeList:
    """VoxForge: a URL list (pinned sha256) of per-speaker archives, each extracted in place."""

    name: str = "voxforge"
    tasks: tuple[str, ...] = ("voxforge",)
    folder: str = "voxforge"
    url_list: Resource = field(
        default_factory=lambda: Resource(
            "https://storage.googleapis.com/tfds-data/downloads/voxforge/voxforge_urls.txt",
            "voxforge_urls.txt",
            Checksum(
                "sha256",
                "9cc218a5bce16640dc4eeb263aa423ce63ca59fc6587a9487dc397642b76af6c",
                "TFDS url_checksums/voxforge.txt (tensorflow/datasets)",
            ),
            size=1344189,
        )
    )
    licence: str = "GPL (VoxForge corpus)"


TFDS_SC = "TFDS url_checksums/speech_commands.txt (tensorflow/datasets), sha256 and size"
TUT_MD5 = "Zenodo record 1228142 file md5, as listed in DCASE-REPO/dcase_util datasets/tut.py"
NONE = "the release publishes no checksum; checked after extraction by reading it with its published counts"
TUT18_MD5 = (  # (file suffix, bytes, md5)
    ("doc.zip", 10517, "28a4a9c46a6f46709ecc8eece365a3a4"),
    ("meta.zip", 69272, "e196065ee83c07af03a11a310364377d"),
    ("audio.1.zip", 1657811579, "62f97087c447e29def8716204469bf89"),
    ("audio.2.zip", 1783489370, "8e569a92025d82bff6b02b956d7c6dc9"),
    ("audio.3.zip", 1809675304, "00d2020582a4535af5e65322fb2bad56"),
    ("audio.4.zip", 1756582525, "d691eb4271f83ba6ba9a28797accc497"),
    ("audio.5.zip", 1724002546, "c4d64b5483b60f85e9fe080b3435a6be"),
    ("audio.6.zip", 1645753049, "2f0feee78f216697eb19497714d97642"),
    ("audio.7.zip", 1671903917, "07cfefe80a0731de6819181841239f3a"),
    ("audio.8.zip", 1673304843, "213f3c012859c2e9dcb74aacc8558458"),
    ("audio.9.zip", 1674839259, "b724442b09abcb3bd095ebff497cef85"),
    ("audio.10.zip", 1662932947, "a27a32fa52e283ed8013375b8a16f269"),
    ("audio.11.zip", 1751473843, "7073a121e825ffef99832507f30d6644"),
    ("audio.12.zip", 1742332198, "6567aa61db12776568b6267ce122fb18"),
    ("audio.13.zip", 798990513, "d00eeb2db0e093d8975521323a96c519"),
)


def _archive_org(item: str, name: str, into: str) -> Resource:
    return Resource(
        f"https://archive.org/download/{item}/{name}",
        name,
        Checksum(
            "md5",
            "",
            f"archive.org item {item}: md5 in {item}_files.xml, read at download time",
            ("archive.org", f"https://archive.org/download/{item}/{item}_files.xml"),
        ),  # fmt: skip
        extract="zip",
        into=into,
    )


def _figshare(file_id: int, name: str) -> Resource:
    return Resource(f"https://ndownloader.figshare.com/files/{file_id}", name, Checksum("", "", NONE), into="")


RELEASES: dict[str, Release | Gated | VoxForgeList] = {
    r.name: r
    for r in (
        Release(
            "esc50", ("esc50",), ("ESC-50-master",),
            (Resource("https://github.com/karolpiczak/ESC-50/archive/master.zip", "ESC-50-master.zip",
                      Checksum("", "", NONE), extract="zip"),),
            "CC BY-NC 3.0 (ESC-10 subset CC BY 3.0)",
        ),
        Release(
            "speech_commands", ("speech_commands_v1", "speech_commands_v2"),
            ("speech_commands_v0.02", "speech_commands_test_set_v0.02"),
            (Resource("http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
                      "speech_commands_v0.02.tar.gz",
                      Checksum("sha256", "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58", TFDS_SC),
                      size=2428923189, extract="tar", into="speech_commands_v0.02"),
             Resource("http://download.tensorflow.org/data/speech_commands_test_set_v0.02.tar.gz",
                      "speech_commands_test_set_v0.02.tar.gz",
                      Checksum("sha256", "cc2a00c1147c2254e9be3fa0f779d8c17421dc349b86366567a8edfa9acd51df", TFDS_SC),
                      size=112563277, extract="tar", into="speech_commands_test_set_v0.02")),
            "CC BY 4.0",
        ),
        Release(
            "nsynth", ("nsynth_instrument", "nsynth_pitch"), ("nsynth",),
            tuple(Resource(f"http://download.magenta.tensorflow.org/datasets/nsynth/nsynth-{s}.jsonwav.tar.gz",
                           f"nsynth-{s}.jsonwav.tar.gz", Checksum("", "", NONE), extract="tar", into="nsynth")
                  for s in ("train", "valid", "test")),
            "CC BY 4.0",
        ),
        Release(
            "tut18", ("tut18",), ("TUT-urban-acoustic-scenes-2018-development",),
            tuple(Resource(f"https://zenodo.org/record/1228142/files/TUT-urban-acoustic-scenes-2018-development.{s}",
                           f"TUT-urban-acoustic-scenes-2018-development.{s}", Checksum("md5", md5, TUT_MD5), size=n,
                           extract="zip")
                  for s, n, md5 in TUT18_MD5),
            "TUT custom licence: non-commercial research, with attribution (LICENSE in the doc zip)",
        ),
        Release(
            "birdsong", ("birdsong",), ("birdsong",),
            (_archive_org("ff1010bird", "ff1010bird_wav.zip", "birdsong/ff1010bird"),
             _figshare(10853303, "birdsong/ff1010bird_metadata_2018.csv"),
             _archive_org("warblrb10k_public", "warblrb10k_public_wav.zip", "birdsong/warblrb10k_public"),
             _figshare(10853306, "birdsong/warblrb10k_public_metadata_2018.csv"),
             Resource("https://zenodo.org/record/1208080/files/BirdVox-DCASE-20k.zip", "BirdVox-DCASE-20k.zip",
                      Checksum("md5", "", "Zenodo record 1208080: md5 from the record's API, read at download time",
                               ("zenodo", "https://zenodo.org/api/records/1208080")),
                      extract="zip", into="birdsong/BirdVox-DCASE-20k"),
             _figshare(10853300, "birdsong/BirdVoxDCASE20k_csvpublic.csv")),
            "CC BY 4.0 (Bird Audio Detection data; BirdVox-DCASE-20k)",
        ),
        Release(
            "magnatagatune", ("magnatagatune",), ("MagnaTagATune",),
            (*(Resource(f"https://mirg.city.ac.uk/datasets/magnatagatune/mp3.zip.00{i}", f"mp3.zip.00{i}",
                        Checksum("", "", NONE), extract="part") for i in (1, 2, 3)),
             Resource("https://mirg.city.ac.uk/datasets/magnatagatune/annotations_final.csv",
                      "MagnaTagATune/annotations_final.csv", Checksum("", "", NONE))),
            "CC BY-NC-SA 3.0",
            joins=(("mp3.zip", ("mp3.zip.001", "mp3.zip.002", "mp3.zip.003"), "MagnaTagATune/mp3"),),
        ),
        VoxForgeList(),
        Gated("audioset", ("audioset",), "AudioSet", (
            "Google publishes the segment lists only; the audio must be fetched from YouTube (many videos are gone).",
            "Download class_labels_indices.csv, balanced_train_segments.csv, eval_segments.csv (and, for the full "
            "train set, unbalanced_train_segments.csv) from http://storage.googleapis.com/us_audioset/youtube_corpus/"
            "v1/csv/ into FOLDER.",
            "Fetch each segment's audio (e.g. yt-dlp + ffmpeg, cut to [start, end)) as "
            "FOLDER/audio/<subset>/<YTID>.flac (or PANNs' FOLDER/audios/<subset>/Y<YTID>.wav).",
            "Run `hares tasks --data-root DATA_ROOT`: it counts the segments whose audio is missing.",
        )),
        Gated("voxceleb1", ("voxceleb1",), "VoxCeleb1", (
            "Register at https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox1.html (CC BY 4.0) for the download "
            "links.",
            "Download vox1_dev_wav_partaa..partad (concatenate: cat vox1_dev_wav_parta* > vox1_dev_wav.zip) and "
            "vox1_test_wav.zip; unzip both into FOLDER (giving FOLDER/wav/<speaker>/<video>/<n>.wav).",
            "Download iden_split.txt (https://www.robots.ox.ac.uk/~vgg/data/voxceleb/meta/iden_split.txt) and "
            "optionally vox1_meta.csv into FOLDER.",
        )),
        Gated("fluent_speech_commands", ("fluent_speech_commands",), "fluent_speech_commands_dataset", (
            "Accept the licence at https://fluent.ai/fluent-speech-commands-a-dataset-for-spoken-language-understanding-"
            "research/ to get the download link (non-commercial licence).",
            "Unpack the archive so that FOLDER/data/{train,valid,test}_data.csv and FOLDER/wavs/speakers/ exist.",
        )),
    )
}  # fmt: skip


def release_for(task: str) -> Release | Gated | VoxForgeList:
    """The release that provides `task` (a task name or a release name)."""
    if task in RELEASES:
        return RELEASES[task]
    for r in RELEASES.values():
        if task in r.tasks:
            return r
    names = sorted({t for r in RELEASES.values() for t in r.tasks} | set(RELEASES))
    raise KeyError(f"no download for {task!r}; choose from: {', '.join(names)}, or all")


# ---------------------------------------------------------------- HTTP


def _open(url: str, start: int = 0, timeout: float = 60.0):
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def fetch(url: str, part: Path, progress: bool = True, retries: int = 3, wait_s: float = 2.0) -> Path:
    """Stream `url` into `part`, resuming what is already there with a range request; returns `part`.

    A dropped connection is retried `retries` times, each time from where it stopped; a server that ignores the
    range (answers 200) is read from the start. Raises DownloadError with the URL when it cannot finish.
    """
    from tqdm.auto import tqdm

    part.parent.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.exists() else 0
        try:
            resp = _open(url, have)
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:  # the range starts at the end: the file is already whole
                return part
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError) as e:
            last = e
        else:
            with resp:
                status = getattr(resp, "status", 200)
                mode = "ab" if have and status == 206 else "wb"
                done = have if mode == "ab" else 0
                length = resp.headers.get("Content-Length")
                total = done + int(length) if length and length.isdigit() else None
                name = part.name.removesuffix(".part")
                bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, desc=name, disable=not progress)
                try:
                    with open(part, mode) as f:
                        while chunk := resp.read(CHUNK):
                            f.write(chunk)
                            bar.update(len(chunk))
                    if total is not None and part.stat().st_size < total:
                        raise OSError(f"connection closed at {part.stat().st_size} of {total} bytes")
                    return part
                except OSError as e:  # includes http.client.IncompleteRead
                    last = e
                finally:
                    bar.close()
        if attempt < retries:
            time.sleep(wait_s)
    raise DownloadError(f"{url}: download interrupted ({last}); run the same command again to resume from {part}")


def digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def published_checksum(res: Resource) -> Checksum:
    """The checksum with its value filled in from the publisher when it is looked up at download time."""
    c = res.checksum
    if c.value or not c.lookup:
        return c
    kind, url = c.lookup
    try:
        with _open(url) as resp:
            body = resp.read()
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"{url}: cannot read the published checksum of {res.name} ({e})") from None
    name = Path(res.url).name
    if kind == "archive.org":
        for f in ElementTree.fromstring(body).iter("file"):
            if f.get("name") == name and f.findtext("md5"):
                return Checksum("md5", f.findtext("md5").strip(), c.source)
    elif kind == "zenodo":
        for f in json.loads(body).get("files", []):
            if f.get("key") == name and str(f.get("checksum", "")).startswith("md5:"):
                return Checksum("md5", f["checksum"][4:], c.source)
    raise DownloadError(f"{url}: no {c.algo} checksum for {name} in the publisher's listing")


def verify(path: Path, res: Resource, checksum: Checksum) -> dict[str, Any]:
    """Check size and digest; on a mismatch delete the file and raise DownloadError. Returns what was checked."""
    size = path.stat().st_size
    problem = ""
    if res.size and size != res.size:
        problem = f"size {size:,} bytes, expected {res.size:,}"
    elif checksum.algo:
        got = digest(path, checksum.algo)
        if got != checksum.value.lower():
            problem = f"{checksum.algo} {got}, expected {checksum.value} ({checksum.source})"
    if problem:
        path.unlink(missing_ok=True)
        raise DownloadError(f"{res.url}: {problem}; the file was deleted, run the command again to download it anew")
    return {"url": res.url, "bytes": size, "checksum": asdict(checksum)}


# ---------------------------------------------------------------- archives


def _safe_members(names: list[str], archive: Path) -> None:
    for n in names:
        p = Path(n)
        if p.is_absolute() or ".." in p.parts:
            raise DownloadError(f"{archive}: unsafe member path {n!r}; not extracted")


def extract(archive: Path, dest: Path, kind: str) -> None:
    """Unpack a tar (any compression) or zip archive into `dest` (created), refusing paths that leave it."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "tar":
            with tarfile.open(archive) as tf:
                members = [m for m in tf.getmembers() if m.isfile() or m.isdir()]
                _safe_members([m.name for m in members], archive)
                tf.extractall(dest, members=members)
        elif kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                _safe_members(zf.namelist(), archive)
                zf.extractall(dest)
        else:
            raise ValueError(f"unknown archive kind {kind!r}")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as e:
        raise DownloadError(f"{archive}: not a readable {kind} archive ({e})") from None


# ---------------------------------------------------------------- releases


def _check_with_adapter(release: Release, staged_root: Path) -> tuple[list[str], list[str]]:
    """Build each task's manifest from the staged folders: (errors, count differences from the published numbers)."""
    from hares.tasks import get_task

    errors, counts = [], []
    for name in release.tasks:
        spec = get_task(name)
        try:
            clips = spec.build_manifest(staged_root)
        except (FileNotFoundError, ValueError) as e:
            errors.append(f"{name}: {e}")
            continue
        counts += [f"{name}: {what} has {got:,} clips, the release publishes {want:,}"
                   for what, got, want in spec.count_check(clips) if got != want]  # fmt: skip
    return errors, counts


def download_release(
    release: Release, data_root: Path, progress: bool = True, keep_archives: bool = False,
    check: Callable[[Release, Path], tuple[list[str], list[str]]] = _check_with_adapter,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:  # fmt: skip
    """Download, verify and install one release under `data_root`; returns its marker record."""
    data_root.mkdir(parents=True, exist_ok=True)
    finals = [data_root / f for f in release.folders]
    markers = [f / MARKER for f in finals]
    if all(m.is_file() for m in markers):
        log(f"{release.name}: already downloaded and verified ({', '.join(str(f) for f in finals)})")
        return json.loads(markers[0].read_text())
    foreign = [f for f, m in zip(finals, markers) if f.exists() and not m.is_file()]
    if foreign:
        raise DownloadError(f"{release.name}: {foreign[0]} exists and was not made by `hares download`; "
                            "move it away to download afresh (it is never overwritten)")  # fmt: skip
    cache = data_root / DOWNLOADS
    staging = cache / f"{release.name}.staging"
    shutil.rmtree(staging, ignore_errors=True)  # a half-extracted earlier attempt
    record: dict[str, Any] = {"release": release.name, "licence": release.licence, "files": []}
    done: dict[str, Path] = {}
    try:
        for res in release.resources:
            target = cache / Path(res.name).name
            if not target.is_file():
                checksum = published_checksum(res)
                log(f"{release.name}: {res.url}")
                part = fetch(res.url, target.with_name(target.name + ".part"), progress)
                record["files"].append(verify(part, res, checksum))
                os.replace(part, target)
            else:
                record["files"].append({"url": res.url, "bytes": target.stat().st_size, "checksum": "verified earlier"})
            done[res.name] = target
    except DownloadError:
        _remove_if_empty(cache)
        raise
    try:
        for res in release.resources:
            src = done[res.name]
            if res.extract in ("tar", "zip"):
                extract(src, staging / res.into, res.extract)
            elif res.extract == "":
                dest = staging / res.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)
        for name, parts, into in release.joins:
            joined = cache / name
            with open(joined, "wb") as out:
                for p in parts:
                    with open(done[p], "rb") as f:
                        shutil.copyfileobj(f, out, CHUNK)
            extract(joined, staging / into, "zip")
            joined.unlink()
        errors, counts = check(release, staging)
        # without a published checksum the counts are the only proof of a complete, unmodified copy: they must match
        if errors or (counts and any(not r.checksum.algo for r in release.resources)):
            raise DownloadError(f"{release.name}: the unpacked files do not read as the release: "
                                + "; ".join((errors + counts)[:5]))  # fmt: skip
        for line in counts:  # every file matched its checksum: report, install
            log(f"{release.name}: warning: {line}")
        record["installed_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for folder in release.folders:
            write_json(staging / folder / MARKER, record)
        for folder, final in zip(release.folders, finals):
            os.replace(staging / folder, final)  # atomic: the folder appears complete or not at all
    except DownloadError:
        shutil.rmtree(staging, ignore_errors=True)
        for res in release.resources:  # files nothing vouches for are suspect: fetch them anew next time
            if not res.checksum.algo:
                done[res.name].unlink(missing_ok=True)
        _remove_if_empty(cache)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not keep_archives:
        for p in done.values():
            p.unlink(missing_ok=True)
        _remove_if_empty(cache)
    log(f"{release.name}: installed {', '.join(str(f) for f in finals)}")
    return record


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def download_voxforge(spec: VoxForgeList, data_root: Path, progress: bool = True, limit: int = 0,
                      log: Callable[[str], None] = print) -> dict[str, Any]:  # fmt: skip
    """Fetch the TFDS URL list (sha256-checked), then each archive, extracted in place into a folder of its URL
    path (`voxforge/<host path>/<archive>/`); archives already extracted are skipped, dead links counted."""
    root = data_root / spec.folder
    cache = data_root / DOWNLOADS
    listing = root / spec.url_list.name
    if not listing.is_file():
        part = fetch(spec.url_list.url, cache / (spec.url_list.name + ".part"), progress)
        verify(part, spec.url_list, spec.url_list.checksum)
        root.mkdir(parents=True, exist_ok=True)
        os.replace(part, listing)
    urls = [u.strip() for u in listing.read_text().splitlines() if u.strip()]
    if limit:
        urls = urls[:limit]
    got = skipped = dead = 0
    for url in urls:
        rel = url.split("://", 1)[-1].removesuffix(".tgz")
        final = root / rel
        if final.is_dir():
            skipped += 1
            continue
        tmp = final.with_name(final.name + ".extracting")
        try:
            part = fetch(url, cache / "voxforge" / (Path(rel).name + ".tgz.part"), progress=False, retries=1)
        except DownloadError as e:
            dead += 1
            log(f"voxforge: skipped ({e})")
            continue
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            extract(part, tmp, "tar")
        except DownloadError as e:
            dead += 1
            log(f"voxforge: skipped ({e})")
            continue
        finally:
            part.unlink(missing_ok=True)
        os.replace(tmp, final)
        got += 1
        if progress and got % 100 == 0:
            log(f"voxforge: {got + skipped} / {len(urls)} archives")
    record = {"release": "voxforge", "archives": len(urls), "fetched": got, "present": skipped, "failed": dead,
              "url_list": asdict(spec.url_list.checksum)}  # fmt: skip
    write_json(root / MARKER, record)
    log(f"voxforge: {got} fetched, {skipped} already there, {dead} failed (dead links are common) in {root}")
    return record


def describe(r: Release | Gated | VoxForgeList) -> list[str]:
    """Lines for `hares download --list`: tasks, folders, files with sizes and where each checksum comes from."""
    if isinstance(r, Gated):
        return [f"{r.name} (tasks {', '.join(r.tasks)}): gated; prints the steps; folder {r.folder}"]
    if isinstance(r, VoxForgeList):
        c = r.url_list.checksum
        return [
            f"{r.name} (tasks {', '.join(r.tasks)}): {r.licence}; folder {r.folder}",
            f"  {r.url_list.url}: {c.algo} from {c.source}; then ~13,800 archives (no checksums published)",
        ]
    lines = [f"{r.name} (tasks {', '.join(r.tasks)}): {r.licence}; folder(s) {', '.join(r.folders)}"]
    for res in r.resources:
        size = (f"{res.size / 1e9:.2f} GB, " if res.size >= 1e9 else f"{res.size / 1e6:.2f} MB, ") if res.size else ""
        how = f"{res.checksum.algo} from {res.checksum.source}" if res.checksum.algo else res.checksum.source
        lines.append(f"  {res.url}: {size}{how}")
    return lines


def gated_steps(spec: Gated, data_root: Path) -> list[str]:
    folder = str(data_root / spec.folder)
    lines = [f"{spec.name}: not downloadable without a registration or licence form; do this by hand:"]
    lines += [f"  {i}. " + s.replace("FOLDER", folder).replace("DATA_ROOT", str(data_root))
              for i, s in enumerate(spec.steps, 1)]  # fmt: skip
    lines.append(f"  folder: {folder} (tasks: {', '.join(spec.tasks)}; layout: docs/DATASETS.md)")
    return lines
