"""One way to validate configuration: pydantic models, and one translation of their errors.

Every config (sweep and report specs, the ``slurm:`` block, backend configs, pipeline
parameters, dataset JSON files) is a :class:`Model`: unknown keys are refused and types are
strict (``True`` is not an integer, ``"2"`` is not a number). :func:`validate` turns the first
:class:`pydantic.ValidationError` into one :class:`~lcrp_core.errors.ConfigError` naming the
source, the key path (``points[2].delta``, ``tables[0].panels[1].columns[0]``) and what was
expected, with the value that was given: ``s.yaml: repeats: expected an integer >= 1, got 0``.

A field says what it expects with :func:`expect` (an ``Annotated`` check); a model validator
(a cross-field rule) reports against a key of its own with :func:`fail`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PlainValidator,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from lcrp_core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

#: pydantic error type → what was expected (the value given follows as ", got X").
EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "string_type": "a string", "bool_type": "true or false",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
    "list_type": "a list", "tuple_type": "a list", "literal_error": "one of {expected}",
    "too_short": "a non-empty list", "finite_number": "a finite number",
}
_NO_GOT = object()


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

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            allowed = [f.alias or name for name, f in cls.model_fields.items()]
            if cls.model_config.get("validate_by_name"):
                allowed += [name for name, f in cls.model_fields.items() if f.alias]
            for key in data:
                if key not in allowed:
                    raise fail(key, f"unknown {cls.unknown_noun}; expected one of {allowed}")
        return data


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


def one_of(choices: Collection[Any]) -> AfterValidator:
    """An ``Annotated`` check: the value is one of ``choices`` (listed in the message)."""
    return expect(f"one of {list(choices)}", lambda v: v in choices)


def at_least(minimum: float, what: str = "an integer") -> AfterValidator:
    return expect(f"{what} >= {minimum}", lambda v: v >= minimum)


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


def validate(model: type[M], data: Any, *, source: str | None, at: str = "",
             context: dict[str, Any] | None = None) -> M:
    """``model`` validated from ``data``; any failure is one ConfigError naming ``source`` and
    the key path (under ``at``, the section's own path)."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise config_error(exc, source=source, at=at) from None


def config_error(exc: ValidationError, *, source: str | None, at: str = "") -> ConfigError:
    """The first error of ``exc`` as a ConfigError (see the module docstring)."""
    err = exc.errors(include_url=False)[0]
    loc, ctx, kind = list(err["loc"]), err.get("ctx") or {}, err["type"]
    got = err.get("input", _NO_GOT)
    if kind == "lcrp":
        loc += list(ctx["key"])
        what, got = ctx["what"], ctx["got"]
    elif kind == "missing":
        what, got = "missing required key", _NO_GOT
    elif kind == "value_error":
        what, got = str(ctx["error"]), _NO_GOT
    elif kind in EXPECTED:
        what = "expected " + EXPECTED[kind].format(**ctx)
    else:
        what = f"expected a valid value ({err['msg']})"
    if got is not _NO_GOT:
        what += f", got {got!r}"
    return ConfigError(what, path=source, key=key_path([at] if at else [], loc) or None)


def key_path(*parts: list[Any]) -> str:
    """``["points", 2, "delta"]`` → ``points[2].delta``."""
    out = ""
    for part in (p for ps in parts for p in ps):
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def message_of(exc: ConfigError) -> str:
    """The message of ``exc`` without its ``path: key:`` prefix."""
    text = str(exc)
    for part in (exc.path, exc.key):
        if part:
            text = text.removeprefix(f"{part}: ")
    return text
