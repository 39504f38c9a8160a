"""Report stage: rebuild the paper's tables and figures from result files (`make figures`).

results/<study>/<preset>/trials.parquet + predictions/ -> paper_figures/ (tables as Markdown and
LaTeX, figures as PNG and PDF, a generated README). Reads files only: no Ray, no `beat_ray.train`.

    python -m beat_ray.report [--results results] [--out paper_figures] [--preset cpu]
"""
