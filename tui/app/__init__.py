"""The Textual application (DESIGN.md §2): reads core state, never opens run files itself."""
