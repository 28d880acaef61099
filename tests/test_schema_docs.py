"""Editor support: every property of the analytic JSON Schema has a description and examples,
and every example is valid for the property it illustrates (editors offer them as completions)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from compiler.surface import json_schema

SCHEMA = json_schema()


def _properties(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            for name, sub in props.items():
                yield f"{where}.{name}", sub
        for k, v in node.items():
            yield from _properties(v, f"{where}/{k}" if k != "properties" else where)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _properties(v, f"{where}[{i}]")


PROPERTIES = list(_properties(SCHEMA))


def test_the_schema_has_all_its_properties() -> None:
    # the 116 properties of the language (the issue counted 112 before attack.tactics,
    # author, license and tags); a model that stops producing properties would pass vacuously
    assert len(PROPERTIES) >= 116


@pytest.mark.parametrize(("where", "prop"), PROPERTIES, ids=[w for w, _ in PROPERTIES])
def test_property_has_description_and_valid_examples(where: str, prop: dict[str, Any]) -> None:
    assert isinstance(prop.get("description"), str) and len(prop["description"]) > 10, where
    examples = prop.get("examples")
    assert isinstance(examples, list) and examples, where
    # the property's schema, with the definitions its $refs point to
    schema = {"$defs": SCHEMA["$defs"], **prop}
    schema.pop("examples")
    for ex in examples:
        jsonschema.Draft202012Validator(schema).validate(ex)


def test_an_invalid_example_would_be_caught() -> None:
    maxspan = next(p for w, p in PROPERTIES if w.endswith("SequenceM.maxspan"))
    schema = {"$defs": SCHEMA["$defs"], **maxspan}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate("5 minutes")
