"""Baseline codecs: spec parsing, Ogg accounting, absent programs, real runs when installed."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from fsq_audio.errors import ConfigError
from fsq_audio.eval import baselines
from fsq_audio.eval.baselines import Codec2, Identity, Opus, ogg_payload_bytes, parse_baselines
from fsq_audio.eval.metrics import score
from fsq_audio.eval.runner import evaluate

HAVE_OPUS = Opus("12").missing() is None
HAVE_CODEC2 = Codec2("1200").missing() is None


def test_parse_baselines_names_and_errors():
    names = [s.name for s in parse_baselines("identity, opus:6,opus:12k,codec2:700c,opus:6.0,g722")]
    assert names == ["identity", "opus:6", "opus:12", "codec2:700C", "g722"]
    assert parse_baselines("none") == [] and parse_baselines(None) == []
    for bad in ("mp3:128", "opus:abc", "opus:1", "codec2:999", "identity:2", "g722:48"):
        with pytest.raises(ConfigError):
            parse_baselines(bad)


def _ogg_page(packets: list[bytes], seq: int) -> bytes:
    lacing = []
    for p in packets:
        lacing += [255] * (len(p) // 255) + [len(p) % 255]
    head = b"OggS" + struct.pack("<BBqIII", 0, 0, 0, 1, seq, 0) + bytes([len(lacing)]) + bytes(lacing)
    return head + b"".join(packets)


def test_ogg_payload_excludes_page_headers_and_stream_headers():
    head, tags = b"OpusHead" + bytes(11), b"OpusTags" + bytes(600)  # tags span 3 segments
    audio_packets = [bytes(40), bytes(255), bytes(300)]
    data = _ogg_page([head], 0) + _ogg_page([tags], 1) + _ogg_page(audio_packets, 2)
    payload, overhead = ogg_payload_bytes(data)
    assert payload == 40 + 255 + 300
    assert payload + overhead == len(data)
    with pytest.raises(ValueError):
        ogg_payload_bytes(data[:-5])
    with pytest.raises(ValueError):
        ogg_payload_bytes(b"RIFF" + data[4:])


def test_identity_round_trip_is_exact(speech, tmp_path):
    coded = Identity().code(Path("unused"), speech, tmp_path)
    np.testing.assert_array_equal(coded.audio, speech)
    assert coded.bits == 8 * (44 + 2 * len(speech)) and coded.payload_bits is None


def test_absent_programs_give_a_notice_not_a_failure(monkeypatch, tmp_path, dev_rows):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing runnable
    baselines.ffmpeg_encoders.cache_clear()
    try:
        assert Opus("6").missing() and Codec2("1200").missing() and baselines.G722().missing()
        res = evaluate(None, dev_rows[:1], baselines="identity,opus:12,codec2:1200", progress=False)
    finally:
        baselines.ffmpeg_encoders.cache_clear()
    assert [s["name"] for s in res["systems"]] == ["identity"]
    assert {s["name"] for s in res["skipped"]} == {"opus:12", "codec2:1200"}
    assert any("opus-tools" in n for n in res["notices"])
    assert res["systems"][0]["aggregate"]["pesq_wb"]["mean"] > 4.6


@pytest.mark.skipif(not HAVE_OPUS, reason="opusenc/opusdec and ffmpeg-libopus not installed")
def test_opus_12k_on_real_speech(speech, tmp_path):
    coded = Opus("12").code(Path("unused"), speech, tmp_path)
    seconds = len(speech) / 16000
    assert 9.0 < coded.payload_bits / seconds / 1000 < 15.0
    assert coded.payload_bits < coded.bits
    s = score(speech, coded.audio)
    assert s["pesq_wb"] > 3.0 and s["stoi"] > 0.9 and abs(s["delay_ms"]) < 5


@pytest.mark.skipif(not HAVE_OPUS or shutil.which("ffmpeg") is None, reason="ffmpeg with libopus not installed")
def test_opus_through_ffmpeg(monkeypatch, speech, tmp_path):
    monkeypatch.setattr(Opus, "tool", lambda self: "ffmpeg")
    if "libopus" not in baselines.ffmpeg_encoders():
        pytest.skip("ffmpeg lacks libopus")
    coded = Opus("12").code(Path("unused"), speech, tmp_path)
    assert score(speech, coded.audio)["pesq_wb"] > 3.0


@pytest.mark.skipif(not HAVE_CODEC2, reason="c2enc/c2dec not installed")
def test_codec2_1200_bitrate_from_file_size(speech, tmp_path):
    coded = Codec2("1200").code(Path("unused"), speech, tmp_path)
    assert coded.bits / (len(speech) / 16000) == pytest.approx(1200, rel=0.03)
    s = score(speech, coded.audio)
    assert 1.0 < s["pesq_wb"] < 2.5 and s["stoi"] > 0.6
