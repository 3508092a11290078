"""Reporting: numbers with provenance, disclosure control, the results registry, figures and
the rendered report. Import the modules directly (this package imports nothing heavy)."""
