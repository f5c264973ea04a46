"""Every notebook in full mode, offline, under test: links to notebooks/ (see conftest.py)."""
