"""One way to validate configuration: pydantic models, and one translation of their errors.

Every config (sweep and report specs, the ``slurm:`` block, backend configs, pipeline
parameters) is a :class:`Model`: unknown keys are refused and types are
strict (``True`` is not an integer, ``"2"`` is not a number). :func:`validate` turns the first
:class:`pydantic.ValidationError` into one :class:`~lcrp_core.errors.ConfigError` naming the
source, the key path (``points[2].delta``, ``tables[0].panels[1].columns[0]``) and what was
expected, with the value that was given: ``s.yaml: repeats: expected an integer >= 1, got 0``.

A field says what it expects with :func:`expect` (an ``Annotated`` check); a model validator
(a cross-field rule) reports against a key of its own with :func:`fail`.

Dataset JSON files (meta_expressions.json, mask_dict.json) are :class:`DataModel` s, or
``TypeAdapter`` s validated with ``dialect=DATA``: the same translation raises a
:class:`~lcrp_core.errors.DataError` in the readers' wording (``videos.bike.frames[1]: expected
a string, got int 1``; "missing key"; an error at the root is at ``(document)``). Their unknown
keys are ignored (each benchmark adds its own). Checks that must run for every entry of a large
file are written as pydantic-core schemas (:func:`either`, :func:`rule`), so they cost no Python
call per value.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar, overload

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetPydanticSchema,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError, core_schema

from lcrp_core.errors import ConfigError, DataError, LcrpError

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

#: pydantic error type → what was expected (the value given follows as ", got X").
EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "string_type": "a string", "bool_type": "true or false",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
    "list_type": "a list", "tuple_type": "a list", "literal_error": "one of {expected}",
    "too_short": "a non-empty list", "finite_number": "a finite number",
}
_NO_GOT = object()


@dataclass(frozen=True)
class Dialect:
    """How :func:`validate` words an error, and which error it raises."""

    error: type[LcrpError]
    #: pydantic error type → what was expected
    expected: Mapping[str, str]
    missing: str
    #: a type error's value as ``<type> <value cut to 60 characters>`` (data files: entries can
    #: be large) rather than ``repr(value)``
    typed_got: bool
    #: the key path of an error in the document itself (None: no key)
    root: str | None

    def got(self, value: Any, *, typed: bool) -> str:
        if not self.typed_got:
            return repr(value)
        return f"{type(value).__name__} {value!r:.60}" if typed else f"{value!r:.60}"


#: configs: ``s.yaml: repeats: expected an integer >= 1, got 0``
CONFIG = Dialect(ConfigError, EXPECTED, "missing required key", False, None)
#: dataset JSON files: ``meta_expressions.json: videos: expected an object, got list []``
DATA = Dialect(DataError, {**EXPECTED, "dict_type": "an object", "model_type": "an object",
                           "model_attributes_type": "an object"}, "missing key", True, "(document)")


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(None, "expected a number", value)
    return value


#: An int or a float, kept as given (``22`` stays an int: resolved configs and their hashes keep
#: the user's own values); ``True`` is not a number.
Number = Annotated[float, PlainValidator(_number)]


class Model(BaseModel):
    """A config section: strict types, no unknown keys, read-only once validated."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    #: how an unknown key is named in messages ("key", "parameter")
    unknown_noun: ClassVar[str] = "key"
    #: how :func:`validate` words this model's errors
    dialect: ClassVar[Dialect] = CONFIG

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if cls.model_config.get("extra") == "forbid" and isinstance(data, Mapping):
            allowed = [f.alias or name for name, f in cls.model_fields.items()]
            if cls.model_config.get("validate_by_name"):
                allowed += [name for name, f in cls.model_fields.items() if f.alias]
            for key in data:
                if key not in allowed:
                    raise fail(key, f"unknown {cls.unknown_noun}; expected one of {allowed}")
        return data


class DataModel(Model):
    """An object of a dataset JSON file: strict types; unknown keys are ignored (a benchmark's
    files carry keys of their own); errors are DataErrors (:data:`DATA`)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    dialect: ClassVar[Dialect] = DATA


def fail(key: str | int | tuple[str | int, ...] | None, what: str, got: Any = _NO_GOT
         ) -> PydanticCustomError:
    """An error for a model validator to raise: ``key`` (below the model's own path, None for
    the model itself) ``what`` (the whole message), ``got`` the value given, if any."""
    keys = () if key is None else key if isinstance(key, tuple) else (key,)
    return PydanticCustomError("lcrp", "{what}", {"what": what, "key": keys, "got": got})


def expect(what: str, ok: Callable[[Any], bool]) -> AfterValidator:
    """An ``Annotated`` check: the value passes ``ok``, else "expected <what>, got <value>"."""
    def check(value: Any) -> Any:
        if not ok(value):
            raise fail(None, f"expected {what}", value)
        return value
    return AfterValidator(check)


def checked(convert: Callable[[Any], Any]) -> AfterValidator:
    """An ``Annotated`` conversion whose ValueError or ConfigError message is the error's."""
    def check(value: Any) -> Any:
        try:
            return convert(value)
        except (ConfigError, ValueError) as exc:
            raise fail(None, message_of(exc) if isinstance(exc, ConfigError) else str(exc)) from None
    return AfterValidator(check)


def typed(kinds: type | tuple[type, ...], what: str) -> BeforeValidator:
    """An ``Annotated`` type check in the field's own words: a value not of ``kinds`` is
    "expected <what>, got <value>" (``True`` is of ``int`` only when ``bool`` is listed)."""
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)

    def check(value: Any) -> Any:
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise fail(None, f"expected {what}", value)
        return value
    return BeforeValidator(check)


def one_of(choices: Collection[Any]) -> AfterValidator:
    """An ``Annotated`` check: the value is one of ``choices`` (listed in the message)."""
    return expect(f"one of {list(choices)}", lambda v: v in choices)


def at_least(minimum: float, what: str = "an integer") -> AfterValidator:
    return expect(f"{what} >= {minimum}", lambda v: v >= minimum)


#: the pydantic error type of each type :func:`either` accepts
_KIND_SCHEMAS = {
    int: ("int_type", core_schema.int_schema(strict=True)),
    float: ("float_type", core_schema.float_schema(strict=True)),
    str: ("string_type", core_schema.str_schema(strict=True)),
    bool: ("bool_type", core_schema.bool_schema(strict=True)),
    list: ("list_type", core_schema.list_schema(strict=True)),
    dict: ("dict_type", core_schema.dict_schema(strict=True)),
}


def either(*kinds: type) -> GetPydanticSchema:
    """An ``Annotated`` type: a value of one of ``kinds`` (kept as given; ``True`` is not an
    integer), else one error "expected an integer or a string, got ..." (not one per kind)."""
    names = tuple(_KIND_SCHEMAS[k][0] for k in kinds)
    schema = core_schema.union_schema(
        [_KIND_SCHEMAS[k][1] for k in kinds], custom_error_type="lcrp_kinds",
        custom_error_message="expected one of the listed types", custom_error_context={"kinds": names})
    return GetPydanticSchema(lambda _source, _handler: schema)


def rule(schema: core_schema.CoreSchema, what: str, *, got: bool = True) -> GetPydanticSchema:
    """An ``Annotated`` check run by pydantic-core itself (no Python call per value, for large
    files): the value, once of its declared type, must pass the core ``schema``, else the one
    error ``what`` (with ", got <value>" when ``got``) replaces the schema's own errors."""
    check = core_schema.custom_error_schema(
        schema, custom_error_type="lcrp", custom_error_message="{what}",
        custom_error_context={"what": what, "key": (), "got_input": got})
    return GetPydanticSchema(lambda source, handler: core_schema.chain_schema([handler(source), check]))


@contextmanager
def keyed(*prefix: str | int, at_value: bool = False) -> Iterator[None]:
    """Inside a validator: a ConfigError raised by other validation code (a nested
    :func:`validate`, ``Params.from_mapping``) is reported at ``prefix`` + its own key, below
    the validator's path (at ``prefix`` alone when ``at_value``: the key is the value's path)."""
    try:
        yield
    except ConfigError as exc:
        key = prefix if at_value or not exc.key else (*prefix, exc.key)
        raise fail(key, message_of(exc)) from None
    except PydanticCustomError as exc:  # a fail() of a nested check
        if exc.type != "lcrp":
            raise
        ctx = exc.context or {}
        raise fail(prefix if at_value else (*prefix, *ctx["key"]), ctx["what"], ctx["got"]) from None


@overload
def validate(model: type[M], data: Any, *, source: str | Path | None, at: str = "",
             context: dict[str, Any] | None = None, dialect: Dialect | None = None) -> M: ...
@overload
def validate(model: TypeAdapter[T], data: Any, *, source: str | Path | None, at: str = "",
             context: dict[str, Any] | None = None, dialect: Dialect | None = None) -> T: ...
def validate(model: type[M] | TypeAdapter[Any], data: Any, *, source: str | Path | None,
             at: str = "", context: dict[str, Any] | None = None,
             dialect: Dialect | None = None) -> Any:
    """``model`` (a Model or a TypeAdapter) validated from ``data``; any failure is one error
    (``dialect``'s, by default the model's: a ConfigError, a DataError for a DataModel) naming
    ``source`` and the key path (under ``at``, the section's own path)."""
    if isinstance(model, TypeAdapter):
        validator, dialect = model.validate_python, dialect or CONFIG
    else:
        validator, dialect = model.model_validate, dialect or model.dialect
    try:
        return validator(data, context=context)
    except ValidationError as exc:
        raise config_error(exc, source=source, at=at, dialect=dialect) from None


def config_error(exc: ValidationError, *, source: str | Path | None, at: str = "",
                 dialect: Dialect = CONFIG) -> LcrpError:
    """The first error of ``exc`` as one ``dialect.error`` (see the module docstring)."""
    err = exc.errors(include_url=False)[0]
    loc, ctx, kind = list(err["loc"]), err.get("ctx") or {}, err["type"]
    got, typed = err.get("input", _NO_GOT), True
    if kind == "lcrp":
        loc += list(ctx["key"])
        what, typed = ctx["what"], False
        if "got_input" in ctx:  # a rule(): the value is the error's input
            got = got if ctx["got_input"] else _NO_GOT
        else:
            got = ctx["got"]
    elif kind == "lcrp_kinds":
        what = "expected " + " or ".join(dialect.expected[k] for k in ctx["kinds"])
    elif kind == "missing":
        what, got = dialect.missing, _NO_GOT
    elif kind == "value_error":
        what, got = str(ctx["error"]), _NO_GOT
    elif kind in dialect.expected:
        what = "expected " + dialect.expected[kind].format(**ctx)
    else:
        what = f"expected a valid value ({err['msg']})"
    if got is not _NO_GOT:
        what += f", got {dialect.got(got, typed=typed)}"
    key = key_path([at] if at else [], loc) or dialect.root
    return dialect.error(what, path=source, key=key)


def key_path(*parts: list[Any]) -> str:
    """``["points", 2, "delta"]`` → ``points[2].delta`` (pydantic's ``[key]`` marker of an
    error in a mapping's key is left out: the key itself names it)."""
    out = ""
    for part in (p for ps in parts for p in ps):
        if part == "[key]":
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def message_of(exc: ConfigError) -> str:
    """The message of ``exc`` without its ``path: key:`` prefix."""
    text = str(exc)
    for part in (exc.path, exc.key):
        if part:
            text = text.removeprefix(f"{part}: ")
    return text
