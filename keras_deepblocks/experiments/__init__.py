"""The experiments that show why depth works, each returning its numbers and drawing its figure.

`deepblocks experiment depth|init|gradients|lesion` and the "why depth works"
tutorial call these; each module has a function that runs the experiment and
returns plain Python numbers, and a `plot_*` function that draws them.
"""
