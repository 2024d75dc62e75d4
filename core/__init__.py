"""Brain Tumor Workbench engine: data, models, training, evaluation and explanation.

Plain Python + PyTorch. Nothing in this package imports Streamlit except `core.ui`.
"""

__version__ = "0.1.0"
