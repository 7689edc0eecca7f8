"""A recipe: which images a student learns from beside its supports, and where it starts; and
the settings every recipe runs with.

A recipe is written SOURCE[+SOURCE...][@INIT] (sources in `tint.sources`):

    supports                   the supports alone, with ordinary augmentation
    tint                       TINT's images, labelled by the teacher
    tint+retrieval@pretrained  TINT's and the nearest base images, from a base-pretrained start

"@pretrained" starts the student from a base-pretrained network's backbone (a new head),
"@scratch" from fresh weights; a recipe without either starts as `student_init` says."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tint.config import group, setting
from tint.diffusion.generation import GenerateConfig
from tint.diffusion.textual_inversion import TextualInversionConfig
from tint.errors import TintError
from tint.models.students import StudentChoice
from tint.models.teachers import TeacherConfig
from tint.sources import SOURCES, source_of
from tint.train.distill import DistillConfig

SUPPORTS = "supports"
INITS = ("scratch", "pretrained")
AUTO = "auto"  # `student_init`: pretrained where a base-pretrained student exists, else scratch
SYNTAX = (
    f"SOURCE[+SOURCE...][@INIT]: {SUPPORTS} (none), or sources from {', '.join(SOURCES)} "
    f"(tint:A for alpha A, tint:LO-HI, tint:random, tint:confident|uncertain|spread), INIT "
    f"{' or '.join(INITS)}"
)
# TINT's noise blend for images a student learns from: the best of 0.3, 0.5, 0.7 and 0.9 in a
# sweep on the glyph world's val classes (hard 5-way 1-shot, 4 episodes; README, Benchmark).
# Near-copies of the supports (low alpha) teach the student less than varied images do.
DISTILL_ALPHA = 0.9


@dataclass(frozen=True)
class Recipe:
    """What a recipe's name asks for."""

    name: str  # as written: "tint+retrieval@pretrained"
    sources: tuple[str, ...] = ()  # as spelled, in the name's order ("tint:0.3"); () for supports
    init: str | None = None  # from INITS; None: as the settings' `student_init` says

    @property
    def kinds(self) -> tuple[str, ...]:
        """The registered sources it uses ("tint" for "tint:0.3")."""
        return tuple(s.partition(":")[0] for s in self.sources)

    def needs(self, kind: str) -> bool:
        """Whether a source of `kind` (GENERATED, MINED) is among its sources."""
        return any(SOURCES[k].kind == kind for k in self.kinds)

    def without(self, kind: str) -> str | None:
        """The name of this recipe without its sources of `kind` (GENERATED, MINED), the
        baseline that credits them with their own part; None where it has none of them."""
        if not self.needs(kind):
            return None
        rest = [s for s, k in zip(self.sources, self.kinds) if SOURCES[k].kind != kind]
        return ("+".join(rest) or SUPPORTS) + (f"@{self.init}" if self.init else "")

    def starting(self, init: str) -> Recipe:
        """This recipe with its start decided where the name leaves it open."""
        return Recipe(self.name, self.sources, self.init or init)


def parse_recipe(name: str) -> Recipe:
    """ "tint", "tint:0.3", "base+tint@pretrained", "supports@scratch", ... -> their Recipe;
    raises on anything else (see SYNTAX)."""
    body, at, init = name.partition("@")
    if at and init not in INITS:
        raise TintError(f"method {name!r}: @{init} is not one of @{', @'.join(INITS)}")
    parts = body.split("+")
    if parts == [SUPPORTS]:
        return Recipe(name, (), init or None)
    for part in parts:
        if part == SUPPORTS:
            raise TintError(
                f"method {name!r}: every student learns from the supports; leave "
                "'supports' out of a combination"
            )
        if part.partition(":")[0] not in SOURCES:
            raise TintError(f"unknown method {name!r} (a method is {SYNTAX})")
        try:
            source_of(part)
        except TintError as e:
            raise TintError(f"method {name!r}: {e}") from None
    kinds = [p.partition(":")[0] for p in parts]
    twice = next((k for k in kinds if kinds.count(k) > 1), None)
    if twice:
        raise TintError(f"method {name!r} names {twice} twice")
    return Recipe(name, tuple(parts), init or None)


def student_generation(num: int = 40) -> GenerateConfig:
    """TINT's settings for the images a student learns from: DISTILL_ALPHA, and 10 DDIM steps
    with 100 textual-inversion steps at lr 1e-2 where `tint generate` takes 25 and 300 at 5e-3.
    With the teacher's labels once on 16 views and bfloat16 students they cost no accuracy on
    the glyph world's hard val episodes at 1 and 5 shots and halve an episode's time
    (docs/PERFORMANCE.md); 40 images per class is the recipe chosen on val (docs/RESULTS.md)."""
    return GenerateConfig(
        num=num,
        alpha=DISTILL_ALPHA,
        ddim_steps=10,
        ti=TextualInversionConfig(steps=100, lr=1e-2),
    )


@dataclass
class RecipeSettings:
    """How every recipe runs: the same tree in `tint distill`, `tint benchmark` (its `setup`),
    `tint demo` and `tint.distill`."""

    student: StudentChoice = group(StudentChoice, "the students", prefix="student")
    generation: GenerateConfig = group(
        GenerateConfig,
        "the generated sources' images: num per class; the method sets the generator and alpha "
        "(tint:A, tint:random), and each task its seed",
        prefix="",
        factory=student_generation,
        exclude=("generator", "random_alpha"),
    )
    distill: DistillConfig = group(
        DistillConfig, "every student's training", exclude=("seed", "ema_decay")
    )
    teacher_head: TeacherConfig = group(
        TeacherConfig, "the teacher's prototype head", prefix="teacher", exclude=("seed",)
    )
    retrieval_num: int | None = setting(
        None,
        "retrieved images per class, alone or beside generated ones (default: num, as many as "
        "each generated source)",
        minimum=1,
    )
    select_factor: int = setting(
        4,
        "tint:confident, tint:uncertain and tint:spread make this many times num and keep num",
        minimum=1,
    )
    boundary_share: float = setting(
        0.5,
        "the boundary source: how far towards the most confusable class an image's prompt "
        "moves, at most (a share drawn for each image)",
        minimum=0,
        maximum=1,
    )
    student_init: str = setting(
        AUTO,
        "how a student starts where its method names no @INIT: scratch, pretrained (the "
        "backbone of the pretrained student below, with a new head), or auto (pretrained where "
        "a base-pretrained student of the architecture exists for the teacher, else scratch)",
        choices=(AUTO, *INITS),
    )
    student_pretrained: str | None = setting(
        None,
        "the student pretrained on base classes (tint pretrain student) that pretrained starts "
        "take their backbone from (default: the glyph world's shipped one of the student's "
        "architecture, with the glyph teacher)",
    )

    @property
    def seed(self) -> int:
        return self.generation.seed

    @property
    def retrieved_per_class(self) -> int:
        return self.retrieval_num or self.generation.num


def resolve_init(settings: RecipeSettings, pretrained) -> tuple[RecipeSettings, str | None]:
    """The settings with `student_init` decided: auto is pretrained where there is a
    base-pretrained student (`pretrained`, a directory or None), else scratch, said in the
    returned note (None where there is nothing to say)."""
    if settings.student_init != AUTO:
        return settings, None
    init = "scratch" if pretrained is None else "pretrained"
    note = None
    if pretrained is None:
        note = (
            f"students start from fresh weights: no base-pretrained {settings.student.arch} "
            "for this teacher (make one with tint pretrain student, then pass "
            "--student-pretrained DIR)"
        )
    return dataclasses.replace(settings, student_init=init), note
