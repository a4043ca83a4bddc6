"""Readers for every run format tracktui understands, behind one interface (``base``)."""
