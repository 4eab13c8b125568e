"""`hares download` against a local HTTP server (127.0.0.1 only; no test reaches the internet).

The server serves fixture archives from memory, honours range requests, can drop a connection part-way through a
file, and logs every request, so resumption, verification, atomic installation and idempotence are observable.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import zipfile
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hares.cli import main
from hares.data import download as dl
from hares.data.download import Checksum, DownloadError, Release, Resource


class Server:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.drop_after: dict[str, int] = {}  # path -> bytes sent before the connection is cut (once)
        self.log: list[tuple[str, str | None]] = []  # (path, Range header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                server.log.append((self.path, self.headers.get("Range")))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                cut = server.drop_after.pop(self.path, None)
                self.wfile.write(body[start : start + cut] if cut is not None else body[start:])
                if cut is not None:
                    self.wfile.flush()
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def add(self, path: str, body: bytes) -> str:
        self.files[path] = body
        return self.url + path


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    s = Server()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def no_check(release, staged):
    return [], []


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    body = bytes(range(256)) * 4000  # 1 MB
    url = server.add("/big.bin", body)
    server.drop_after["/big.bin"] = 300_000
    part = tmp_path / "big.bin.part"
    with pytest.raises(DownloadError, match=r"/big\.bin: download interrupted .* run the same command again"):
        dl.fetch(url, part, progress=False, retries=0)
    assert part.stat().st_size == 300_000  # what arrived is kept
    dl.fetch(url, part, progress=False, retries=0)
    assert part.read_bytes() == body
    assert server.log == [("/big.bin", None), ("/big.bin", "bytes=300000-")]  # the rest only, not the whole file

    # within one call: a dropped connection is retried from where it stopped
    server.log.clear()
    server.drop_after["/big.bin"] = 100_000
    again = tmp_path / "again.part"
    dl.fetch(url, again, progress=False, retries=1, wait_s=0)
    assert again.read_bytes() == body and server.log == [("/big.bin", None), ("/big.bin", "bytes=100000-")]


def make_release(server: Server, md5_of_tar: str | None = None) -> tuple[Release, dict]:
    """A small release: a tar.gz (into a sub-folder), a zip with its own top folder, a plain file, a split zip."""
    tgz = tar_gz({"a/one.wav": b"1", "b/two.wav": b"22", "list.txt": b"a/one.wav\n"})
    top = zip_bytes({"Thing-master/meta/x.csv": b"h\n1\n", "Thing-master/audio/x.wav": b"x"})
    joined = zip_bytes({"0/clip.mp3": b"m" * 5000, "f/clip.mp3": b"n" * 5000})
    thirds = [
        joined[: len(joined) // 3],
        joined[len(joined) // 3 : 2 * len(joined) // 3],
        joined[2 * len(joined) // 3 :],
    ]
    res = (
        Resource(server.add("/r/main.tar.gz", tgz), "main.tar.gz", Checksum("md5", md5_of_tar or md5(tgz), "test"),
                 size=len(tgz), extract="tar", into="thing_v1"),
        Resource(server.add("/r/master.zip", top), "master.zip", Checksum("", "", dl.NONE), extract="zip"),
        Resource(server.add("/r/labels.csv", b"id,label\n"), "thing_v1/labels.csv",
                 Checksum("sha256", hashlib.sha256(b"id,label\n").hexdigest(), "test")),
        *(Resource(server.add(f"/r/mp3.zip.00{i}", p), f"mp3.zip.00{i}", Checksum("md5", md5(p), "test"),
                   extract="part") for i, p in enumerate(thirds, 1)),
    )  # fmt: skip
    release = Release("thing", ("thing_task",), ("thing_v1", "Thing-master"), res, "test licence",
                      joins=(("mp3.zip", ("mp3.zip.001", "mp3.zip.002", "mp3.zip.003"), "thing_v1/mp3"),))  # fmt: skip
    return release, {"tgz": tgz}


def test_release_is_verified_installed_atomically_and_idempotent(server, tmp_path):
    release, _ = make_release(server)
    record = dl.download_release(release, tmp_path, progress=False, check=no_check, log=lambda m: None)
    assert (tmp_path / "thing_v1/a/one.wav").read_bytes() == b"1"
    assert (tmp_path / "thing_v1/labels.csv").read_text() == "id,label\n"
    assert (tmp_path / "thing_v1/mp3/f/clip.mp3").read_bytes() == b"n" * 5000
    assert (tmp_path / "Thing-master/meta/x.csv").is_file()
    assert not (tmp_path / dl.DOWNLOADS).exists()  # archives removed, no staging left
    marker = json.loads((tmp_path / "thing_v1" / dl.MARKER).read_text())
    assert marker == json.loads(json.dumps(record)) and marker["files"][0]["checksum"]["algo"] == "md5"
    requests = len(server.log)
    dl.download_release(release, tmp_path, progress=False, check=no_check, log=lambda m: None)
    assert len(server.log) == requests  # a second run downloads nothing


def test_bad_checksum_fails_clearly_and_leaves_nothing_behind(server, tmp_path):
    release, _ = make_release(server, md5_of_tar="0" * 32)
    with pytest.raises(
        DownloadError, match=r"/r/main\.tar\.gz: md5 [0-9a-f]{32}, expected 0{32} \(test\); the file was deleted"
    ):
        dl.download_release(release, tmp_path, progress=False, check=no_check, log=lambda m: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_layout_that_the_adapter_cannot_read_is_not_installed(server, tmp_path):
    """Without a published checksum the unpacked folder must read with the release's published counts; a short copy
    is refused. With a checksum that matched, differing counts are reported and the folder is installed."""
    from fixtures_layouts import esc50 as esc50_fixture

    src = esc50_fixture(tmp_path / "src")  # 12 clips per fold instead of 400
    files = {f"ESC-50-master/{p.relative_to(src).as_posix()}": p.read_bytes() for p in src.rglob("*") if p.is_file()}
    archive = zip_bytes(files)
    url = server.add("/esc.zip", archive)
    release = replace(dl.RELEASES["esc50"], resources=(
        Resource(url, "ESC-50-master.zip", Checksum("", "", dl.NONE), extract="zip"),))  # fmt: skip
    root = tmp_path / "data"
    msg = r"esc50: the unpacked files do not read as the release: esc50: fold1 has 12 clips, the release publishes 400"
    with pytest.raises(DownloadError, match=msg):
        dl.download_release(release, root, progress=False, log=lambda m: None)
    assert not (root / "ESC-50-master").exists() and not (root / dl.DOWNLOADS).exists()

    checked = replace(release, resources=(replace(release.resources[0], checksum=Checksum("md5", md5(archive), "t")),))
    logged: list[str] = []
    dl.download_release(checked, root, progress=False, log=logged.append)
    assert (root / "ESC-50-master" / dl.MARKER).is_file()
    assert any("warning: esc50: fold1 has 12 clips" in line for line in logged)


def test_foreign_folder_is_never_overwritten(server, tmp_path):
    release, _ = make_release(server)
    (tmp_path / "thing_v1").mkdir()
    (tmp_path / "thing_v1" / "mine.txt").write_text("keep")
    with pytest.raises(DownloadError, match="exists and was not made by `hares download`"):
        dl.download_release(release, tmp_path, progress=False, check=no_check, log=lambda m: None)
    assert (tmp_path / "thing_v1" / "mine.txt").read_text() == "keep" and not server.log


def test_checksums_read_from_the_publisher(server):
    zipped = b"zip bytes"
    xml = f'<files><file name="x_wav.zip" source="original"><md5>{md5(zipped)}</md5></file></files>'.encode()
    res = Resource(
        server.add("/download/x/x_wav.zip", zipped),
        "x_wav.zip",
        Checksum("md5", "", "archive.org", ("archive.org", server.add("/download/x/x_files.xml", xml))),
    )
    assert dl.published_checksum(res).value == md5(zipped)
    record = json.dumps({"files": [{"key": "Set.zip", "checksum": "md5:abc123"}]}).encode()
    res = Resource(
        server.url + "/files/Set.zip",
        "Set.zip",
        Checksum("md5", "", "zenodo", ("zenodo", server.add("/api/records/1", record))),
    )
    assert dl.published_checksum(res).value == "abc123"
    res = replace(res, url=server.url + "/files/Other.zip")
    with pytest.raises(DownloadError, match="no md5 checksum for Other.zip"):
        dl.published_checksum(res)


def test_voxforge_archives_extracted_in_place_dead_links_counted(server, tmp_path):
    archive = tar_gz({"alice-20100101-abc/wav/a1.wav": b"w", "alice-20100101-abc/etc/PROMPTS": b"p"})
    good = server.add("/vf/de/Trunk/Audio/Main/16kHz_16bit/alice-20100101-abc.tgz", archive)
    urls = f"{good}\n{server.url}/vf/en/Trunk/Audio/Main/16kHz_16bit/gone-2011-x.tgz\n".encode()
    spec = dl.VoxForgeList(url_list=Resource(server.add("/voxforge_urls.txt", urls), "voxforge_urls.txt",
                                             Checksum("sha256", hashlib.sha256(urls).hexdigest(), "test")))  # fmt: skip
    record = dl.download_voxforge(spec, tmp_path, progress=False, log=lambda m: None)
    assert (record["fetched"], record["failed"]) == (1, 1)
    wav = next((tmp_path / "voxforge").rglob("a1.wav"))
    assert "/de/Trunk/" in wav.as_posix()
    from hares.data.adapters import voxforge

    clips = voxforge.build(tmp_path / "voxforge")
    assert [(c.label, c.group) for c in clips] == [("de", "alice")]
    again = dl.download_voxforge(spec, tmp_path, progress=False, log=lambda m: None)
    assert (again["fetched"], again["present"]) == (0, 1)


def test_cli_gated_unknown_and_list(capsys, tmp_path):
    assert main(["download", "voxceleb1", "--data-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "register" in out.lower() and str(tmp_path / "VoxCeleb1") in out and "iden_split.txt" in out
    assert main(["download", "esc51", "--data-root", str(tmp_path)]) == 2
    assert "no download for 'esc51'" in capsys.readouterr().out
    assert main(["download", "--list"]) == 0
    listing = capsys.readouterr().out
    for name in ("esc50", "speech_commands", "nsynth", "tut18", "birdsong", "magnatagatune", "voxforge", "audioset"):
        assert name in listing
    assert "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58" not in listing  # sources, not digests
    assert "TFDS url_checksums/speech_commands.txt" in listing
