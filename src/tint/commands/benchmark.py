"""`tint benchmark`: methods compared over many few-shot episodes, with intervals."""

from __future__ import annotations

from tint.commands import Command, Options
from tint.commands.world import DEFAULT_MODEL, DEFAULT_TEACHER, pretrained_student
from tint.eval.benchmark import BenchmarkSettings, plan_benchmark, run_benchmark
from tint.sources import SOURCES


def run(settings: BenchmarkSettings, options: Options) -> None:
    student = pretrained_student(settings.setup.student.arch, settings.teacher)
    with options.cluster() as cluster:
        # An episode's GPU, on a Ray worker that has one, runs the diffusion model.
        device = "cuda" if cluster is not None and cluster.gpus > 0 else "cpu"
        plan = plan_benchmark(settings, DEFAULT_MODEL, DEFAULT_TEACHER, student, device)
        results = run_benchmark(
            plan, resume=options.resume, progress=not options.quiet, cluster=cluster
        )
    print_benchmark(results, settings.out)


def print_benchmark(results: dict, out: str | None) -> None:
    """The summary of a benchmark's results.json, as `tint benchmark` prints it."""
    run = results["settings"]
    print(f"{len(results['episodes'])} episodes, {run['ways']}-way {run['shots']}-shot")
    width = max([10, *(len(m) for m in results["summary"])])
    for method, s in results["summary"].items():
        ci = s["ci95"]
        interval = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
        print(f"  {method:<{width}} {s['accuracy']:.3f} {interval}")
    width = max([20, *(len(pair) for pair in results["paired"])])
    for pair, d in results["paired"].items():
        ci = d["ci95"]
        print(f"  {pair:<{width}} {d['mean']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]")
    if out is not None:
        print(f"wrote {out}/results.json, results.csv, report.html")


COMMAND = Command(
    name="benchmark",
    help="compare methods over many few-shot episodes, with intervals",
    description="Draw N-way K-shot episodes of a dataset split (episode i depends only on "
    "the seed and i) and run every method on each: the specialised teacher, and students "
    "trained on the supports alone or distilled on the images of sources ("
    + "; ".join(f"{s.name}: {s.help}" for s in SOURCES.values())
    + ") or any combination of them (base+tint), from scratch or from a base-pretrained "
    "network (@pretrained; by default where one exists). Writes "
    "OUT/episodes.json, OUT/results.json, OUT/results.csv, OUT/report.html (accuracy with 95% "
    "intervals, law of total variance, and paired differences between methods) and "
    "OUT/run.json. --resume continues where a run stopped, and extends a finished one with more "
    "episodes or methods.",
    settings=BenchmarkSettings,
    base=BenchmarkSettings,
    run=run,
    options=("resume", "quiet", "threads", "ray", "task_cpus", "task_gpus"),
    task_unit="episode",
    required=("dataset", "out"),
    aliases={
        "--synthetic": "setup.generation.num",
        "--student-steps": "setup.distill.steps",
        "--student": "setup.student.arch",
        "--width": "setup.student.width",
        "--input-size": "setup.student.input_size",
    },
)
