"""Plotly figures of runs: training curves, accuracy with intervals, confusion matrices, ROC,
reliability and stress curves, in one colour-blind-safe palette. Pure functions of run records,
free of Streamlit, so the Compare page (core.ui) and the HTML report (core.reports) draw the
same figures."""
