"""docs/api.md is the generated reference of the current OpenAPI document."""

from __future__ import annotations

import json

from api.app import create_app
from api.docs import render
from tests.conftest import ROOT


def test_api_reference_is_up_to_date() -> None:
    expected = render(json.loads(json.dumps(create_app().openapi())))
    current = (ROOT / "docs" / "api.md").read_text()
    assert current == expected, "regenerate it: PYTHONPATH=. python -m api.docs > docs/api.md"
