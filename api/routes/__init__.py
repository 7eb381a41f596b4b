"""HTTP routes, one module per resource; thin — the work happens in ``trace`` and ``ledger``."""
