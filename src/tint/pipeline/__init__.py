"""The one path from a task's supports and a recipe to a trained student.

    recipe     what a student learns from (sources joined by "+") and where it starts; the
               settings every recipe runs with (`RecipeSettings`)
    students   `Pipeline(settings, backbone, model, base_pool, pretrained).on(task, folder)`
               gives a task's `TaskWork`, whose `student(recipe)` is the trained student
    distill    a user's folder (or {class: images}) in, the student exported and reported out

`tint distill`, `tint.distill`, every student of `tint benchmark`, `tint demo`, `tint sources`
and the speed command's distillation run this code and no other."""
