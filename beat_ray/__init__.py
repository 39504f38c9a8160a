"""beat-ray: BEAT-Net ECG experiments on Ray.

Stages, one package each, arrows pointing one way:
data -> tokenize -> models -> train -> results/ -> report -> paper_figures/
"""

__version__ = "0.1.0"
