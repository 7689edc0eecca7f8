"""The figures of reports and docs, drawn with matplotlib: accuracy per method with its interval,
paired differences as a forest plot, and curves against a setting. Each is a PIL image (for an
inline PNG in a report) or a file; labels are never clipped (the figure grows to hold them)."""

from __future__ import annotations

import io

from PIL import Image

# What a setting is called on an axis.
AXES = {
    "setup.generation.num": "images per class",
    "setup.distill.steps": "student steps",
    "setup.retrieval_num": "retrieved images per class",
    "setup.distill.base_batch": "base images per step",
    "base_pool": "base-pool images",
    "shots": "supports per class",
}
FONT = 11


def _figure(height_rows: int, width: float = 7.5):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": FONT})
    return plt.subplots(figsize=(width, max(2.2, 0.42 * height_rows + 1.2)))


def _image(figure) -> Image.Image:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def accuracy_figure(
    labels: list[str],
    accuracies: list[float],
    intervals: list[tuple[float, float] | None] | None = None,
    title: str = "",
) -> Image.Image:
    """Horizontal bars of accuracy (0 to 1), one per method, top to bottom in the given order,
    with a 95% interval whisker where given."""
    figure, axes = _figure(len(labels))
    rows = list(range(len(labels)))[::-1]
    axes.barh(rows, accuracies, color="#4a7ebb", height=0.6)
    for row, interval in zip(rows, intervals or []):
        if interval is not None:
            axes.plot(interval, [row, row], color="#222", linewidth=1.5)
    for row, value in zip(rows, accuracies):
        axes.text(value + 0.01, row + 0.22, f"{value:.1%}", fontsize=FONT - 1)
    axes.set_yticks(rows, labels)
    axes.set_xlim(0, 1.08)
    axes.set_xlabel("accuracy (95% interval)")
    axes.set_title(title)
    axes.spines[["top", "right"]].set_visible(False)
    return _image(figure)


def forest_figure(
    labels: list[str], means: list[float], intervals: list[tuple[float, float]], title: str = ""
) -> Image.Image:
    """Paired differences in points (mean and 95% interval, one row each) against zero."""
    figure, axes = _figure(len(labels))
    rows = list(range(len(labels)))[::-1]
    for row, mean, (lo, hi) in zip(rows, means, intervals):
        colour = "#2a7d2a" if lo > 0 else "#b03a2e" if hi < 0 else "#555"
        axes.plot([lo * 100, hi * 100], [row, row], color=colour, linewidth=2)
        axes.plot([mean * 100], [row], "o", color=colour)
    axes.axvline(0, color="#888", linewidth=1)
    axes.set_yticks(rows, labels)
    axes.set_xlabel("paired difference, points (95% interval)")
    axes.set_title(title)
    axes.spines[["top", "right"]].set_visible(False)
    return _image(figure)


def curve_figure(curve: dict) -> Image.Image:
    """Accuracy against a setting, one line per method with its intervals; the x axis is
    logarithmic where every value is positive, named in words, the legend beside the plot."""
    figure, axes = _figure(8, width=8.5)
    values = [p["value"] for p in curve["points"]]
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    where = values if numbers else list(range(len(values)))
    for m in curve["methods"]:
        accuracy = [p["methods"][m]["accuracy"] for p in curve["points"]]
        low = [a - p["methods"][m]["ci95"][0] for a, p in zip(accuracy, curve["points"])]
        high = [p["methods"][m]["ci95"][1] - a for a, p in zip(accuracy, curve["points"])]
        axes.errorbar(where, accuracy, yerr=[low, high], marker="o", capsize=3, label=m)
    if numbers and all(v > 0 for v in values):
        axes.set_xscale("log")
    axes.set_xticks(where, [str(v) for v in values])
    axes.minorticks_off()
    axes.set_xlabel(AXES.get(curve["x"], curve["x"].rsplit(".", 1)[-1].replace("_", " ")))
    axes.set_ylabel("accuracy (95% interval)")
    axes.set_ylim(0, 1)
    axes.set_title(f"{curve['episodes']} episodes in every run")
    axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    return _image(figure)
