"""`tint curve`: accuracy against one setting, from benchmark runs that differ in it alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tint.commands import Command, Options
from tint.config import setting


@dataclass
class CurveSettings:
    runs: list[str] = setting(
        factory=list, help="comma-separated benchmark run folders, one value of --x each"
    )
    x: str | None = setting(
        None, "the setting that varies, dotted as in run.json (setup.generation.num)"
    )
    methods: list[str] = setting(
        factory=list, help="comma-separated methods to draw (default: every one in all runs)"
    )
    out: str | None = setting(None, "output directory: curve.json, curve.png, report.html")


def run(settings: CurveSettings, options: Options) -> None:
    from tint.eval.curve import plot, read_curve, table_rows
    from tint.io.report import picture, table, write_report
    from tint.io.storage import write_json, write_png

    curve = read_curve(settings.runs, settings.x, settings.methods or None)
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    image = plot(curve)
    write_json(out / "curve.json", curve)
    write_png(out / "curve.png", image)
    headers = ["method", "value", "accuracy (95% interval)", "minus the previous value"]
    rows = table_rows(curve)
    write_report(
        out / "report.html",
        f"accuracy against {curve['x']}",
        [
            ("Curve", picture(image, f"{curve['episodes']} episodes in every run")),
            ("Table", table(headers, [[c.strip("`") for c in r] for r in rows])),
        ],
    )
    print(f"{curve['x']}, {curve['episodes']} episodes in every run")
    for line in [headers, ["---"] * 4, *rows]:
        print(f"| {' | '.join(line)} |")
    print(f"wrote {out}/curve.json, curve.png, report.html")


COMMAND = Command(
    name="curve",
    help="accuracy against one setting, from benchmark runs that differ in it alone",
    description="Read benchmark runs that share their episodes and every setting but --x "
    "(images per class, the students' steps, ...) and give each method's accuracy at each "
    "value, with its 95% interval and its paired difference to the previous value over the "
    "episodes every run finished. Writes OUT/curve.json, OUT/curve.png and OUT/report.html, "
    "and prints the table.",
    settings=CurveSettings,
    base=CurveSettings,
    run=run,
    options=(),
    required=("runs", "x", "out"),
)
