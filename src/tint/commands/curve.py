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
    leave_runs: bool = setting(
        False, "do not add the curve to each run's report.html (RUN/curves/X-VALUES.json)"
    )


def run(settings: CurveSettings, options: Options) -> None:
    from tint.eval.benchmark import rewrite_report
    from tint.eval.curve import (
        FOLDER,
        HEADERS,
        curve_name,
        read_curve,
        section,
        table_rows,
    )
    from tint.io.figures import curve_figure
    from tint.io.report import write_report
    from tint.io.storage import write_json, write_png

    curve = read_curve(settings.runs, settings.x, settings.methods or None)
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "curve.json", curve)
    write_png(out / "curve.png", curve_figure(curve))
    write_report(out / "report.html", f"accuracy against {curve['x']}", [("Curve", section(curve))])
    print(f"{curve['x']}, {curve['episodes']} episodes in every run")
    for line in [HEADERS, ["---"] * 4, *table_rows(curve)]:
        print(f"| {' | '.join(line)} |")
    print(f"wrote {out}/curve.json, curve.png, report.html")
    if not settings.leave_runs:
        for run in settings.runs:
            write_json(Path(run) / FOLDER / curve_name(curve), curve)
            rewrite_report(run)
        print(f"added the curve to the report.html of {len(settings.runs)} runs")


COMMAND = Command(
    name="curve",
    help="accuracy against one setting, from benchmark runs that differ in it alone",
    description="Read benchmark runs that share their episodes and every setting but --x "
    "(images per class, the students' steps, ...) and give each method's accuracy at each "
    "value, with its 95% interval and its paired difference to the previous value over the "
    "episodes every run finished. Writes OUT/curve.json, OUT/curve.png and OUT/report.html, "
    "and prints the table. The curve also joins each run's own report.html "
    "(RUN/curves/X-VALUES.json; --leave-runs leaves the runs alone).",
    settings=CurveSettings,
    base=CurveSettings,
    run=run,
    options=(),
    required=("runs", "x", "out"),
)
