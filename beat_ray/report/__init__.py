"""Report stage: rebuild the paper's tables and figures from result files (`make figures`).

results/<study>/<preset>/trials.parquet + predictions/ -> paper_figures/<preset>/ (tables as Markdown
and LaTeX, figures as PNG and PDF, a generated README) and paper_figures/README.md indexing the
presets. Reads files only: no Ray, no `beat_ray.train`. Fold-rotation studies (the `real` presets)
are pooled into one test prediction per record (rotation.py).

    python -m beat_ray.report --all [--results results] [--out paper_figures]   # make figures
    python -m beat_ray.report --preset cpu --out DIR                              # one full preset
"""
