"""The suyuan service: FastAPI application, QR labels, web pages and the command line."""

import trace as _trace

if not hasattr(_trace, "__path__"):  # pragma: no cover - only when run from an installed copy
    raise ImportError(
        "the standard library's `trace` module shadows suyuan's `trace` package: "
        "run suyuan from its checkout (scripts/suyuan) with the checkout first on PYTHONPATH"
    )
