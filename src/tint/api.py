"""tint from Python: the recipe of `tint distill` as one call, and its student back.

    report = tint.distill("my-classes", "my-student", eval="held-out", num=20)
    student = tint.load_student("my-student")
    student.predict(images)  # -> class names

Settings are `tint distill`'s flags with underscores (`distill_steps=200`, `student_init=
"scratch"`, `method="tint+retrieval"`); the defaults are the command's."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def distill(
    supports: str | Path | Mapping,
    out: str | Path,
    eval: str | Path | Mapping | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    **settings,
) -> dict:
    """Distil a student for the classes of `supports` into `out` (see `tint distill`).

    Args:
        supports: a folder of class folders, or {class name: images} (PIL images or uint8
            arrays, classes in the mapping's order).
        out: the run folder: student.safetensors, student.onnx, report.json, ...
        eval: held-out images to score the student and the teacher on: class folders, or
            {class name: images}.
        resume: continue a run in `out`.
        progress: progress bars (one line per stage where stderr is not a terminal).
        settings: `tint distill`'s settings by their flag names, with underscores.
    Returns:
        The report: classes, method, student, held-out accuracies (with `eval`), seconds per
        stage, and `out`.
    """
    from tint.commands.distill import distill_run
    from tint.config import leaves, load
    from tint.errors import TintError
    from tint.pipeline.distill import DistillSettings

    paths = {name.replace("-", "_"): dotted for dotted, name, _, _ in leaves(DistillSettings)}
    unknown = sorted(set(settings) - set(paths))
    if unknown:
        raise TintError(f"unknown setting {unknown[0]!r} (tint distill --help lists them)")
    given = {paths[k]: v for k, v in settings.items()}
    mapping = isinstance(supports, Mapping)
    given |= {"out": str(out), "support_dir": None if mapping else str(supports)}
    if eval is not None and not isinstance(eval, Mapping):
        given["eval"] = str(eval)
    config, _ = load(DistillSettings, DistillSettings(), given)
    return distill_run(
        config,
        supports if mapping else None,
        eval if isinstance(eval, Mapping) else None,
        resume=resume,
        progress=progress,
    )
