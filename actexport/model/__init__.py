"""A user's own model, verified as a whole: `--module PKG.MOD:FACTORY` with `--inputs PKG.MOD:FN`.

spec (the module, its named inputs and flattened outputs), batteries (the inputs it runs on),
export (each format, dynamic dims that hold), run (a runtime on named inputs), criterion (each
output judged at its own scale against float64 and eager PyTorch), origin (the layer at fault),
verify (the run), commands (the CLI's verify, export and check for a model).
"""
