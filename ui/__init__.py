"""The dashboard's pages, one module each, and what they share (common.py); dashboard.py routes to them.

The pipeline knows no screen: only this package and dashboard.py import streamlit."""
