"""Each router declares its family (the error shape) and its idempotent routes; the app derives its
lookups from the mounted routes once, at creation.

- `FamilyRouter(family=CLONE)` stamps the family on every route it declares (through the route class,
  which FastAPI keeps when the router is included). `owns` names path prefixes, relative to where the
  router is mounted, that belong to the family even where no route matches (`/v1/…` is OpenAI's).
- A route that creates a job or a voice passes `openapi_extra=IDEMPOTENT` (`x-idempotent` in /docs):
  those routes honour `Idempotency-Key` (app.api.idempotency).
- `install_route_table(app)` reads the mounted routes into a `RouteTable`: the idempotent routes'
  patterns, and a prefix table (the static start of each route's path, plus the owned prefixes,
  longest first) for answers given before any route matched: 413 and 429 from the middleware,
  unknown paths. An error raised inside a route takes the matched route's family.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import fastapi.routing
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from starlette.types import Scope

NATIVE, CLONE, VOICEAI, ENVELOPE, OPENAI = "native", "clone", "voiceai", "envelope", "openai"
FAMILIES = (NATIVE, CLONE, VOICEAI, ENVELOPE, OPENAI)
# Paths no family declares (platform routes, unknown paths) answer in the native shape.
DEFAULT_FAMILY = NATIVE

IDEMPOTENT_KEY = "x-idempotent"
IDEMPOTENT: dict[str, Any] = {IDEMPOTENT_KEY: True}


class FamilyRoute(APIRoute):
    """A route of a family router; subclasses made by `family_route_class` fill the class attributes."""

    family: ClassVar[str] = DEFAULT_FAMILY
    owns: ClassVar[tuple[str, ...]] = ()  # prefixes relative to the mount point, router prefix included


@cache
def family_route_class(family: str, owns: tuple[str, ...] = ()) -> type[FamilyRoute]:
    return type(f"{family.capitalize()}Route", (FamilyRoute,), {"family": family, "owns": owns})


class FamilyRouter(APIRouter):
    """An APIRouter whose routes answer errors in `family`'s shape."""

    def __init__(self, *, family: str, owns: Sequence[str] = (), prefix: str = "", **kwargs: Any) -> None:
        if family not in FAMILIES:
            raise ValueError(f"unknown family {family!r}")
        owned = tuple(prefix + path for path in owns)
        super().__init__(prefix=prefix, route_class=family_route_class(family, owned), **kwargs)
        self.family = family


@dataclass(frozen=True)
class RouteTable:
    """What the mounted routes declare, for lookups by path."""

    # (text, exact, family): `exact` entries match the path itself, the others any path they start.
    prefixes: tuple[tuple[str, bool, str], ...]
    idempotent: tuple[tuple[re.Pattern[str], frozenset[str]], ...]

    def family_of(self, path: str) -> str:
        for text, exact, family in self.prefixes:
            if (path == text) if exact else path.startswith(text):
                return family
        return DEFAULT_FAMILY

    def is_idempotent(self, method: str, path: str) -> bool:
        paths = {path, path.rstrip("/") or "/"}
        return any(
            method in methods and any(pattern.match(p) for p in paths) for pattern, methods in self.idempotent
        )


def _mounted(routes: Iterable[BaseRoute]) -> Iterator[tuple[BaseRoute, Any]]:
    """(the route as declared, the route as mounted: full path, pattern, methods) for every route."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if contexts is None:  # FastAPI before lazy included routers: app.routes holds full copies
        for route in routes:
            yield route, route
        return
    for context in contexts(list(routes)):
        yield context.original_route, context


def build_route_table(routes: Iterable[BaseRoute]) -> RouteTable:
    prefixes: list[tuple[str, bool, str]] = []
    idempotent: list[tuple[re.Pattern[str], frozenset[str]]] = []
    for declared, mounted in _mounted(routes):
        if not isinstance(declared, APIRoute):
            continue
        full: str = mounted.path_format
        family = getattr(declared, "family", DEFAULT_FAMILY)
        if "{" in full:
            prefixes.append((full.split("{", 1)[0], False, family))
        else:
            prefixes += [(full, True, family), (full.rstrip("/") + "/", False, family)]
        own = declared.path_format
        mount = full[: len(full) - len(own)] if full.endswith(own) else ""
        prefixes += [(mount + owned, False, family) for owned in getattr(declared, "owns", ())]
        if (declared.openapi_extra or {}).get(IDEMPOTENT_KEY):
            idempotent.append((mounted.path_regex, frozenset(mounted.methods or ())))
    # Longest first; among equals the first mounted wins, as in routing.
    ordered = sorted(dict.fromkeys(prefixes), key=lambda entry: -len(entry[0]))
    return RouteTable(prefixes=tuple(ordered), idempotent=tuple(idempotent))


def install_route_table(app: FastAPI) -> RouteTable:
    """Build the table from the routes mounted so far (call after the last include_router)."""
    table = build_route_table(app.routes)
    app.state.route_table = table
    return table


def route_table_for(scope: Scope) -> RouteTable | None:
    state = getattr(scope.get("app"), "state", None)
    table = getattr(state, "route_table", None)
    return table if isinstance(table, RouteTable) else None


def family_for(scope: Scope) -> str:
    """The family whose shape an answer to this request takes: the matched route's, else by path."""
    family = getattr(scope.get("route"), "family", None)
    if isinstance(family, str):
        return family
    table = route_table_for(scope)
    return table.family_of(scope["path"]) if table is not None else DEFAULT_FAMILY
