"""`tint sources`: what each source's images are to the teacher, over a benchmark's episodes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tint.commands import Command, Options
from tint.config import setting

DEFAULT_SOURCES = ["tint", "retrieval", "supports"]


@dataclass
class SourcesSettings:
    run: str | None = setting(None, "a benchmark run's folder", positional=True)
    sources: list[str] = setting(
        factory=lambda: list(DEFAULT_SOURCES),
        help="comma-separated sources to measure: tint (tint:A), ti, augment, retrieval, "
        "supports; the first is the one the others are paired with",
    )
    episodes: int | None = setting(
        None, "measure the first N finished episodes (default: all)", minimum=2
    )


def run(settings: SourcesSettings, options: Options) -> None:
    from tint.commands.world import DEFAULT_MODEL, DEFAULT_TEACHER
    from tint.data.datasets import absolute_spec
    from tint.diffusion.model import DiffusionModel
    from tint.eval.source_measures import check_sources, measure_run, run_settings, table_lines
    from tint.io.storage import read_json_object, write_json
    from tint.models.teachers import load_backbone
    from tint.pipeline.students import Pipeline
    from tint.sources.base_pool import BasePool

    names = check_sources(settings.sources)
    folder = Path(settings.run)
    run_json = read_json_object(folder / "run.json", "run settings")
    recipe_settings = run_settings(run_json, str(folder / "run.json"))
    backbone = load_backbone(run_json.get("teacher") or DEFAULT_TEACHER)
    model_dir = run_json.get("model") or DEFAULT_MODEL
    base_pool = None
    if "retrieval" in names:
        spec = absolute_spec(run_json["dataset"])
        base_pool = BasePool.from_split(
            spec, run_json["base_pool"], backbone, progress=not options.quiet
        )
    pipeline = Pipeline(
        recipe_settings,
        backbone,
        lambda: DiffusionModel.load(model_dir, "cpu"),
        base_pool,
        progress=False,
    )
    measured = measure_run(folder, names, pipeline, settings.episodes, progress=not options.quiet)
    write_json(folder / "sources.json", measured)
    if options.json:
        print(json.dumps({k: measured[k] for k in ("sources", "summary", "paired")}, indent=2))
        return
    print(f"{len(measured['episodes'])} episodes of {folder}")
    for line in table_lines(measured):
        print(line)
    print(f"wrote {folder}/sources.json")


COMMAND = Command(
    name="sources",
    help="what each source's images are to the teacher, over a benchmark's episodes",
    description="For each finished episode of a benchmark run, measure every source's images "
    "for the task in the task teacher's features against the episode's queries: how often the "
    "teacher's top class is the class an image is for, its confidence, how near the images "
    "come to the queries of their class, how well they classify the queries as nearest "
    "neighbours, and how varied they are in the teacher's features and in pixels. Means over "
    "episodes with 95% intervals, and every source paired with the first. Generated images "
    "are read from the run's episode folders (made there where missing); retrieved ones are "
    "mined again. Writes RUN/sources.json and prints a table.",
    settings=SourcesSettings,
    base=SourcesSettings,
    run=run,
    options=("quiet", "json", "threads"),
    required=("run",),
)
