"""report.md and a self-contained report.html from evaluation results.

The HTML embeds its figures (PNG) and example audio (16-bit FLAC) as base64 data URIs, so
it can be mailed or archived as one file. The Markdown links the same figures and audio,
written to figures/ and audio/ beside it.
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path

import numpy as np

from fsq_audio.eval import figures
from fsq_audio.eval.metrics import EVAL_SR
from fsq_audio.fileio import atomic_write_bytes, atomic_write_text

#: (key in aggregate, column title, decimals)
COLUMNS = (
    ("kbps", "real kbps", 2), ("kbps_payload", "kbps w/o container", 2), ("pesq_wb", "PESQ-WB", 3),
    ("pesq_nb", "PESQ-NB", 3), ("stoi", "STOI", 3), ("estoi", "ESTOI", 3), ("si_sdr", "SI-SDR dB", 2),
    ("mel_l1", "mel-L1", 3), ("delay_ms", "delay ms", 2), ("rtf_encode", "RTF enc", 4),
    ("rtf_decode", "RTF dec", 4),
)


def _fmt(value, decimals: int, ci: bool = False) -> str:
    if isinstance(value, dict):
        if value.get("mean") is None:
            return "-"
        text = f"{value['mean']:.{decimals}f}"
        if ci and value.get("ci") is not None:
            text += f" ± {value['ci']:.{decimals}f}"
        return text
    return "-" if value is None else f"{value:.{decimals}f}"


def table_rows(results: dict, ci: bool = True) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the metrics table (one row per system)."""
    header = ["system", "setting", *[title for _, title, _ in COLUMNS], "files ok/failed"]
    rows = []
    for s in results["systems"]:
        agg = s["aggregate"]
        setting = f"{s['stages']} stage(s)" if s["family"] == "fsq" else (s["setting"] or "-")
        cells = [_fmt(agg.get(key), d, ci) for key, _, d in COLUMNS]
        rows.append([s["family"], setting, *cells, f"{agg['n_ok']}/{agg['n_failed']}"])
    return header, rows


def markdown_table(results: dict, ci: bool = True) -> str:
    """The metrics table as GitHub Markdown (means ± 95% CI half-widths)."""
    header, rows = table_rows(results, ci)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def token_rows(results: dict) -> list[list[str]]:
    """Rows of the token-statistics table of our codec (one per stage count)."""
    rows = []
    for s in results["systems"]:
        t = s.get("tokens")
        if not t:
            continue
        util = ", ".join(f"{u:.3f}" for u in t["utilisation"])
        ent = ", ".join(f"{e:.2f}" for e in t["entropy_bits"])
        rows.append([s["name"], str(t["frames"]), util, ent, f"{t['entropy_bits_per_frame']:.2f}",
                     str(t["fixed_bits_per_frame"]), f"{t['entropy_kbps']:.3f}"])
    return rows


TOKEN_HEADER = ["system", "frames", "codebook utilisation per stage", "entropy bits per stage",
                "entropy bits/frame", "fixed bits/frame", "entropy-coded kbps bound"]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def _flac_bytes(x: np.ndarray) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1.0, 1.0), EVAL_SR, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def _panel_systems(results: dict, available: list[str]) -> list[str]:
    """Systems shown beside the reference: our largest stage count and the nearest-rate baseline."""
    by_name = {s["name"]: s for s in results["systems"] if s["name"] in available}
    ours = [s for s in by_name.values() if s["family"] == "fsq"]
    others = [s for s in by_name.values() if s["family"] not in ("fsq", "identity")]
    if not ours:
        first_of_family: dict[str, str] = {}
        for s in others:
            first_of_family.setdefault(s["family"], s["name"])
        return list(first_of_family.values())[:2] or list(by_name)[:1]
    best = max(ours, key=lambda s: s["stages"])
    if not others:
        return [best["name"]]
    rate = best["aggregate"]["kbps"] or 0.0
    near = min(others, key=lambda s: abs(np.log((s["aggregate"]["kbps"] or 1e-3) / max(rate, 1e-3))))
    return [best["name"], near["name"]]


def write_report(results: dict, examples: list, out_dir: Path) -> None:
    """Write report.md, report.html, figures/*.png and audio/*.flac into `out_dir`.

    Args:
        results: the dict `runner.evaluate` returns.
        examples: `runner.Example` objects (reference and aligned decoded audio).
    """
    images: dict[str, bytes] = {"figures/rate_pesq_wb.png": figures.rate_quality_plot(results["systems"])}
    sounds: dict[str, list[tuple[str, str, bytes]]] = {}
    for ex in examples:
        shown = _panel_systems(results, list(ex.decoded))
        png = figures.spectrogram_panel(ex.ref, [(n, ex.decoded[n]) for n in shown], ex.id)
        images[f"figures/spec_{_slug(ex.id)}.png"] = png
        clips = [("reference", f"audio/{_slug(ex.id)}_reference.flac", _flac_bytes(ex.ref))]
        clips += [(n, f"audio/{_slug(ex.id)}_{_slug(n)}.flac", _flac_bytes(x)) for n, x in ex.decoded.items()]
        sounds[ex.id] = clips
    for rel, data in images.items():
        atomic_write_bytes(out_dir / rel, data)
    for clips in sounds.values():
        for _, rel, data in clips:
            atomic_write_bytes(out_dir / rel, data)
    atomic_write_text(out_dir / "report.md", render_markdown(results, list(images), sounds))
    atomic_write_text(out_dir / "report.html", render_html(results, images, sounds))


def _intro_lines(results: dict) -> list[str]:
    model = results.get("model")
    lines = [
        f"- data: `{results['data']}` ({results['n_utterances']} files), "
        f"metrics at {results['eval_sample_rate']} Hz mono",
        f"- model: `{model['model_id']}` ({model['num_stages']} stages, codebook {model['codebook_size']}, "
        f"{model['frame_rate']:g} frames/s)" if model else "- model: none (baselines only)",
        f"- fsq_audio {results['fsq_audio_version']}; values are means ± 95% CI half-widths over files; "
        "bitrates are total bits / total seconds from real file sizes; decoded audio aligned by a constant "
        "delay search within ±50 ms",
    ]
    return lines + [f"- notice: {n}" for n in results["notices"]]


def _failure_lines(results: dict) -> list[str]:
    out = []
    for u in results["utterances"]:
        if u.get("error"):
            out.append(f"{u['id']}: {u['error']}")
        for name, r in u["systems"].items():
            if r.get("error"):
                out.append(f"{u['id']} / {name}: {r['error']}")
            for metric, reason in (r.get("metric_errors") or {}).items():
                out.append(f"{u['id']} / {name} / {metric}: {reason}")
    return out


def render_markdown(results: dict, image_paths: list[str], sounds: dict) -> str:
    """report.md text; images and audio are linked relative to the report."""
    parts = ["# fsq-audio evaluation", "", *_intro_lines(results), "", "## Metrics", "", markdown_table(results), ""]
    if token_rows(results):
        parts += ["## Tokens", "", "| " + " | ".join(TOKEN_HEADER) + " |", "|" + "---|" * len(TOKEN_HEADER)]
        parts += ["| " + " | ".join(r) + " |" for r in token_rows(results)] + [""]
    parts += ["## Rate vs quality", "", f"![PESQ-WB vs bitrate]({image_paths[0]})", ""]
    if sounds:
        parts += ["## Examples", ""]
        for uid, clips in sounds.items():
            parts += [f"### {uid}", "", f"![spectrograms](figures/spec_{_slug(uid)}.png)", ""]
            parts += [" · ".join(f"[{name}]({rel})" for name, rel, _ in clips), ""]
    failures = _failure_lines(results)
    if failures:
        parts += ["## Failures", ""] + [f"- {f}" for f in failures] + [""]
    return "\n".join(parts)


_CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;font-size:12px;margin:8px 0 20px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f0f0f0;white-space:normal;vertical-align:bottom}.wide{overflow-x:auto}
td:first-child,td:nth-child(2){text-align:left}tr.ours td{background:#fff2f0;font-weight:600}
img{max-width:100%;border:1px solid #ddd}audio{height:32px;width:250px}.muted{color:#666;font-size:13px}
.clips{display:flex;flex-wrap:wrap;gap:6px 14px;margin:8px 0 24px}.clip{font-size:13px}.clip div{margin-bottom:2px}"""


def _html_table(header: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for k, row in enumerate(rows):
        cls = f' class="{classes[k]}"' if classes and classes[k] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    return f"<div class='wide'><table><tr>{head}</tr>{''.join(body)}</table></div>"


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _per_utterance_table(results: dict) -> str:
    names = [s["name"] for s in results["systems"]]
    rows = []
    for u in results["utterances"]:
        cells = [u["id"]]
        for n in names:
            r = u["systems"].get(n, {})
            v = r.get("pesq_wb")
            cells.append("error" if r.get("error") or u.get("error") else ("-" if v is None else f"{v:.3f}"))
        rows.append(cells)
    return _html_table(["utterance", *names], rows)


def render_html(results: dict, images: dict[str, bytes], sounds: dict) -> str:
    """report.html text, self-contained (figures and audio as base64 data URIs)."""
    header, rows = table_rows(results)
    classes = ["ours" if s["family"] == "fsq" else "" for s in results["systems"]]
    intro = "".join(f"<li>{html.escape(line[2:].replace('`', ''))}</li>" for line in _intro_lines(results))
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>fsq-audio evaluation</title>",
           f"<style>{_CSS}</style></head><body><h1>fsq-audio evaluation</h1><ul class='muted'>{intro}</ul>",
           "<h2>Metrics</h2>", _html_table(header, rows, classes)]
    if token_rows(results):
        out += ["<h2>Tokens</h2>", _html_table(TOKEN_HEADER, token_rows(results))]
    plot = images["figures/rate_pesq_wb.png"]
    out += ["<h2>Rate vs quality</h2>", f"<img alt='PESQ-WB vs bitrate' src='{_data_uri('image/png', plot)}'>"]
    if sounds:
        out.append("<h2>Examples</h2>")
    for uid, clips in sounds.items():
        png = images[f"figures/spec_{_slug(uid)}.png"]
        out += [f"<h3>{html.escape(uid)}</h3>", f"<img alt='spectrograms' src='{_data_uri('image/png', png)}'>",
                "<div class='clips'>" + "".join(
                    f"<div class='clip'><div>{html.escape(name)}</div><audio controls preload='metadata' "
                    f"src='{_data_uri('audio/flac', data)}'></audio></div>" for name, _, data in clips) + "</div>"]
    out += ["<h2>Per utterance (PESQ-WB)</h2><details><summary>show</summary>", _per_utterance_table(results),
            "</details>"]
    failures = _failure_lines(results)
    if failures:
        out += ["<h2>Failures</h2><ul>"] + [f"<li>{html.escape(f)}</li>" for f in failures] + ["</ul>"]
    out.append("</body></html>")
    return "\n".join(out)
