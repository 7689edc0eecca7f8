"""The methods compared on a few-shot task, each scored on the task's queries:

    teacher   the specialised teacher itself (prototype head on the supports)
    RECIPE    a student trained by the pipeline (`tint.pipeline`): "supports", "tint",
              "base+tint@pretrained", ... (see `tint.pipeline.recipe`)

A task's work lives in one folder: its supports as PNG, the specialisation shared by the
generated sources, their images, and one result file per finished method, so a method (or a
resumed run) never redoes what is on disk."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tint.data.tasks import Task
from tint.errors import TintError
from tint.io import stages
from tint.io.storage import read_json, write_json
from tint.pipeline.recipe import SYNTAX, Recipe, parse_recipe
from tint.pipeline.students import Pipeline, predictions

TEACHER = "teacher"
METHODS_SYNTAX = f"{TEACHER}, or a student's recipe {SYNTAX}"


@dataclass(frozen=True)
class Method:
    """A method's name and, for a student, its recipe (None: the teacher)."""

    name: str
    recipe: Recipe | None


def check_methods(names: list[str]) -> list[Method]:
    """The methods of `names`, parsed; raises on a bad or repeated name."""
    if not names:
        raise TintError(f"no method given (a method is {METHODS_SYNTAX})")
    if len(set(names)) != len(names):
        raise TintError(f"a method is listed twice: {', '.join(names)}")
    return [Method(n, None if n == TEACHER else parse_recipe(n)) for n in names]


def result_file(folder: Path, method: str) -> Path:
    """Where a task's folder keeps one method's counts."""
    return folder / "results" / f"{method.replace(':', '-')}.json"


def finished_results(folder: str | Path, methods: list[str]) -> dict[str, dict] | None:
    """The counts of a task whose every method is done, read from its folder; else None."""
    paths = {m: result_file(Path(folder), m) for m in methods}
    if not all(p.is_file() for p in paths.values()):
        return None
    return {m: read_json(p) for m, p in paths.items()}


def run_methods(
    pipeline: Pipeline, task: Task, methods: list[Method], folder: str | Path
) -> dict[str, dict]:
    """{method: {"correct", "total", "seconds", "stages", ...}} for each method on `task`, each
    kept in the folder as it finishes and found there again."""
    folder = Path(folder)
    work = pipeline.on(task, folder)
    results = {}
    for method in methods:
        path = result_file(folder, method.name)
        if path.is_file():
            results[method.name] = read_json(path)
            continue
        start = time.perf_counter()
        with stages.recording() as seconds:
            teacher = work.teacher()
            if method.recipe is None:
                classify = teacher.logits
                extra = {"parameters": sum(p.numel() for p in pipeline.backbone.parameters())}
            else:
                trained = work.student(method.recipe)
                classify = trained.student
                extra = {
                    "parameters": classify.num_parameters,
                    "transfer": trained.transfer,
                    "precision": trained.precision,
                }
                init = pipeline.init(method.recipe)
                if trained.base or init != "scratch":
                    extra |= {"base": trained.base, "init": init}
            with stages.stage("scoring"):
                predicted = predictions(classify, task.queries, pipeline.view_size)
        end = time.perf_counter()
        results[method.name] = {
            "correct": int((predicted == task.query_labels).sum()),
            "total": len(task.query_labels),
            "seconds": round(end - start, 2),
            "query_seconds": round(seconds["scoring"], 4),
            "stages": stages.rounded(seconds),
            **extra,
        }
        write_json(path, results[method.name])
    return results
