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
        # What iter_errors does at the top, keyword by keyword, with each top-level property's
        # answer reused by its exact JSON text: configs differ from one another in a property
        # or two (process.args, a linux block), so most of a new config was validated before.
        found = []
        for keyword, value in root.items():
            check = validator.VALIDATORS.get(keyword)
            if check is None:
                continue
            if keyword == "properties" and isinstance(value, dict):
                for prop, subschema in value.items():
                    if prop in instance:
                        found += _property_errors(validator, (folder, name, prop), subschema, instance[prop], reuse)
                continue
            for error in check(validator, value, instance, root) or ():
                error._set(  # noqa: SLF001 (as iter_errors does for a top-level keyword)
                    validator=keyword,
                    validator_value=value,
                    instance=instance,
                    schema=root,
                    type_checker=validator.TYPE_CHECKER,
                )
                error.schema_path.appendleft(keyword)
                found.append(_error(error, name))
    found.sort(key=lambda e: (e.path, e.schema_path))
    return found


def _property_errors(
    validator: Any, where: tuple[str, str, str], subschema: Any, value: Any, reuse: bool
) -> list[SchemaError]:
    """The errors of one top-level property (``where``: spec folder, schema, property), as the
    ``properties`` keyword finds them."""
    _, name, prop = where
    key = (*where, json.dumps(value, separators=(",", ":"))) if reuse else None
    if key is not None and key in _PROPERTY_ANSWERS:
        return list(_PROPERTY_ANSWERS[key])
    found = []
    for error in validator.descend(value, subschema, path=prop, schema_path=prop):
        error.schema_path.appendleft("properties")
        found.append(_error(error, name))
    if key is not None:
        if len(_PROPERTY_ANSWERS) >= _PROPERTY_ANSWERS_MAX:
            _PROPERTY_ANSWERS.clear()
        _PROPERTY_ANSWERS[key] = tuple(found)
    return found


#: answers of :func:`_property_errors` by (spec folder, schema, property, the value's JSON text)
_PROPERTY_ANSWERS: dict[tuple[str, str, str, str], tuple[SchemaError, ...]] = {}
_PROPERTY_ANSWERS_MAX = 2048


def _error(error: Any, name: str) -> SchemaError:
    error = _deepest(error)
    pointer = "/".join(str(p) for p in error.absolute_schema_path)
    where = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        # name the missing property itself: $.process.cwd, not $.process
        missing = [k for k in error.validator_value if k not in error.instance and repr(k) in error.message]
        where += missing[:1]
    return SchemaError(_json_path(where), error.message, f"schema/{name}#/{pointer}")
