"""Shared pieces of the spec models: the strict base class and the map-or-list unions.

Unions are tagged with names that start with ``§``; error conversion drops those from field paths,
so a user reads ``graph[2].inputs.input`` and never a pydantic union branch name.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Tag

TAG = "§"


class StrictModel(BaseModel):
    """Unknown keys are errors; no silent coercion (`epochs: yes` is not 1); assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True)


def concrete_types(tp: Any) -> list[Any]:
    """The concrete types an annotation may hold (through Annotated, Optional, unions)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return concrete_types(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for a in typing.get_args(tp) for t in concrete_types(a)]
    return [tp]


def _one_or_many(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        return TAG + "many"
    if isinstance(value, dict) or isinstance(value, BaseModel):
        return TAG + "one"
    return None


def _str_or_list(value: Any) -> str | None:
    if isinstance(value, str):
        return TAG + "one"
    if isinstance(value, list | tuple):
        return TAG + "many"
    return None


def _map_or_list(value: Any) -> str | None:
    if isinstance(value, dict):
        return TAG + "map"
    if isinstance(value, list | tuple):
        return TAG + "list"
    return None


def one_or_many(item: Any) -> Any:
    """``item`` or a list of ``item`` (a mapping vs a sequence)."""
    return Annotated[
        Union[Annotated[item, Tag(TAG + "one")], Annotated[list[item], Tag(TAG + "many")]],
        Discriminator(
            _one_or_many,
            custom_error_type="one_or_many",
            custom_error_message="expected a mapping or a list of mappings",
        ),
    ]


Ref = Annotated[str, "reference"]
RefOrRefs = Annotated[
    Union[Annotated[Ref, Tag(TAG + "one")], Annotated[list[Ref], Tag(TAG + "many")]],
    Discriminator(
        _str_or_list,
        custom_error_type="reference",
        custom_error_message="expected a reference (e.g. 'hidden1.output') or a list of references",
    ),
]
NodeInputs = Annotated[
    Union[Annotated[dict[str, RefOrRefs], Tag(TAG + "map")], Annotated[list[Ref], Tag(TAG + "list")]],
    Discriminator(
        _map_or_list,
        custom_error_type="node_inputs",
        custom_error_message="expected a map of argument name -> reference, or a list of references",
    ),
]
