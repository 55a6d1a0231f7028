"""Runtime adapters: the only place a framework is imported. One module per runtime; see base.py."""
