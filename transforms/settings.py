"""The translation's settings: one immutable object built once from the command-line flags.

Beam pickles the settings into every worker, so they hold only plain, picklable values, and they
are frozen so no stage can change what another stage sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

__all__ = ["TranslationSettings", "USER_PROPERTIES_MODES"]

# "set": user properties update the person ($set); "root": merged into the event's properties;
# "property": nested under properties.user_properties. See docs/mapping.md.
USER_PROPERTIES_MODES = ("set", "root", "property")


class _FrozenDict(dict):
    """A dict that refuses changes.

    A dict subclass rather than ``types.MappingProxyType`` because the translation looks names up
    once per row (``dict.get`` stays at C speed) and because a mapping proxy cannot be pickled.
    """

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("TranslationSettings are immutable")

    __setitem__ = __delitem__ = __ior__ = _readonly  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple:
        # dict's default pickling refills the copy through __setitem__, which is refused above.
        return (_FrozenDict, (dict(self),))

    def __repr__(self) -> str:
        return repr(dict(self))


def _check_names(flag: str, names: Iterable[str]) -> None:
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{flag}: expected a non-empty name, got {name!r}")


def _pairs(flag: str, values: Iterable[str]) -> dict[str, str]:
    """Parse repeated ``SRC::DST`` flag values; a source may be named once only."""
    if isinstance(values, str):
        raise ValueError(f"{flag}: expected a list of SRC::DST values, got the string {values!r}")
    pairs: dict[str, str] = {}
    for value in values:
        source, sep, destination = value.partition("::") if isinstance(value, str) else ("", "", "")
        if not sep or not source or not destination:
            raise ValueError(f"{flag}: expected SRC::DST, got {value!r}")
        if pairs.get(source, destination) != destination:
            raise ValueError(
                f"{flag}: {source!r} is renamed twice ({pairs[source]!r} and {destination!r})")
        pairs[source] = destination
    return pairs


@dataclass(frozen=True)
class TranslationSettings:
    """How Amplitude rows become PostHog events, beyond the fixed mapping.

    ``ignore_events``: source event names to skip. ``rename_events``: source event name → PostHog
    event name (wins over the built-in names). ``rename_properties``: event property key → new key.
    ``user_properties_mode``: where user properties go, one of ``USER_PROPERTIES_MODES``.
    ``import_job_id``: set as every event's ``$import_job_id`` when given (the job's name).
    """

    ignore_events: frozenset[str] = frozenset()
    rename_events: Mapping[str, str] = field(default_factory=dict)
    rename_properties: Mapping[str, str] = field(default_factory=dict)
    user_properties_mode: str = "set"
    import_job_id: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.ignore_events, str):
            raise ValueError("--ignore_event: expected a collection of event names, got a string")
        _check_names("--ignore_event", self.ignore_events)
        for flag, mapping in (("--rename_event", self.rename_events),
                              ("--rename_property", self.rename_properties)):
            if not isinstance(mapping, Mapping):
                raise ValueError(f"{flag}: expected a mapping of names, got {type(mapping).__name__}")
            _check_names(flag, mapping.keys())
            _check_names(flag, mapping.values())
        if self.user_properties_mode not in USER_PROPERTIES_MODES:
            raise ValueError(
                f"--user_properties_mode: expected one of {', '.join(USER_PROPERTIES_MODES)}, "
                f"got {self.user_properties_mode!r}")
        if self.import_job_id is not None and (not isinstance(self.import_job_id, str)
                                               or not self.import_job_id):
            raise ValueError(f"--job_name: expected a non-empty name, got {self.import_job_id!r}")
        # Freeze whatever the caller passed, so a later change to their dict cannot leak in.
        object.__setattr__(self, "ignore_events", frozenset(self.ignore_events))
        object.__setattr__(self, "rename_events", _FrozenDict(self.rename_events))
        object.__setattr__(self, "rename_properties", _FrozenDict(self.rename_properties))

    @classmethod
    def from_flags(cls, ignore_event: Iterable[str] = (), rename_event: Iterable[str] = (),
                   rename_property: Iterable[str] = (),
                   user_properties_mode: str = "set",
                   import_job_id: str | None = None) -> "TranslationSettings":
        """Build settings from repeatable flag values; renames are written ``SRC::DST``."""
        if isinstance(ignore_event, str):
            raise ValueError(
                f"--ignore_event: expected a list of event names, got the string {ignore_event!r}")
        return cls(
            ignore_events=frozenset(ignore_event),
            rename_events=_pairs("--rename_event", rename_event),
            rename_properties=_pairs("--rename_property", rename_property),
            user_properties_mode=user_properties_mode,
            import_job_id=import_job_id,
        )
