"""The knowledge head: answers common factual questions exactly, from a curated fact table.

The facts live in routing/data/knowledge.yaml. A question is answered only when the whole prompt
(less polite wrapping such as "please" or "can you tell me") matches one question template and the
template's entity is in the table: "What is the capital of France?" -> "Paris". Anything else
abstains: unknown entities, negated or qualified questions ("former capital", "in 1500", "not"),
two entities, or templates that disagree. A false answer is much worse than no answer.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from routing.heads.base import Ballot, Head, HeadContext

FACTS_PATH = Path(__file__).resolve().parent.parent / "data" / "knowledge.yaml"
CONFIDENCE = 0.9
MAX_PROMPT_CHARS = 300


# --------------------------------------------------------------------------- loading


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping in the fact file repeats a key (PyYAML would silently keep the last one)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise DuplicateKeyError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def load_yaml(path: Path = FACTS_PATH) -> dict[str, Any]:
    """Parse the fact file, rejecting duplicate keys."""
    with path.open(encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


_ARTICLES = re.compile(r"^(?:(?:the|a|an|one|1|our|each|every|single) )+")


def _key(text: str) -> str:
    """Matching key: accents, case, dots, commas, apostrophes and a leading "the" ignored."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("&", " and ")
    text = re.sub(r"[.,'\"]", "", text)
    text = re.sub(r"[-\u2010-\u2014_]", " ", text)
    text = " ".join(text.split())
    return text.removeprefix("the ")


def _thing_key(text: str) -> str:
    """Matching key for a counted-in thing: also drops "a", "an", "one", "our"..."""
    return _ARTICLES.sub("", _key(text))


@dataclass(frozen=True)
class Element:
    number: int
    symbol: str
    name: str


@dataclass(frozen=True)
class Facts:
    capitals: dict[str, str]  # canonical country -> capital
    currencies: dict[str, str]  # canonical country -> currency
    countries: dict[str, str]  # key(name or alias) -> canonical country
    capital_keys: dict[str, frozenset[str]]  # canonical country -> keys of its capital (with aliases)
    capital_of: dict[str, frozenset[str]]  # key(capital or alias) -> countries it is the capital of
    other_cities: frozenset[str]  # keys of well-known cities that are nobody's capital
    definite: frozenset[str]
    elements_by_name: dict[str, Element]  # key(name or alias) -> element
    elements_by_symbol: dict[str, Element]  # exact symbol -> element
    elements_by_number: dict[int, Element]
    planets: tuple[str, ...]
    planet_superlatives: dict[str, str]
    planet_nicknames: dict[str, str]
    geo: dict[str, dict[str, str]]  # "continent"/"ocean" -> superlative -> answer
    counts: dict[str, dict[str, int]]  # unit -> key(thing) -> count ("" = how many are there)
    unit_aliases: dict[str, str]
    thing_aliases: dict[str, str]
    light: dict[str, str]
    water: dict[str, dict[str, str]]

    def country(self, text: str) -> str | None:
        return self.countries.get(_key(text))

    def display(self, country: str) -> str:
        return f"the {country}" if country in self.definite else country


def _add_unique(index: dict[Any, Any], key: Any, value: Any, what: str) -> None:
    if key in index and index[key] != value:
        raise ValueError(f"{what} {key!r} means both {index[key]!r} and {value!r}")
    index[key] = value


def build_facts(data: dict[str, Any]) -> Facts:
    """Index the parsed fact file; raises ValueError on any inconsistency."""
    capitals: dict[str, str] = dict(data["capitals"])
    currencies: dict[str, str] = dict(data["currencies"])
    countries: dict[str, str] = {}
    for name in (*capitals, *currencies):
        _add_unique(countries, _key(name), name, "country")
    for name, aliases in data["country_aliases"].items():
        if name not in countries.values():
            raise ValueError(f"alias for unknown country {name!r}")
        for alias in aliases:
            _add_unique(countries, _key(alias), name, "country alias")
    definite = frozenset(data["definite_article"])
    if not definite <= set(countries.values()):
        raise ValueError(f"definite_article names unknown countries: {sorted(definite - set(countries.values()))}")

    capital_aliases: dict[str, list[str]] = data["capital_aliases"]
    if not set(capital_aliases) <= set(capitals.values()):
        raise ValueError("capital_aliases names a city that is no capital")
    capital_keys: dict[str, frozenset[str]] = {}
    capital_of: dict[str, set[str]] = {}
    for country, capital in capitals.items():
        keys = frozenset(_key(name) for name in (capital, *capital_aliases.get(capital, [])))
        capital_keys[country] = keys
        for key in keys:
            capital_of.setdefault(key, set()).add(country)
    other_cities = frozenset(_key(city) for city in data["non_capital_cities"])
    if other_cities & set(capital_of):
        raise ValueError(f"non_capital_cities lists capitals: {sorted(other_cities & set(capital_of))}")

    by_name: dict[str, Element] = {}
    by_symbol: dict[str, Element] = {}
    by_number: dict[int, Element] = {}
    for row in data["elements"]:
        element = Element(number=int(row["number"]), symbol=str(row["symbol"]), name=str(row["name"]))
        for name in (element.name, *row.get("aliases", [])):
            _add_unique(by_name, _key(name), element, "element name")
        _add_unique(by_symbol, element.symbol, element, "element symbol")
        _add_unique(by_number, element.number, element, "atomic number")

    solar = data["solar_system"]
    planets = tuple(solar["planets"])
    if int(solar["planet_count"]) != len(planets):
        raise ValueError("planet_count does not match the planet list")
    continents, oceans = data["continents"], data["oceans"]
    world = ("world", "earth", "planet", "planet earth")

    counts: dict[str, dict[str, int]] = {}
    for unit, things in data["counts"].items():
        for thing, count in things.items():
            _add_unique(counts.setdefault(unit, {}), _thing_key(thing), int(count), f"count of {unit} in")
    counts.setdefault("planets", {}).update({"": len(planets), "solar system": len(planets)})
    counts.setdefault("continents", {}).update(dict.fromkeys(("", *world), int(continents["count"])))
    counts.setdefault("oceans", {}).update(dict.fromkeys(("", *world), int(oceans["count"])))

    return Facts(
        capitals=capitals,
        currencies=currencies,
        countries=countries,
        capital_keys=capital_keys,
        capital_of={key: frozenset(names) for key, names in capital_of.items()},
        other_cities=other_cities,
        definite=definite,
        elements_by_name=by_name,
        elements_by_symbol=by_symbol,
        elements_by_number=by_number,
        planets=planets,
        planet_superlatives={_key(k): v for k, v in solar["superlatives"].items()},
        planet_nicknames={_key(k): v for k, v in solar["nicknames"].items()},
        geo={
            "continent": {k: str(continents[k]) for k in ("largest", "smallest")},
            "ocean": {k: str(oceans[k]) for k in ("largest", "smallest", "deepest")},
        },
        counts=counts,
        unit_aliases={_key(k): _key(v) for k, v in data["unit_aliases"].items()},
        thing_aliases={_thing_key(k): _thing_key(v) for k, v in data["container_aliases"].items()},
        light=dict(data["constants"]["speed_of_light"]),
        water={kind: dict(values) for kind, values in data["constants"]["water"].items()},
    )


@lru_cache(maxsize=1)
def load_facts() -> Facts:
    """The shipped fact table, parsed and indexed once per process."""
    return build_facts(load_yaml(FACTS_PATH))


# --------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class Hit:
    answer: str
    entity: str


Resolver = Callable[[Facts, re.Match[str]], Hit | None]


@dataclass(frozen=True)
class Template:
    name: str
    regex: re.Pattern[str]
    resolve: Resolver


_WHAT = r"(?:what(?:'s|s| is)|which is)"
_SS = r"(?: in (?:our|the) solar system)?"
_WORLD = r"(?: (?:in|on) (?:the )?(?:world|earth|planet|planet earth))?(?P<by> by (?:area|size|surface area))?"
_COND = r"(?: at sea level| (?:at|under) (?:standard|normal) (?:atmospheric )?pressure| at 1 atm(?:osphere)?)?"
_TEMP_UNIT = r"(?: in (?:degrees )?(?P<u>celsius|centigrade|fahrenheit|kelvins?|°c|°f|c|f|k))?"
_CAP = r"capital(?: city)?"

_ORDINALS = {
    **{w: i for i, w in enumerate(("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"), 1)},
    **{w: i for i, w in enumerate(("1st", "2nd", "3rd", "4th", "5th", "6th", "7th", "8th"), 1)},
}
_PLANET_ADJ = {
    "largest": "largest",
    "biggest": "largest",
    "smallest": "smallest",
    "hottest": "hottest",
    "closest": "closest to the sun",
    "nearest": "closest to the sun",
    "farthest": "farthest from the sun",
    "furthest": "farthest from the sun",
    "most distant": "farthest from the sun",
}
_GEO_ADJ = {"largest": "largest", "biggest": "largest", "smallest": "smallest", "deepest": "deepest"}
_TEMP_UNITS = {"celsius": "celsius", "centigrade": "celsius", "°c": "celsius", "c": "celsius",
               "fahrenheit": "fahrenheit", "°f": "fahrenheit", "f": "fahrenheit",
               "kelvin": "kelvin", "kelvins": "kelvin", "k": "kelvin"}  # fmt: skip


def _capital(facts: Facts, m: re.Match[str]) -> Hit | None:
    country = facts.country(m["c"])
    if country is None or country not in facts.capitals:
        return None
    return Hit(facts.capitals[country], country)


def _country_of_capital(facts: Facts, m: re.Match[str]) -> Hit | None:
    countries = facts.capital_of.get(_key(m["city"]), frozenset())
    if len(countries) != 1:  # unknown, or the capital of two entries (London: UK and England)
        return None
    (country,) = countries
    return Hit(country, country)


def _check(facts: Facts, city_text: str, country_text: str) -> Hit | None:
    """ "Is <city> the capital of <country>?": yes, or no when <city> is a known other city."""
    country = facts.country(country_text)
    if country is None or country not in facts.capitals:
        return None
    city = _key(city_text)
    capital = facts.capitals[country]
    statement = f"the capital of {facts.display(country)} is {capital}".removesuffix(".") + "."
    if city in facts.capital_keys[country]:
        return Hit(f"Yes, {statement}", country)
    if city in facts.capital_of or city in facts.other_cities:
        return Hit(f"No, {statement}", country)
    return None  # not a city we know: it may be a misspelling, a nickname, or a trick


def _capital_check(facts: Facts, m: re.Match[str]) -> Hit | None:
    return _check(facts, m["city"], m["c"])


def _capital_check_split(facts: Facts, m: re.Match[str]) -> Hit | None:
    """ "Is the capital of <country> <city>?": try every split, keep it only if exactly one fits."""
    words = m["rest"].split(" ")
    hits = [
        hit
        for i in range(1, len(words))
        if (hit := _check(facts, " ".join(words[i:]), " ".join(words[:i]))) is not None
    ]
    return hits[0] if len(hits) == 1 else None


def _currency(facts: Facts, m: re.Match[str]) -> Hit | None:
    country = facts.country(m["c"])
    if country is None or country not in facts.currencies:
        return None
    return Hit(facts.currencies[country], country)


def _element_named(facts: Facts, text: str) -> Element | None:
    return facts.elements_by_name.get(_key(re.sub(r"^(?:the )?(?:chemical )?element ", "", text, flags=re.I)))


def _symbol(facts: Facts, text: str, *, strict: bool) -> Element | None:
    """Exact symbol ("Fe"); unless strict, also all lower case ("fe"), never "FE" or "fE"."""
    element = facts.elements_by_symbol.get(text)
    if element is None and not strict and text.islower():
        element = facts.elements_by_symbol.get(text.capitalize())
    return element


def _symbol_of(facts: Facts, m: re.Match[str]) -> Hit | None:
    element = _element_named(facts, m["e"])
    return Hit(element.symbol, element.name) if element else None


def _element_by_symbol(facts: Facts, m: re.Match[str]) -> Hit | None:
    element = _symbol(facts, m["s"], strict=False)
    return Hit(element.name, element.symbol) if element else None


def _element_by_symbol_strict(facts: Facts, m: re.Match[str]) -> Hit | None:
    element = _symbol(facts, m["s"], strict=True)
    return Hit(element.name, element.symbol) if element else None


def _atomic_number(facts: Facts, m: re.Match[str]) -> Hit | None:
    element = _element_named(facts, m["e"]) or _symbol(facts, m["e"], strict=True)
    return Hit(str(element.number), element.name) if element else None


def _element_by_number(facts: Facts, m: re.Match[str]) -> Hit | None:
    element = facts.elements_by_number.get(int(m["n"]))
    return Hit(element.name, str(element.number)) if element else None


def _planet_ordinal(facts: Facts, m: re.Match[str]) -> Hit | None:
    position = _ORDINALS.get(m["ord"].casefold())
    if position is None or position > len(facts.planets):
        return None
    return Hit(facts.planets[position - 1], m["ord"].casefold())


def _planet_superlative(facts: Facts, m: re.Match[str]) -> Hit | None:
    adj = _PLANET_ADJ.get(m["adj"].casefold())
    prep = (m.groupdict().get("prep") or "").casefold()
    if adj is None or (prep and not adj.endswith(f"{prep} the sun")) or (not prep and "sun" in adj):
        return None  # "closest planet" (to what?), "closest planet from the sun"
    answer = facts.planet_superlatives.get(adj)
    return Hit(answer, adj) if answer else None


def _planet_nickname(facts: Facts, m: re.Match[str]) -> Hit | None:
    answer = facts.planet_nicknames.get(_key(m["nick"]))
    return Hit(answer, _key(m["nick"])) if answer else None


def _geo_superlative(facts: Facts, m: re.Match[str]) -> Hit | None:
    adj = _GEO_ADJ.get(m["adj"].casefold())
    if adj is None or (m["by"] and adj not in ("largest", "smallest")):
        return None
    answer = facts.geo[m["thing"].casefold()].get(adj)
    return Hit(answer, f"{adj} {m['thing'].casefold()}") if answer else None


def _count(facts: Facts, m: re.Match[str]) -> Hit | None:
    unit = _key(m["unit"])
    unit = facts.unit_aliases.get(unit, unit)
    thing = _thing_key(m["thing"] or "")
    thing = facts.thing_aliases.get(thing, thing)
    table = facts.counts.get(unit, {})
    if thing not in table and thing.endswith("s") and thing.removesuffix("s") in table:
        thing = thing.removesuffix("s")  # "spiders have how many legs": each spider has them
    count = table.get(thing)
    return Hit(str(count), f"{unit} in {thing}".strip().removesuffix(" in")) if count is not None else None


def _speed_of_light(facts: Facts, m: re.Match[str]) -> Hit | None:
    unit = (m.groupdict().get("u") or "m/s").casefold()
    unit = "km/s" if unit.startswith("k") else "m/s"
    return Hit(facts.light[unit], "speed of light")


def _water(facts: Facts, m: re.Match[str]) -> Hit | None:
    kind, substance = m["kind"].casefold(), _key(m["sub"]).removeprefix("pure ")
    if kind.startswith("boil"):
        if substance != "water":
            return None  # "boiling point of ice"
        table = facts.water["boiling"]
    else:
        if kind.startswith("freez") and substance != "water":
            return None  # "freezing point of ice"
        table = facts.water["freezing"]  # melting point of ice (or water) is the freezing point
    unit = _TEMP_UNITS.get((m["u"] or "").casefold(), "default")
    label = "boiling" if kind.startswith("boil") else "freezing"
    return Hit(table[unit], f"{label} point of water ({unit})")


def _t(name: str, pattern: str, resolve: Resolver) -> Template:
    return Template(name, re.compile(pattern, re.IGNORECASE), resolve)


_NAME = r"(?P<e>[a-z]+)"
_SYM = r"(?P<s>[a-z]{1,2})"
_NUM = r"(?P<n>\d{1,3})"
_SYMBOL = r"(?:chemical |atomic |element(?:al)? )?symbol"
_UNIT = r"(?P<unit>[a-z]+)"
_IN = r"(?: are there| there are| are| is| exist)?"

TEMPLATES: tuple[Template, ...] = (
    # capitals
    _t("capital.what_is", rf"{_WHAT} the {_CAP} of (?P<c>.+)", _capital),
    _t("capital.what_city", rf"(?:what|which) city is (?:the )?{_CAP} of (?P<c>.+)", _capital),
    _t("capital.name", rf"(?:name|give(?: me)?|state) the {_CAP} of (?P<c>.+)", _capital),
    _t("capital.bare", rf"(?:the )?{_CAP} of (?P<c>.+)", _capital),
    _t("capital.possessive", rf"(?:{_WHAT} )?(?P<c>.+?)(?:'s|') {_CAP}", _capital),
    _t("capital.suffix", rf"(?P<c>.+?) {_CAP}", _capital),
    _t("capital.reverse_has", rf"(?:which|what) country has (?P<city>.+?) as (?:its|the) {_CAP}", _country_of_capital),
    _t("capital.reverse_is", rf"(?P<city>.+?) is the {_CAP} of (?:which|what) country", _country_of_capital),
    _t(
        "capital.reverse_of",
        rf"(?:of )?(?:which|what) country is (?P<city>.+?) the {_CAP}(?: of)?",
        _country_of_capital,
    ),
    _t(
        "capital.reverse_whose",
        rf"(?:which|what) country(?:'s| has a| has the) {_CAP} is (?P<city>.+)",
        _country_of_capital,
    ),
    _t("capital.check", rf"is (?P<city>.+?) the {_CAP} of (?P<c>.+)", _capital_check),
    _t("capital.check_split", rf"is the {_CAP} of (?P<rest>.+)", _capital_check_split),
    # currencies
    _t("currency.what_is", rf"{_WHAT} the (?:official |national )?currency (?:of|in|used in|for) (?P<c>.+)", _currency),
    _t("currency.does_use", r"(?:what|which) (?:currency|money) (?:does|do) (?P<c>.+?) use", _currency),
    _t("currency.used_in", r"(?:what|which) (?:currency|money) is used in (?P<c>.+)", _currency),
    _t("currency.bare", r"(?:the )?(?:official |national )?currency (?:of|in|used in) (?P<c>.+)", _currency),
    _t("currency.possessive", rf"(?:{_WHAT} )?(?P<c>.+?)(?:'s|') (?:official |national )?currency", _currency),
    # elements
    _t("element.symbol_of", rf"(?:{_WHAT} )?(?:the )?{_SYMBOL} (?:for|of) (?P<e>.+)", _symbol_of),
    _t("element.possessive_symbol", rf"(?:{_WHAT} )?{_NAME}'s {_SYMBOL}", _symbol_of),
    _t(
        "element.has_symbol",
        rf"(?:which|what) (?:chemical )?element (?:has|uses|is represented by|is denoted by) "
        rf"(?:the )?{_SYMBOL} {_SYM}",
        _element_by_symbol,
    ),
    _t("element.whose_symbol", rf"(?:which|what) element(?:'s| has a) {_SYMBOL} is {_SYM}", _element_by_symbol),
    _t(
        "element.with_symbol",
        rf"(?:the )?(?:chemical )?element (?:with|having) (?:the )?{_SYMBOL} {_SYM}",
        _element_by_symbol,
    ),
    _t(
        "element.symbol_stands_for",
        rf"what does (?:the )?{_SYMBOL} {_SYM} (?:stand for|represent|mean)"
        r"(?: in chemistry| on the periodic table)?",
        _element_by_symbol,
    ),
    _t("element.what_is_symbol", rf"what (?:chemical )?element is {_SYM}", _element_by_symbol_strict),
    _t(
        "element.stands_for",
        rf"what (?:element )?does {_SYM} (?:stand for|represent) "
        r"(?:in chemistry|on the periodic table)",
        _element_by_symbol_strict,
    ),
    _t("element.atomic_number_of", r"(?:" + _WHAT + r" )?(?:the )?atomic number (?:of|for) (?P<e>.+)", _atomic_number),
    _t("element.possessive_number", rf"(?:{_WHAT} )?{_NAME}'s atomic number", _atomic_number),
    _t(
        "element.has_number",
        rf"(?:which|what) (?:chemical )?element (?:has|is|with) (?:the )?atomic number "
        rf"(?:of )?{_NUM}",
        _element_by_number,
    ),
    _t(
        "element.number",
        rf"(?:{_WHAT} )?(?:the )?element (?:number |with (?:the )?atomic number )?{_NUM}",
        _element_by_number,
    ),
    # planets
    _t(
        "planet.ordinal",
        rf"(?:{_WHAT} |(?:which|what) planet is )?(?:the )?(?P<ord>\w+)(?: planet)? "
        rf"(?:from|away from) the sun{_SS}",
        _planet_ordinal,
    ),
    _t("planet.superlative", rf"(?:{_WHAT} )?(?:the )?(?P<adj>\w+) planet{_SS}", _planet_superlative),
    _t("planet.which_is", rf"(?:which|what) planet is (?:the )?(?P<adj>\w+)(?: planet)?{_SS}", _planet_superlative),
    _t(
        "planet.sun_distance",
        rf"(?:{_WHAT} |(?:which|what) planet is )?(?:the )?(?:planet )?"
        rf"(?P<adj>closest|nearest|farthest|furthest|most distant) (?:planet )?(?P<prep>to|from) the sun{_SS}",
        _planet_superlative,
    ),
    _t(
        "planet.nickname",
        rf"(?:{_WHAT} |(?:which|what) planet is (?:known as |called |nicknamed )?)?"
        r"(?:the )?(?P<nick>\w+ planet)",
        _planet_nickname,
    ),
    # continents and oceans
    _t("geo.superlative", rf"(?:{_WHAT} )?(?:the )?(?P<adj>\w+) (?P<thing>continent|ocean){_WORLD}", _geo_superlative),
    _t(
        "geo.which_is", rf"(?:which|what) (?P<thing>continent|ocean) is (?:the )?(?P<adj>\w+){_WORLD}", _geo_superlative
    ),
    # counts: "how many days are in a year", "how many sides does a hexagon have", "how many planets are there"
    _t("count.in", rf"how many {_UNIT}{_IN}(?: (?:in|on|within) (?P<thing>.+))?", _count),
    _t("count.have", rf"how many {_UNIT} (?:does|do) (?P<thing>.+?) have", _count),
    _t("count.has", rf"how many {_UNIT} (?:has|have) (?P<thing>.+)", _count),
    _t("count.number_of", rf"(?:(?:{_WHAT} )?the )?number of {_UNIT}(?: (?:in|on|of) (?P<thing>.+))?", _count),
    _t("count.has_how_many", rf"(?P<thing>.+?) (?:has|have) how many {_UNIT}", _count),
    # constants
    _t(
        "light.speed",
        rf"(?:{_WHAT} )?(?:the )?speed of light(?: in (?:a )?vacuum)?"
        r"(?: in (?P<u>m/s|meters per second|metres per second|km/s|kilometers per second|kilometres per second))?",
        _speed_of_light,
    ),
    _t(
        "light.how_fast",
        r"how fast (?:is light|does light travel|does light move)(?: in (?:a )?vacuum)?",
        _speed_of_light,
    ),
    _t(
        "water.point",
        rf"(?:{_WHAT} )?(?:the )?(?P<kind>boiling|freezing|melting) (?:point|temperature) of "
        rf"(?P<sub>(?:pure )?water|ice){_COND}{_TEMP_UNIT}{_COND}",
        _water,
    ),
    _t(
        "water.what_temperature",
        rf"(?:at )?(?:what|which) temperature (?:does )?(?P<sub>(?:pure )?water|ice) "
        rf"(?P<kind>boil|freeze|melt)(?: at)?{_COND}{_TEMP_UNIT}{_COND}",
        _water,
    ),
    _t(
        "water.boils_at",
        rf"(?P<sub>(?:pure )?water|ice) (?P<kind>boils|freezes|melts) at (?:what|which) "
        rf"temperature{_COND}{_TEMP_UNIT}{_COND}",
        _water,
    ),
    _t(
        "water.boils_at_degrees",
        r"(?P<sub>(?:pure )?water|ice) (?P<kind>boils|freezes|melts) at how many degrees"
        rf"(?: (?P<u>celsius|centigrade|fahrenheit|kelvin|c|f|k))?{_COND}",
        _water,
    ),
    _t(
        "water.how_hot",
        r"how (?:hot|warm) (?:must|does|do|should|has|have) (?P<sub>(?:pure )?water|ice) "
        rf"(?:get|be|become|(?:need|have|has) to (?:get|be)) to (?P<kind>boil){_COND}{_TEMP_UNIT}{_COND}",
        _water,
    ),
    _t(
        "water.how_many_degrees",
        r"how many degrees(?: (?P<u>celsius|centigrade|fahrenheit|kelvin|c|f|k))? "
        rf"(?:does|do) (?P<sub>(?:pure )?water|ice) (?P<kind>boil|freeze|melt)(?: at)?{_COND}",
        _water,
    ),
)


# --------------------------------------------------------------------------- the head

_APPLIES = re.compile(
    r"capital|currenc|money|symbol|element|atomic|planet|\bsun\b|continent|ocean|\blight\b|boil|freez|melt"
    r"|how many|number of|stand for",
    re.IGNORECASE,
)
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u201c": '"', "\u201d": '"'})
_TRAILING = re.compile(r"[\s?!.]+$")
_PREFIX = re.compile(
    r"^(?:(?:hey|hi|hello|ok|okay|so|quick question)[,:!]? )?(?:(?:please|pls),? )?"
    r"(?:(?:can|could|would) you (?:please )?(?:tell me|say) |(?:please )?tell me |i (?:want|would like) to know "
    r"|do you know )?",
    re.IGNORECASE,
)
_SUFFIX = re.compile(r",? (?:please|pls|thanks|thank you)$", re.IGNORECASE)
# Words that negate, hedge, move the question in time or make it hypothetical: never answer those.
_TWIST = re.compile(
    r"\b(?:not|never|no longer|nor|except|excluding|other than|besides|apart from|instead|other|another|else"
    r"|former|formerly|previous|previously|old|older|oldest|ancient|historic|historical|historically"
    r"|original|originally|used to|was|were|will|would|shall|might|future|next|before|after|until|till|during"
    r"|since|still|anymore|or|vs|versus|if|suppose|supposing|imagine|pretend|hypothetical|hypothetically"
    r"|fictional|fiction|fake|alternate|opposite|wrong|incorrect|false|joke|rhymes?|spell|spelled|spelling"
    r"|backwards?|reverse|translate|translated|language|pronounce|letters?|why|really|actually|also"
    r"|isnt|arent|doesnt|dont|wasnt|didnt|bce?|ad)\b"
    r"|n't\b|\b(?:1\d{3}|20\d{2})s?\b",
    re.IGNORECASE,
)


def _core(prompt: str) -> str:
    """The question itself: quotes unified, whitespace and commas collapsed, politeness and end
    punctuation removed."""
    text = " ".join(unicodedata.normalize("NFKC", prompt).translate(_QUOTES).replace(", ", " ").split())
    text = _TRAILING.sub("", text)
    text = _SUFFIX.sub("", _PREFIX.sub("", text, count=1))
    return _TRAILING.sub("", text)


# The same question with its wh-word moved to where the templates expect it (English word order, not
# facts): "Japan's capital city is called what" -> "Japan's capital city"; "which chemical symbol does
# gold have" -> "gold's chemical symbol". Tried only when no template matches the question as asked.
_REWRITES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(.+?) (?:is|are) (?:called |named |known as )?(?:what|which)$", re.IGNORECASE), r"\1"),
    (re.compile(r"^(?:which|what) ((?:\w+ ){0,2}\w+) (?:does|do) (\w+(?: \w+)?) have$", re.IGNORECASE), r"\2's \1"),
    (re.compile(r"^(.+?) (?:in chemistry|on the periodic table)$", re.IGNORECASE), r"\1"),
)


MAX_PHRASINGS = 6


def _phrasings(core: str) -> Iterator[str]:
    """`core`, then each rewrite of it (and of a rewrite) that differs, made only when asked for: the
    question as asked usually answers. At most MAX_PHRASINGS."""
    found = [core]
    for count, text in enumerate(found):  # `found` grows as it is read
        if count == MAX_PHRASINGS:
            return
        yield text
        for pattern, replacement in _REWRITES:
            rewritten = pattern.sub(replacement, text)
            if rewritten != text and rewritten not in found:
                found.append(rewritten)


class KnowledgeHead(Head):
    """Answers common facts (capitals, currencies, elements, planets, units...) from knowledge.yaml."""

    name = "knowledge"
    skill_type = "knowledge"
    timeout_s = 1.0

    def applies(self, prompt: str) -> bool:
        return len(prompt) <= MAX_PROMPT_CHARS and _APPLIES.search(prompt) is not None

    def answer(self, prompt: str, ctx: HeadContext) -> Ballot:
        started = time.perf_counter()
        if len(prompt) > MAX_PROMPT_CHARS:
            return self.abstain(started, "prompt too long for a fact question")
        core = _core(prompt)
        if not core:
            return self.abstain(started, "empty prompt")
        try:
            facts = load_facts()
        except (OSError, yaml.YAMLError, ValueError, KeyError, TypeError) as exc:
            return self.abstain(started, f"fact table unavailable: {exc}")

        matched: list[str] = []
        hits: list[tuple[Template, Hit]] = []
        for phrasing in _phrasings(core):
            for template in TEMPLATES:
                match = template.regex.fullmatch(phrasing)
                if match is None:
                    continue
                matched.append(template.name)
                hit = template.resolve(facts, match)
                if hit is not None:
                    hits.append((template, hit))
            if hits:
                break  # the question as asked, or its first rewrite that a template answers

        if not matched:
            return self.abstain(started, "no question template matched")
        if twist := _TWIST.search(core):
            return self.abstain(started, f"negated or qualified question ({twist.group(0)!r})")
        if not hits:
            return self.abstain(started, f"unknown or ambiguous entity (templates: {', '.join(matched)})")
        if len({hit.answer for _, hit in hits}) > 1:
            return self.abstain(started, "templates disagree: " + "; ".join(f"{t.name}={h.answer}" for t, h in hits))

        template, hit = hits[0]
        return self.ballot(
            hit.answer,
            CONFIDENCE,
            started,
            template=template.name,
            templates=[t.name for t, _ in hits],
            entity=hit.entity,
            question=core,
            source="routing/data/knowledge.yaml",
        )
