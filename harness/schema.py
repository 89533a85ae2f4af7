"""The official JSON Schemas of the pinned runtime spec (``schema/*.json`` of its folder).

Configs (``config-schema.json``), states (``state-schema.json``) and features documents
(``features-schema.json``) are validated with the `jsonschema` library against the schemas
shipped with the spec release the harness is pinned to (v1.3.0), not against a copy of them
written by hand: a schema change in a new release is picked up by pointing at its folder.

The spec folder is ``$HARNESS_SPEC_DIR`` or, where the harness has it, the folder the spec
source resolves (``harness.spectext.spec_dir``: ``--spec``, the variable, else the pinned
release downloaded once). Every problem is reported with the instance's JSON path and the
schema's path (file and JSON pointer of the keyword that failed).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import HarnessError

DIR_ENV = "HARNESS_SPEC_DIR"
DOCUMENTS = {"config": "config-schema.json", "state": "state-schema.json", "features": "features-schema.json"}


class SchemaUnavailable(HarnessError):
    """The spec folder (and so its JSON Schemas) cannot be found."""


@dataclass(frozen=True)
class SchemaError:
    path: str  # JSON path in the instance, e.g. $.process.args[0]
    message: str
    schema_path: str  # e.g. schema/config-schema.json#/properties/process/properties/args

    def __str__(self) -> str:
        return f"{self.path}: {self.message} ({self.schema_path})"


def spec_folder() -> Path:
    """The spec folder holding ``schema/``; :class:`SchemaUnavailable` if there is none."""
    try:
        from . import spectext  # the spec source (--spec, $HARNESS_SPEC_DIR, pinned download)
    except ImportError:
        spectext = None  # type: ignore[assignment]
    if spectext is not None and not os.environ.get(DIR_ENV):
        try:
            return Path(spectext.spec_dir())
        except HarnessError as err:
            raise SchemaUnavailable(
                f"the runtime spec's JSON Schemas are needed to validate configs and states: {err}"
            ) from None
    folder = os.environ.get(DIR_ENV)
    if not folder:
        raise SchemaUnavailable(
            f"the runtime spec's JSON Schemas are needed to validate configs and states: set ${DIR_ENV} to a runtime-spec v1.3.0 folder (the one holding config.md and schema/)"
        )
    path = Path(folder)
    if not (path / "schema" / DOCUMENTS["config"]).is_file():
        raise SchemaUnavailable(
            f"${DIR_ENV}={folder} has no schema/{DOCUMENTS['config']}: point it at a runtime-spec v1.3.0 folder (the one holding config.md and schema/)"
        )
    return path


@lru_cache(maxsize=4)
def _validator(folder: str, document: str) -> Any:
    from jsonschema import Draft4Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    schema_dir = Path(folder) / "schema"
    resources = []
    for path in sorted(schema_dir.glob("*.json")):
        try:
            contents = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise SchemaUnavailable(f"{path}: not a readable JSON Schema: {err}") from None
        # The schemas refer to each other by file name ("defs.json#/definitions/...").
        resources.append((path.name, Resource.from_contents(contents, default_specification=DRAFT4)))
    registry = Registry().with_resources(resources)
    root = registry.contents(document)
    return Draft4Validator(root, registry=registry)


def _json_path(parts: Any) -> str:
    out = "$"
    for p in parts:
        out += (
            f"[{p}]"
            if isinstance(p, int)
            else (f".{p}" if isinstance(p, str) and p.isidentifier() else f"[{json.dumps(p)}]")
        )
    return out


def _deepest(error: Any) -> Any:
    """For anyOf/oneOf failures, the alternative that got furthest (jsonschema's best match)."""
    from jsonschema.exceptions import best_match

    while error.context:
        best = best_match(error.context)
        if best is None:
            break
        error = best
    return error


def validate(instance: Any, document: str = "config", *, folder: Path | None = None) -> list[SchemaError]:
    """Every place ``instance`` breaks the spec's ``document`` schema (config, state, features)."""
    folder = folder or spec_folder()
    name = DOCUMENTS[document]
    try:
        # The same document is validated again and again (every bundle starts from the same
        # default config): the answer for a document already validated is reused, keyed on its
        # exact JSON text. Only plain JSON is keyed so (a tuple or a non-string key would
        # print the same text as a different document).
        key = json.dumps(instance, separators=(",", ":"), allow_nan=False)
        plain = json.loads(key) == instance
    except (TypeError, ValueError):
        plain = False
    if not plain:
        return _validate(instance, str(folder), name, reuse=False)
    cache_key = (str(folder), name, key)
    found = _ANSWERS.get(cache_key)
    if found is None:
        if len(_ANSWERS) >= _ANSWERS_MAX:
            _ANSWERS.clear()
        found = _ANSWERS[cache_key] = tuple(_validate(instance, str(folder), name))
    return list(found)


#: answers of :func:`validate` by (spec folder, schema, the document's JSON text)
_ANSWERS: dict[tuple[str, str, str], tuple[SchemaError, ...]] = {}
_ANSWERS_MAX = 512


def _validate(instance: Any, folder: str, name: str, *, reuse: bool = True) -> list[SchemaError]:
    """``reuse``: ``instance`` is plain JSON (its text names it), so answers may be reused."""
    validator = _validator(folder, name)
    root = validator.schema
    if not (isinstance(instance, dict) and isinstance(root, dict) and "$ref" not in root):
        found = [_error(e, name) for e in validator.iter_errors(instance)]
    else:
        # What iter_errors does, keyword by keyword, with the answer for each property (and each
        # property of an object property, down to NESTED_DEPTH) reused by its exact JSON text:
        # configs differ from one another in a value or two (process.args, a linux block), so
        # most of a new config was validated before.
        found = _object_errors(validator, root, instance, (), (), (folder, name), reuse, NESTED_DEPTH)
    found.sort(key=lambda e: (e.path, e.schema_path))
    return found


#: how many levels of object properties below the top have their answers reused one by one
#: (``process.args``, ``linux.resources.memory``); below that a property is validated whole
NESTED_DEPTH = 2


def _object_errors(
    validator: Any,
    schema: dict[str, Any],
    instance: dict[str, Any],
    path: tuple[Any, ...],
    schema_path: tuple[Any, ...],
    where: tuple[str, str],
    reuse: bool,
    depth: int,
) -> list[SchemaError]:
    """The errors of the object ``instance`` at ``path`` against ``schema`` (a subschema whose
    keywords apply, no ``$ref``; ``validator`` evolved for it), as ``descend`` finds them, with
    each of its properties validated by :func:`_property_errors`."""
    found = []
    for keyword, value in schema.items():
        check = validator.VALIDATORS.get(keyword)
        if check is None:
            continue
        if keyword == "properties" and isinstance(value, dict):
            for prop, subschema in value.items():
                if prop in instance:
                    found += _property_errors(
                        validator, where, (*path, prop), (*schema_path, "properties", prop), subschema,
                        instance[prop], reuse, depth,
                    )  # fmt: skip
            continue
        for error in check(validator, value, instance, schema) or ():
            error._set(  # noqa: SLF001 (as descend does for each keyword)
                validator=keyword,
                validator_value=value,
                instance=instance,
                schema=schema,
                type_checker=validator.TYPE_CHECKER,
            )
            error.schema_path.appendleft(keyword)
            error.path.extendleft(reversed(path))
            error.schema_path.extendleft(reversed(schema_path))
            found.append(_error(error, where[1]))
    return found


def _property_errors(
    validator: Any,
    where: tuple[str, str],
    path: tuple[Any, ...],
    schema_path: tuple[Any, ...],
    subschema: Any,
    value: Any,
    reuse: bool,
    depth: int,
) -> list[SchemaError]:
    """The errors of the property at ``path`` (``where``: spec folder and schema), as the
    ``properties`` keyword of its object finds them; an object value whose subschema (through
    a ``$ref``) has properties of its own is taken apart one level further while ``depth``
    lasts."""
    key = (*where, path, json.dumps(value, separators=(",", ":"))) if reuse else None
    if key is not None and key in _PROPERTY_ANSWERS:
        return list(_PROPERTY_ANSWERS[key])
    found = []
    expanded = False
    if depth > 0 and isinstance(value, dict) and isinstance(subschema, dict):
        from referencing.jsonschema import DRAFT4

        resolver = validator._resolver.in_subresource(DRAFT4.create_resource(subschema))  # noqa: SLF001
        target = subschema
        if "$ref" in target:  # draft 4: a $ref's siblings are ignored; errors carry no "$ref" step
            resolved = resolver.lookup(target["$ref"])
            target, resolver = resolved.contents, resolved.resolver
        if isinstance(target, dict) and "$ref" not in target and isinstance(target.get("properties"), dict):
            evolved = validator.evolve(schema=target, _resolver=resolver)
            found = _object_errors(evolved, target, value, path, schema_path, where, reuse, depth - 1)
            expanded = True
    if not expanded:
        for error in validator.descend(value, subschema):
            error.path.extendleft(reversed(path))
            error.schema_path.extendleft(reversed(schema_path))
            found.append(_error(error, where[1]))
    if key is not None:
        if len(_PROPERTY_ANSWERS) >= _PROPERTY_ANSWERS_MAX:
            _PROPERTY_ANSWERS.clear()
        _PROPERTY_ANSWERS[key] = tuple(found)
    return found


#: answers of :func:`_property_errors` by (spec folder, schema, property path, the value's JSON text)
_PROPERTY_ANSWERS: dict[tuple[str, str, tuple[Any, ...], str], tuple[SchemaError, ...]] = {}
_PROPERTY_ANSWERS_MAX = 8192


def _error(error: Any, name: str) -> SchemaError:
    error = _deepest(error)
    pointer = "/".join(str(p) for p in error.absolute_schema_path)
    where = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        # name the missing property itself: $.process.cwd, not $.process
        missing = [k for k in error.validator_value if k not in error.instance and repr(k) in error.message]
        where += missing[:1]
    return SchemaError(_json_path(where), error.message, f"schema/{name}#/{pointer}")
