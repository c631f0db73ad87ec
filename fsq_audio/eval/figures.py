"""Report figures (matplotlib, Agg canvas, no pyplot state): rate-quality plot and spectrograms."""

from __future__ import annotations

import io
import math

import numpy as np

from fsq_audio.eval.metrics import EVAL_SR, log_mel

_DB_PER_NEPER = 20.0 / math.log(10.0)
_FAMILY_STYLE = {
    "fsq": ("tab:red", "o"), "opus": ("tab:blue", "s"), "codec2": ("tab:green", "^"),
    "g722": ("tab:purple", "D"), "identity": ("black", "*"),
}


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def rate_quality_plot(systems: list[dict], metric: str = "pesq_wb", label: str = "PESQ-WB (P.862.2)") -> bytes:
    """PNG of mean `metric` (with 95% CI bars) against real kbit/s, one line per codec family.

    Args:
        systems: the "systems" list of results.json.
    """
    fig = _new_figure(7.5, 4.8)
    ax = fig.add_subplot(1, 1, 1)
    families: dict[str, list[dict]] = {}
    for s in systems:
        families.setdefault(s["family"], []).append(s)
    for family, members in families.items():
        pts = [(m["aggregate"]["kbps"], m["aggregate"][metric]["mean"], m["aggregate"][metric]["ci"], m)
               for m in members if m["aggregate"]["kbps"] and m["aggregate"][metric]["mean"] is not None]
        if not pts:
            continue
        pts.sort(key=lambda p: p[0])
        color, marker = _FAMILY_STYLE.get(family, ("tab:gray", "x"))
        x, y = [p[0] for p in pts], [p[1] for p in pts]
        err = [p[2] or 0.0 for p in pts]
        name = "fsq-audio (ours)" if family == "fsq" else family
        ax.errorbar(x, y, yerr=err, color=color, marker=marker, markersize=8 if family == "fsq" else 6,
                    linewidth=2.2 if family == "fsq" else 1.2, capsize=3, label=name)
        for px, py, _, m in pts:
            ax.annotate(m["setting"] or m["family"], (px, py), textcoords="offset points", xytext=(5, -11),
                        fontsize=8, color=color)
    ax.set_xscale("log")
    ax.set_xlabel("real bitrate (kbit/s, from file sizes; log scale)")
    ax.set_ylabel(label)
    ax.set_ylim(1.0, 4.75)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    ax.set_title(f"{label} vs bitrate")
    return _png(fig)


def spectrogram_panel(ref: np.ndarray, decoded: list[tuple[str, np.ndarray]], title: str) -> bytes:
    """PNG of log-mel spectrograms stacked vertically: reference first, then each system.

    Args:
        ref: reference at EVAL_SR, shape (T,).
        decoded: (label, aligned signal (T,)) pairs.
        title: figure title (utterance id).
    """
    panels = [("reference", ref), *decoded]
    fig = _new_figure(10.0, 2.1 * len(panels))
    specs = [log_mel(x) * _DB_PER_NEPER for _, x in panels]
    vmax = float(specs[0].max())
    duration = len(ref) / EVAL_SR
    for k, ((name, _), spec) in enumerate(zip(panels, specs)):
        ax = fig.add_subplot(len(panels), 1, k + 1)
        im = ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=vmax - 80.0, vmax=vmax,
                       extent=(0.0, duration, 0, spec.shape[0]), interpolation="nearest")
        ax.set_ylabel("mel band")
        ax.set_title(name, fontsize=10, loc="left")
        if k < len(panels) - 1:
            ax.set_xticklabels([])
    ax.set_xlabel("time (s)")
    fig.colorbar(im, ax=fig.axes, shrink=0.6, label="dB")
    fig.suptitle(title, fontsize=11)
    return _png(fig)
