"""Read lhotse manifests (recordings / supervisions, JSON lines, optionally gzipped).

No dependency on the lhotse package: only the on-disk format is read. A recording row
looks like ``{"id", "sources": [{"type": "file", "channels": [0], "source": PATH}],
"sampling_rate", "num_samples", "duration", "channel_ids"}``; a supervision row like
``{"id", "recording_id", "start", "duration", "channel", "text", "speaker", ...}``.
Each recording becomes one manifest row; its supervisions give ``speaker`` (when they
agree) and ``text`` (joined in time order).
"""

from __future__ import annotations

import gzip
import json
import os
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from fsq_audio.errors import ConfigError


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Rows of a JSON-lines file, gzipped when its name ends in .gz."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
    except (OSError, EOFError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None


def _resolve(source: str, manifest: Path) -> str:
    """lhotse paths are absolute or relative to where it ran; try the cwd, then the manifest's folder."""
    p = Path(source)
    if p.is_absolute() or p.exists():
        return str(p.resolve())
    return str((manifest.parent / p).resolve())


def recording_row(rec: dict, manifest: Path) -> dict:
    """Manifest row of one lhotse recording.

    Raises:
        ValueError: the recording is not one plain file (urls, commands, in-memory audio,
            several sources, or transforms such as speed perturbation).
    """
    sources = rec.get("sources") or []
    if len(sources) != 1 or sources[0].get("type") != "file":
        kinds = ",".join(str(s.get("type")) for s in sources) or "none"
        raise ValueError(f"needs exactly one 'file' source, has {len(sources)} ({kinds})")
    if rec.get("transforms"):
        raise ValueError("has transforms (e.g. speed perturbation), which are not applied here")
    rate = int(rec["sampling_rate"])
    duration = float(rec.get("duration") or int(rec["num_samples"]) / rate)
    return {
        "id": str(rec["id"]),
        "path": _resolve(sources[0]["source"], manifest),
        "duration": round(duration, 4),
        "sample_rate": rate,
        "channels": len(rec.get("channel_ids") or sources[0].get("channels") or [0]),
    }


def _supervision_fields(sups: list[dict]) -> dict:
    """speaker (when all supervisions agree) and text (in time order) of one recording."""
    sups = sorted(sups, key=lambda s: float(s.get("start", 0.0)))
    out: dict = {}
    speakers = {s.get("speaker") for s in sups}
    if len(speakers) == 1 and None not in speakers:
        out["speaker"] = str(speakers.pop())
    texts = [s["text"].strip() for s in sups if s.get("text")]
    if texts:
        out["text"] = " ".join(texts)
    return out


def read_lhotse(
    recordings: str | os.PathLike, supervisions: str | os.PathLike | None = None
) -> tuple[list[dict], list[tuple[str, str]]]:
    """Manifest rows from lhotse manifests.

    Args:
        recordings: ``*recordings*.jsonl[.gz]``.
        supervisions: ``*supervisions*.jsonl[.gz]``; when None, the sibling file whose
            name has ``supervisions`` for ``recordings`` is used if it exists.

    Returns:
        (rows, skipped): rows in file order, and (recording id, reason) for recordings
        that cannot be expressed as one plain audio file.
    """
    recordings = Path(recordings)
    if supervisions is None and "recordings" in recordings.name:
        sibling = recordings.with_name(recordings.name.replace("recordings", "supervisions"))
        supervisions = sibling if sibling.exists() else None
    by_rec: dict[str, list[dict]] = defaultdict(list)
    if supervisions is not None:
        for sup in iter_jsonl(supervisions):
            by_rec[str(sup.get("recording_id"))].append(sup)
    rows, skipped = [], []
    for rec in iter_jsonl(recordings):
        if "sources" not in rec:
            raise ConfigError(f"{recordings}: not a lhotse recordings manifest (row without 'sources')")
        try:
            row = recording_row(rec, recordings)
        except (ValueError, KeyError, TypeError) as exc:
            skipped.append((str(rec.get("id")), str(exc)))
            continue
        row.update(_supervision_fields(by_rec.get(row["id"], [])))
        rows.append(row)
    return rows, skipped
