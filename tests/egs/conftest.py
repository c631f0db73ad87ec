"""Fixtures for the recipe tests: a tiny LibriSpeech-shaped corpus and a local HTTP mirror.

The mirror serves a folder from 127.0.0.1, answers Range requests with 206, and can drop
the connection half-way through a file (once) to exercise resumed downloads.
"""

from __future__ import annotations

import hashlib
import http.server
import re
import tarfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 16000
SPEAKERS = {"1089": "134686", "2277": "149896"}  # speaker -> chapter
TEXTS = ["HE HOPED THERE WOULD BE STEW FOR DINNER", "TURNIPS AND CARROTS AND BRUISED POTATOES"]


def speechlike(seconds: float, seed: int) -> np.ndarray:
    """Voiced-speech-like test signal (T,): a gliding harmonic source under a syllable envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 100 + rng.uniform(0, 80) + 25 * np.sin(2 * np.pi * rng.uniform(2, 4) * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    source = sum(np.sin(k * phase) / k for k in range(1, 25))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * rng.uniform(3, 5) * t))
    x = source * envelope + 0.01 * rng.standard_normal(t.size)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def write_part(root: Path, part: str) -> dict[str, str]:
    """Write root/LibriSpeech/<part>: 2 speakers x 1 chapter x 2 utterances. Returns {id: text}."""
    expected = {}
    for s, (spk, ch) in enumerate(SPEAKERS.items()):
        chapter = root / "LibriSpeech" / part / spk / ch
        chapter.mkdir(parents=True)
        lines = []
        for u, text in enumerate(TEXTS):
            utt = f"{spk}-{ch}-{u:04d}"
            sf.write(chapter / f"{utt}.flac", speechlike(0.6 + 0.1 * u, seed=10 * s + u), SR)
            lines.append(f"{utt} {text}")
            expected[utt] = text
        (chapter / f"{spk}-{ch}.trans.txt").write_text("\n".join(lines) + "\n")
    (root / "LibriSpeech" / "README.TXT").write_text("tiny test corpus\n")
    return expected


@dataclass
class Corpus:
    """A LibriSpeech-shaped tree, its archive on the mirror folder and an md5 table."""

    tree: Path
    mirror_dir: Path
    md5_file: Path
    md5: str
    texts: dict[str, str]
    part: str = "dev-clean"


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    tree = tmp_path / "src"
    texts = write_part(tree, "dev-clean")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = mirror / "dev-clean.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree / "LibriSpeech", arcname="LibriSpeech")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    md5_file = tmp_path / "md5sum.txt"
    md5_file.write_text(f"{md5}  dev-clean.tar.gz\n")
    return Corpus(tree / "LibriSpeech", mirror, md5_file, md5, texts)


@dataclass
class Mirror:
    """State of the test HTTP server: what it serves and what it was asked."""

    root: Path
    url: str = ""
    ranges: bool = True  # answer Range requests (False: ignore them, like some servers)
    drop_once: set[str] = field(default_factory=set)  # names whose next GET stops half-way
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (name, Range header)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        mirror: Mirror = self.server.mirror  # type: ignore[attr-defined]
        name = self.path.lstrip("/")
        rng = self.headers.get("Range")
        mirror.requests.append((name, rng))
        path = mirror.root / name
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and mirror.ranges:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if name in mirror.drop_once:  # promise everything, send half, hang up
            mirror.drop_once.discard(name)
            body = body[: len(body) // 2]
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def mirror(corpus: Corpus):
    """An HTTP server on 127.0.0.1 serving corpus.mirror_dir (HTTP/1.0: one request per connection)."""
    state = Mirror(corpus.mirror_dir)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.mirror = state  # type: ignore[attr-defined]
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (a port just released)."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}"
