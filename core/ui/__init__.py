"""Streamlit-only helpers: widgets, charts, cached loaders and session-state keys.

The only part of `core` allowed to import streamlit.
"""
