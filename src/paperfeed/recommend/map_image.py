"""The map as a picture: every paper a dot at its 2-D position, coloured by its main topic,
the largest topics named at the middle of their dots, a user's liked papers ringed.

Also :func:`map_points`, the same data as typed points, for the interactive web page.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paperfeed.errors import PaperfeedError
from paperfeed.recommend.projection import MAP_EXTRA
from paperfeed.store import Store
from paperfeed.store.recommend import MapLayout

COLOURED_TOPICS = 20  # the most frequent main topics get a colour; the rest are grey
LABELLED_TOPICS = 12  # of those, the largest are named on the map (more would overlap)
OTHER = "other"
OTHER_COLOUR = "#c8c8c8"
# matplotlib's "tab20", so that the picture and the web page colour a topic alike.
PALETTE = (
    "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
    "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7",
    "#bcbd22", "#dbdb8d", "#17becf", "#9edae5",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class MapPoint:
    paper_id: str
    title: str
    x: float
    y: float
    topic: str  # the main topic's name, or "other"
    liked: bool


def main_topics(store: Store, keys: Sequence[int], *, user_id: int | None = None) -> list[str]:
    """Each paper's best-scoring topic name (machine-learning topics before arXiv ones)."""
    from paperfeed.recommend.topics import ML_GROUP, topic_labels

    labels = topic_labels(store, list(keys), user_id=user_id)
    out = []
    for k in keys:
        chips = labels.get(int(k), [])
        ml = [c for c in chips if c.group == ML_GROUP]
        pick = (ml or chips)[:1]
        out.append(pick[0].name if pick else OTHER)
    return out


def map_points(
    store: Store,
    layout: MapLayout,
    *,
    liked: Sequence[int] = (),
    user_id: int | None = None,
) -> list[MapPoint]:
    keys = [int(k) for k in layout.keys]
    papers = store.papers_by_pk(keys)
    topics = main_topics(store, keys, user_id=user_id)
    liked_set = set(liked)
    return [
        MapPoint(
            paper_id=papers[k].id,
            title=papers[k].title,
            x=float(layout.xy[i, 0]),
            y=float(layout.xy[i, 1]),
            topic=topics[i],
            liked=k in liked_set,
        )
        for i, k in enumerate(keys)
        if k in papers
    ]


def coloured_topics(points: Sequence[MapPoint]) -> list[tuple[str, int, str]]:
    """The topics that get a colour: (name, papers, colour), most frequent first."""
    counts = Counter(p.topic for p in points if p.topic != OTHER)
    return [
        (t, n, PALETTE[i % len(PALETTE)])
        for i, (t, n) in enumerate(counts.most_common(COLOURED_TOPICS))
    ]


def render_png(
    points: Sequence[MapPoint],
    out: Path,
    *,
    title: str = "paperfeed map",
    size_inches: float = 12.0,
    dpi: int = 120,
) -> dict[str, int]:
    """Draw the map into ``out`` (written atomically); returns the papers per coloured topic."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import patheffects
    except ImportError as exc:
        raise PaperfeedError(f"the map picture needs matplotlib: {MAP_EXTRA}") from exc
    if not points:
        raise PaperfeedError("the map is empty: embed papers first ('paperfeed index')")
    legend = coloured_topics(points)
    counts = {t: n for t, n, _ in legend}
    coloured = [t for t, _, _ in legend]
    colour_of = {t: colour for t, _, colour in legend}
    xy = np.asarray([(p.x, p.y) for p in points], dtype=np.float32)
    n = len(points)
    dot = float(np.clip(4000.0 / n, 1.0, 30.0))
    fig, ax = plt.subplots(figsize=(size_inches, size_inches), dpi=dpi)
    try:
        grey = [i for i, p in enumerate(points) if p.topic not in colour_of]
        if grey:
            ax.scatter(xy[grey, 0], xy[grey, 1], s=dot, c=OTHER_COLOUR, linewidths=0, label=OTHER)
        for t in coloured:
            rows = [i for i, p in enumerate(points) if p.topic == t]
            ax.scatter(
                xy[rows, 0],
                xy[rows, 1],
                s=dot,
                color=colour_of[t],
                linewidths=0,
                label=f"{t} ({len(rows)})",
            )
        for t in coloured[:LABELLED_TOPICS]:
            rows = [i for i, p in enumerate(points) if p.topic == t]
            if len(rows) < 3:
                continue
            cx, cy = np.median(xy[rows], axis=0)
            ax.text(
                float(cx),
                float(cy),
                t,
                fontsize=9,
                ha="center",
                va="center",
                weight="bold",
                path_effects=[patheffects.withStroke(linewidth=3, foreground="white")],
            )
        liked = [i for i, p in enumerate(points) if p.liked]
        if liked:
            ax.scatter(
                xy[liked, 0],
                xy[liked, 1],
                s=max(40.0, dot * 6),
                facecolors="none",
                edgecolors="black",
                linewidths=1.5,
                label=f"liked ({len(liked)})",
            )
        ax.set_title(f"{title} — {n} papers, coloured by main topic")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
            frameon=False,
            markerscale=max(1.0, 30.0 / dot) ** 0.5,
        )
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".map-", suffix=".png", dir=out.parent)
        os.close(fd)
        try:
            fig.savefig(tmp, format="png")
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    finally:
        plt.close(fig)
    return {t: counts[t] for t in coloured}
