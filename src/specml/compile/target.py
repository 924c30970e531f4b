"""Which column is the target, and which task it makes.

The words after "predict" (or "for ... detection", "classifier for ...") are matched against the
column names, best first:

====  =====================================================================================
score what matched
====  =====================================================================================
100   the whole phrase is the column name ("house prices" -> ``house_price``)
98    the same, word by word with abbreviations ("median house value" -> ``MedHouseVal``)
95    the phrase's last word is the column name ("movie genre" -> ``genre``)
90    a synonym of a word is the column name ("diabetes" -> ``outcome``, "churn" -> ``churned``)
85    every word of the phrase is a token of the column name ("house value" -> ``MedHouseVal``)
80    another word of the phrase is the column name
70    the column name holds the phrase's last word as a token (``sale_price``, ``is_spam``, ``MedHouseVal``)
65    the column name holds a synonym as a token
60    the column name holds another word as a token
40-58 the same after a typo fix (``difflib``, ratio >= 0.8)
====  =====================================================================================

Column names are split into tokens at ``_``, spaces and CamelCase (``MedHouseVal`` -> med, house, val);
a word and a token match when equal (singular), when one abbreviates the other (a prefix of at least 3
letters: med/median, val/value) or by a short list of usual abbreviations (avg, num, qty, pct, ...).
:func:`find_columns` uses the same scores for words that name input columns ("user and movie embeddings").

The best score wins; two columns with the best score make :class:`AmbiguousTarget` (unless the
task the words ask for keeps only one). No match at all: a conventional target name (outcome,
target, label, class, y) is used and the choice is said.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from specml.compile.errors import AmbiguousTarget, CompileError, TargetNotFound
from specml.compile.profile import ColumnProfile, TableProfile
from specml.data.task import MAX_CLASSES, TaskError, infer_task

__all__ = ["CONVENTIONAL", "MAX_CLASSES", "SYNONYMS", "TargetChoice", "decide_task", "find_columns", "find_targets"]

CONVENTIONAL = ("outcome", "target", "label", "class", "y", "labels", "is_target")

#: a word of the instruction -> column names that usually hold it
SYNONYMS: dict[str, tuple[str, ...]] = {
    "diabetes": ("outcome", "diabetic", "has_diabetes", "is_diabetic", "diabetes", "diagnosis"),
    "price": ("price", "saleprice", "sale_price", "sales_price", "house_price", "median_house_value",
              "median_value", "medv", "list_price", "cost", "value"),
    "churn": ("churn", "churned", "is_churn", "is_churned", "has_churned", "exited", "attrition", "churn_flag"),
    "spam": ("spam", "is_spam", "spam_label", "label"),
    "genre": ("genre", "genres", "main_genre", "category"),
    "click": ("click", "clicked", "is_click", "is_clicked", "clicks", "ctr"),
    "conversion": ("conversion", "converted", "is_converted", "convert", "purchased", "purchase"),
    "demand": ("demand", "quantity", "qty", "units_sold", "sales", "volume"),
    "fraud": ("fraud", "is_fraud", "isfraud", "fraudulent", "is_fraudulent"),
    "survival": ("survived", "survival", "is_alive"),
    "default": ("default", "defaulted", "is_default", "loan_default", "default_flag"),
    "income": ("income", "salary", "earnings", "wage"),
    "sentiment": ("sentiment", "polarity", "label"),
    "rating": ("rating", "score", "stars"),
    "revenue": ("revenue", "sales", "turnover"),
    "sale": ("sales", "revenue", "units_sold", "sold"),
    "disease": ("disease", "outcome", "diagnosis", "target", "has_disease"),
    "cancer": ("diagnosis", "malignant", "outcome", "target"),
    "quality": ("quality", "grade"),
    "species": ("species", "class", "variety"),
    "cost": ("cost", "charges", "expenses", "price"),
    "age": ("age",),
    "approval": ("approved", "approval", "loan_status", "status"),
    "delay": ("delay", "delayed", "arr_delay", "dep_delay"),
    "value": ("value", "median_house_value", "price"),
    "user": ("user_id", "userid", "uid", "customer_id", "client_id"),
    "customer": ("customer_id", "client_id", "user_id"),
    "movie": ("movie_id", "movieid", "film_id", "item_id"),
    "item": ("item_id", "itemid", "product_id", "movie_id", "sku"),
    "product": ("product_id", "item_id", "sku"),
    "store": ("store_id", "shop_id", "store_nbr"),
    "attrition": ("attrition", "churn", "churned", "exited", "left", "is_churned"),
    "salary": ("salary", "income", "wage", "earnings", "pay"),
    "earning": ("earnings", "income", "salary"),
    "survive": ("survived", "survival", "is_alive"),
    "outcome": ("outcome", "result", "target", "label"),
}

#: usual abbreviations in column names: token -> the word it stands for
ABBREVIATIONS = {"avg": "average", "ave": "average", "num": "number", "no": "number", "nbr": "number",
                 "qty": "quantity", "pct": "percent", "amt": "amount", "cnt": "count", "tot": "total",
                 "yr": "year", "mo": "month", "dt": "date", "ts": "timestamp", "temp": "temperature",
                 "pop": "population", "inc": "income", "val": "value", "med": "median", "rm": "room",
                 "bdrm": "bedroom", "bedrm": "bedroom", "sqft": "square_feet", "lat": "latitude", "lon": "longitude",
                 "lng": "longitude", "addr": "address", "desc": "description", "cat": "category", "prod": "product",
                 "cust": "customer", "usr": "user", "txn": "transaction", "prc": "price"}

_STOP = {"the", "a", "an", "of", "for", "whether", "if", "customer", "customers", "user", "users", "house", "home",
         "movie", "movies", "patient", "patients", "email", "emails", "rate", "probability", "chance", "likelihood",
         "score", "total", "number", "amount", "level", "risk", "status", "future", "next"}


def _norm(text: str) -> str:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _syn(word: str) -> tuple[str, ...]:
    return SYNONYMS.get(word) or SYNONYMS.get(word + "s") or SYNONYMS.get(word + "es") or ()


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _tokens(column: str) -> list[str]:
    return [_singular(t) for t in _norm(column).split("_") if t]


def _same(word: str, token: str) -> bool:
    """A word of the instruction and a token of a column name mean the same (equal, abbreviation)."""
    if word == token or ABBREVIATIONS.get(token) == word or ABBREVIATIONS.get(word) == token:
        return True
    short, long_ = sorted((word, token), key=len)
    return len(short) >= 3 and long_.startswith(short) and len(short) >= len(long_) / 2


def _fuzzy(word: str, options: list[str]) -> tuple[str, float] | None:
    hits = difflib.get_close_matches(word, options, n=1, cutoff=0.8)
    if not hits:
        return None
    return hits[0], difflib.SequenceMatcher(None, word, hits[0]).ratio()


def _score(phrase: str, column: str) -> tuple[float, str]:
    """How well ``column`` fits the target ``phrase`` (0 = not at all) and why."""
    raw = [w for w in _norm(phrase).split("_") if w]
    words = [_singular(w) for w in raw]
    said = dict(zip(words, raw))
    if not words:
        return 0.0, ""
    name = _norm(column)
    name_s = "_".join(_singular(t) for t in name.split("_"))
    whole = "_".join(words)
    if name_s in (whole, whole.replace("_", "")) or name in (_norm(phrase), _norm(phrase).replace("_", "")):
        return 100.0, f"column '{column}' is named like '{phrase}'"
    toks = _tokens(column)
    if len(toks) == len(words) > 1 and all(_same(w, t) for w, t in zip(words, toks)):
        return 98.0, f"column '{column}' is named like '{phrase}' (abbreviated)"
    head, others = words[-1], [w for w in words[:-1] if w not in _STOP]
    if name_s == head:
        return 95.0, f"column '{column}' is named '{phrase}'"
    for w in [head, *others]:
        if name in _syn(w) or name_s in _syn(w):
            return 90.0, f"'{column}' is a usual name for {said[w]}"
    if len(words) > 1 and all(any(_same(w, t) for t in toks) for w in words):
        return 85.0, f"column '{column}' holds every word of '{phrase}'"
    if name_s in others:
        return 80.0, f"column '{column}' is a word of '{phrase}'"
    if head in toks or any(_same(head, t) for t in toks):
        return 70.0, f"column '{column}' holds the word '{said[head]}'"
    for w in [head, *others]:
        if any(s in toks or s == name for s in _syn(w)):
            return 65.0, f"column '{column}' holds a usual name for {said[w]}"
    if any(w in toks or any(_same(w, t) for t in toks) for w in others):
        return 60.0, f"column '{column}' holds a word of '{phrase}'"
    best = 0.0, ""
    for w in [head, *others]:
        fixed = _fuzzy(said[w], sorted(SYNONYMS))  # a typo of a known word: its synonyms
        if fixed and (name in _syn(fixed[0]) or name_s in _syn(fixed[0])):
            best = max(best, (55.0, f"'{said[w]}' read as '{fixed[0]}'; '{column}' is a usual name for it"))
        near = _fuzzy(w, [name_s, *toks])
        if near:
            score = (48.0 if near[0] == name_s else 40.0) + 10.0 * near[1]
            best = max(best, (score, f"'{said[w]}' read as '{near[0]}' (a typo?) in column '{column}'"))
    return best


@dataclass
class TargetChoice:
    column: str
    phrase: str | None  # the words that named it; None = a conventional name was used
    reason: str


def _compatible(col: ColumnProfile, task_hint: str | None) -> bool:
    if task_hint == "regression":
        return col.numeric and col.distinct > 2
    if task_hint in ("binary",):
        return col.distinct == 2
    if task_hint in ("classification", "multiclass"):
        return 2 <= col.distinct <= MAX_CLASSES
    return True


def _resolve_phrase(phrase: str, profile: TableProfile, task_hint: str | None) -> TargetChoice | None:
    scored = []
    for col in profile.columns:
        if col.constant:
            continue
        score, why = _score(phrase, col.name)
        if score >= 40 and not (col.id_like and score < 90):
            scored.append((score, col, why))
    if not scored:
        return None
    fitting = [x for x in scored if _compatible(x[1], task_hint)]
    if task_hint and fitting:
        scored = fitting
    top = max(s for s, _, _ in scored)
    best = [(c, why) for s, c, why in scored if s == top]
    if len(best) > 1:
        fitting = [(c, why) for c, why in best if _compatible(c, task_hint)]
        if len(fitting) == 1:
            best = fitting
        else:
            raise AmbiguousTarget(phrase, [c.name for c, _ in best])
    col, why = best[0]
    return TargetChoice(col.name, phrase, why)


def _conventional(profile: TableProfile, words: list[str]) -> TargetChoice:
    by_lower = {c.name.lower(): c.name for c in profile.columns if not c.constant}
    found = [by_lower[n] for n in CONVENTIONAL if n in by_lower]
    if len(found) > 1:
        raise AmbiguousTarget(" and ".join(words) if words else "the target", found)
    if not found:
        said = f"no column matches '{' and '.join(words)}'" if words else "the instruction names no target"
        raise TargetNotFound(
            f"{said}, and table '{profile.table}' has none of the usual target columns "
            f"({', '.join(CONVENTIONAL[:5])}). Its columns: {', '.join(profile.names)}. "
            "Name the column in the instruction, e.g. \"predict <column>\".", profile.names)
    col = found[0]
    said = (f"no column matches '{' and '.join(words)}'" if words else "the instruction names no target")
    return TargetChoice(col, None, f"{said}: using the conventional target column '{col}'")


def find_targets(phrases: list[str], profile: TableProfile, task_hint: str | None = None) -> list[TargetChoice]:
    """The target column(s) for the target phrases of an instruction (see the module doc for the rules)."""
    if not phrases:
        return [_conventional(profile, [])]
    choices: list[TargetChoice] = []
    unmatched: list[str] = []
    for phrase in phrases:
        choice = _resolve_phrase(phrase, profile, task_hint)
        if choice is None:
            unmatched.append(phrase)
        else:
            choices.append(choice)
    if unmatched:
        if choices:
            raise TargetNotFound(
                f"no column of table '{profile.table}' matches '{', '.join(unmatched)}' "
                f"(found: {', '.join(c.column for c in choices)}). Its columns: {', '.join(profile.names)}.",
                profile.names)
        return [_conventional(profile, unmatched)]
    columns = [c.column for c in choices]
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        raise CompileError(f"the words {', '.join(repr(c.phrase) for c in choices)} all point at column "
                           f"'{dupes[0]}'; name each target column")
    return choices


def find_columns(phrases: list[str], profile: TableProfile, exclude: tuple[str, ...] | list[str] = ()
                 ) -> tuple[list[str], list[str]]:
    """The input columns that words name ("user" -> ``user_id``, "movie" -> ``item_id``), scored like a
    target (60 or more: a word of the column name, at least); ``(columns, phrases that named none)``.
    Two columns equally good: CompileError naming both."""
    found: list[str] = []
    unmatched: list[str] = []
    for phrase in phrases:
        scored = [(s, c.name) for c in profile.columns if c.name not in exclude and not c.constant
                  for s, _ in [_score(phrase, c.name)] if s >= 60]
        if not scored:
            unmatched.append(phrase)
            continue
        top = max(s for s, _ in scored)
        best = [c for s, c in scored if s == top]
        if len(best) > 1:
            raise CompileError(f"which column is '{phrase}'? Candidates: {', '.join(repr(c) for c in best)}; "
                               "name the column as it is written")
        if best[0] not in found:
            found.append(best[0])
    return found, unmatched


def decide_task(col: ColumnProfile, hint: str | None) -> tuple[str, str]:
    """binary | multiclass | regression for one target column, and why (:func:`specml.data.task.infer_task`,
    the rule training uses too)."""
    try:
        what = f"'{col.name}' ({col.type}, {col.distinct} distinct values)"
        return infer_task(col.kind, col.distinct, hint, what=what)
    except TaskError as err:
        raise CompileError(str(err)) from None
