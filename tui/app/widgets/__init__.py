"""Reusable widgets of the tracktui app."""
