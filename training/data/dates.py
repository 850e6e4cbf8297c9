"""Dates written the ways people write them, paired with their ISO 8601 form: the date-translation task.

"25 November 2026", "nov 25 '26", "Wednesday, 25.11.2026", "2026/11/25", "25/11/2026", "November 25th, 2026",
"le 25 novembre 2026", "miércoles, 25 de noviembre de 2026" ... -> "2026-11-25". The numeric forms are the same in
every language; the named forms use the month and weekday names (full and abbreviated) of English, German, French
and Spanish, and a named weekday is always the weekday of the date.

Every form reads one way only: day-first or year-first numbers (never the US month-first "11/25/2026", which cannot
be told from day-first when the day is 12 or less), and two-digit years only when the date range spans less than a
century, so that "'26" names one year of it. A model can therefore learn every example exactly.

A longer-input variant (`filler_words`) writes each date inside a line of filler words, e.g. "please confirm
budget review moved 25 November 2026 team notes draft agenda window", with a few words on either side: the source
grows to about a hundred characters and the date sits in its middle, far from both ends, so an encoder that hands the
decoder one fixed vector (its final states, one per direction) must carry the date through many steps of filler. The
filler words are lower-case English words that are no part of any date form (no digits, no month or weekday name or
abbreviation, none of the forms' own words), drawn from their own seeded stream: the dates, forms and languages of a
split are those of the same split without filler.

Splits are by date, not by string: the test dates and the validation dates are drawn first, one example each, from a
seeded permutation of the range, and the training examples use only the dates left. So no test date is seen in
training in any form, and the test split depends only on the seed, the range and its own size.

Example:
    splits = date_splits({"train": 20000, "validation": 500, "test": 1000}, seed=0)
    splits["test"][0]  # Example(source='mer. 25 nov. 2026', target='2026-11-25', date=..., form=..., language='fr')
    sources, targets = as_pairs(splits["train"])
"""

import collections
import datetime

import numpy as np

LANGUAGES = ("en", "de", "fr", "es")

# Month and weekday names, full and abbreviated, as each language writes them inside a date (French and Spanish in
# lower case). Weekdays start on Monday, as `datetime.date.weekday()` counts them.
MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November",
           "Dezember"),
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre",
           "décembre"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
           "noviembre", "diciembre"),
}
MONTH_ABBREVIATIONS = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "de": ("Jan.", "Feb.", "März", "Apr.", "Mai", "Juni", "Juli", "Aug.", "Sep.", "Okt.", "Nov.", "Dez."),
    "fr": ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."),
    "es": ("ene.", "feb.", "mar.", "abr.", "may.", "jun.", "jul.", "ago.", "sept.", "oct.", "nov.", "dic."),
}
WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
}
WEEKDAY_ABBREVIATIONS = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "de": ("Mo.", "Di.", "Mi.", "Do.", "Fr.", "Sa.", "So."),
    "fr": ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."),
    "es": ("lun.", "mar.", "mié.", "jue.", "vie.", "sáb.", "dom."),
}

# The numeric forms: {name: template}, with the fields of the named forms below.
NUMERIC_FORMS = {
    "ymd_slash": "{Y}/{mm}/{dd}",  # 2026/11/25
    "dmy_slash": "{dd}/{mm}/{Y}",  # 25/11/2026
    "dmy_dot": "{dd}.{mm}.{Y}",  # 25.11.2026
    "dmy_dash": "{dd}-{mm}-{Y}",  # 25-11-2026
    "dmy_unpadded": "{d}/{m}/{Y}",  # 5/3/2026
    "dmy_short_year": "{dd}.{mm}.{yy}",  # 25.11.26
}

# The named forms: {name: {language: template}}. Fields: {d}/{m} day/month, {d_ord} ordinal day ("25th", French
# "1er"), {dd}/{mm} two-digit day/month, {Y} year, {yy} two-digit year, {month}/{mon} month name/abbreviation (with
# {mon_lower} in lower case), {weekday}/{wkd} weekday name/abbreviation.
NAMED_FORMS = {
    "day_month_year": {"en": "{d} {month} {Y}", "de": "{d}. {month} {Y}", "fr": "{d} {month} {Y}",
                       "es": "{d} de {month} de {Y}"},
    "day_mon_year": {"en": "{d} {mon} {Y}", "de": "{d}. {mon} {Y}", "fr": "{d} {mon} {Y}", "es": "{d} {mon} {Y}"},
    "month_day_year": {"en": "{month} {d}, {Y}"},
    "month_ordinal_year": {"en": "{month} {d_ord}, {Y}"},
    "ordinal_of_month": {"en": "the {d_ord} of {month} {Y}", "de": "am {d}. {month} {Y}",
                         "fr": "le {d_ord} {month} {Y}", "es": "el {d} de {month} de {Y}"},
    "mon_day_short_year": {"en": "{mon_lower} {d} '{yy}"},
    "weekday_dmy": {"en": "{weekday}, {dd}.{mm}.{Y}", "de": "{weekday}, {dd}.{mm}.{Y}",
                    "fr": "{weekday} {dd}.{mm}.{Y}", "es": "{weekday}, {dd}.{mm}.{Y}"},
    "weekday_day_month_year": {"en": "{weekday}, {d} {month} {Y}", "de": "{weekday}, {d}. {month} {Y}",
                               "fr": "{weekday} {d} {month} {Y}", "es": "{weekday}, {d} de {month} de {Y}"},
    "wkd_day_mon_year": {"en": "{wkd}, {d} {mon} {Y}", "de": "{wkd}, {d}. {mon} {Y}", "fr": "{wkd} {d} {mon} {Y}",
                         "es": "{wkd}, {d} {mon} {Y}"},
}

FORMS = tuple(NUMERIC_FORMS) + tuple(NAMED_FORMS)

# The words of the longer-input variant's filler: no digit, no month or weekday name or abbreviation in any language,
# and none of the named forms' own words ("the", "of", "de", "am", "le", "el"), so the date is the one thing in a line
# that names a date.
FILLER_WORDS = (
    "please", "confirm", "budget", "review", "moved", "team", "notes", "draft", "agenda", "window", "office", "report",
    "client", "visit", "room", "lunch", "plan", "update", "final", "version", "event", "trip", "booked", "called",
    "reminder", "about", "for", "with", "and", "us", "you", "our", "their", "new", "old", "next", "after", "before",
    "send", "ask", "check", "meeting", "project", "invoice", "travel", "desk", "delivery", "order", "ticket",
    "payment", "hotel", "station", "train", "parcel", "letter", "contract", "signed", "paid", "sent", "arrives",
)
# Forms that write the year with two digits: the date range must span less than a century.
SHORT_YEAR_FORMS = ("dmy_short_year", "mon_day_short_year")

DEFAULT_START = datetime.date(1950, 1, 1)
DEFAULT_END = datetime.date(2049, 12, 31)

Example = collections.namedtuple("Example", "source target date form language")
Example.__doc__ = """One pair: `source` (the date as a person writes it), `target` (ISO "YYYY-MM-DD"), the
`datetime.date`, the form's name and its language (None for the numeric forms, which every language shares)."""


def render(date, form, language=None):
    """The date written in `form` (one of `FORMS`), in `language` for the named forms (None for numeric forms)."""
    if form in NUMERIC_FORMS:
        if language is not None:
            raise ValueError(f"numeric form {form!r} has no language; got language={language!r}, expected None")
        return NUMERIC_FORMS[form].format(**_fields(date, None))
    if form not in NAMED_FORMS:
        raise ValueError(f"unknown date form {form!r}; expected one of {FORMS}")
    templates = NAMED_FORMS[form]
    if language not in templates:
        raise ValueError(f"form {form!r} is written in {tuple(templates)}, got language {language!r}")
    return templates[language].format(**_fields(date, language))


def variants(forms=FORMS, languages=LANGUAGES):
    """The (form, language) pairs that `forms` and `languages` allow (language None for numeric forms)."""
    forms, languages = _checked_choice(forms, FORMS, "forms"), _checked_choice(languages, LANGUAGES, "languages")
    pairs = []
    for form in forms:
        if form in NUMERIC_FORMS:
            pairs.append((form, None))
            continue
        written = [language for language in NAMED_FORMS[form] if language in languages]
        if not written:
            raise ValueError(
                f"form {form!r} is written only in {tuple(NAMED_FORMS[form])}, and languages={languages} has none of "
                "them"
            )
        pairs.extend((form, language) for language in written)
    return pairs


def date_splits(sizes, seed, start=DEFAULT_START, end=DEFAULT_END, forms=FORMS, languages=LANGUAGES,
                filler_words=None):
    """Seeded splits of date pairs, disjoint by date.

    Args:
        sizes: {split: number of examples}, e.g. {"train": 20000, "validation": 500, "test": 1000}. Every split but
            "train" gets that many distinct dates, one example each, drawn first (test, then validation, then any
            other, in the order given); "train" draws its examples from the dates left, going through them in a
            seeded order (again after every pass, with new forms) so that they are used evenly.
        seed: int; the same seed, sizes, range, forms and languages give the same splits.
        start, end: the first and last date of the range (`datetime.date` or "YYYY-MM-DD"), both included.
        forms: the forms to write dates in (names from `FORMS`).
        languages: the languages of the named forms (from `LANGUAGES`).
        filler_words: None (default: the date alone), or (low, high): the longer-input variant, each source the date
            with `n` filler words before it and `m` after it, n and m drawn uniformly from low..high (both included;
            0 <= low <= high), the words uniformly from `FILLER_WORDS`, joined by single spaces.

    Each example's form is drawn uniformly, then its language uniformly among the form's languages.

    Returns:
        {split: [Example]}, in the order of `sizes`.
    """
    start, end = _as_date(start, "start"), _as_date(end, "end")
    if end < start:
        raise ValueError(f"end must not be before start, got start={start} and end={end}")
    choices = variants(forms, languages)
    short = sorted({form for form, _ in choices if form in SHORT_YEAR_FORMS})
    if short and end.year - start.year >= 100:
        raise ValueError(
            f"forms {short} write two-digit years, which name one year only in a range of less than a century; got "
            f"{start.year}..{end.year}: narrow the range or leave those forms out"
        )
    if not isinstance(sizes, dict) or not sizes:
        raise ValueError(f"sizes must be a non-empty dict {{split: number of examples}}, got {sizes!r}")
    for split, size in sizes.items():
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"sizes[{split!r}] must be a non-negative int, got {size!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if filler_words is not None:
        filler_words = checked_filler_words(filler_words)

    count = (end - start).days + 1
    order = np.random.default_rng([seed, 0]).permutation(count)
    held_out = sorted((split for split in sizes if split != "train"),
                      key=lambda split: ({"test": 0, "validation": 1}.get(split, 2)))
    needed = sum(sizes[split] for split in held_out)
    if needed > count - ("train" in sizes and sizes["train"] > 0):
        raise ValueError(
            f"the range {start}..{end} has {count} dates; the held-out splits need {needed} distinct dates"
            + (" and training needs at least one more" if sizes.get("train") else "")
            + ": widen the range or shrink the splits"
        )
    day_offsets, taken = {}, 0
    for split in held_out:
        day_offsets[split] = order[taken : taken + sizes[split]]
        taken += sizes[split]
    if "train" in sizes:
        left = order[taken:]
        rng = np.random.default_rng([seed, 1])
        passes = -(-sizes["train"] // len(left)) if sizes["train"] else 0
        day_offsets["train"] = np.concatenate([rng.permutation(left) for _ in range(passes)] or [left[:0]])[
            : sizes["train"]
        ]
    splits = {}
    for index, split in enumerate(sizes):
        rng = np.random.default_rng([seed, 2, index])
        splits[split] = [
            _example(start + datetime.timedelta(days=int(offset)), choices, rng) for offset in day_offsets[split]
        ]
        if filler_words is not None:
            # Its own stream, so that the dates, forms and languages are those of the split without filler.
            filler = np.random.default_rng([seed, 3, index])
            splits[split] = [example._replace(source=_with_filler(example.source, filler_words, filler))
                             for example in splits[split]]
    return splits


def as_pairs(examples):
    """(sources, targets): the two line-aligned lists of strings of a list of examples."""
    return [example.source for example in examples], [example.target for example in examples]


def checked_filler_words(value):
    """(low, high) from a pair of ints 0 <= low <= high (a list or tuple); a ValueError otherwise."""
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or not 0 <= value[0] <= value[1]):
        raise ValueError(f"filler_words must be None or two ints [low, high] with 0 <= low <= high, got {value!r}")
    return int(value[0]), int(value[1])


def _example(date, choices, rng):
    forms = sorted({form for form, _ in choices}, key=FORMS.index)
    form = forms[rng.integers(len(forms))]
    languages = [language for f, language in choices if f == form]
    language = languages[rng.integers(len(languages))]
    return Example(render(date, form, language), date.isoformat(), date, form, language)


def _with_filler(source, filler_words, rng):
    """`source` with n filler words before it and m after it, n and m drawn from filler_words = (low, high)."""
    low, high = filler_words
    before, after = rng.integers(low, high + 1, size=2)
    words = rng.integers(len(FILLER_WORDS), size=before + after)
    return " ".join([FILLER_WORDS[i] for i in words[:before]] + [source] + [FILLER_WORDS[i] for i in words[before:]])


def _fields(date, language):
    """The template fields of `date` (names only for a language)."""
    fields = dict(
        d=date.day,
        m=date.month,
        d_ord=_ordinal(date.day, language),
        dd=f"{date.day:02d}",
        mm=f"{date.month:02d}",
        Y=f"{date.year:04d}",
        yy=f"{date.year % 100:02d}",
    )
    if language is None:
        return fields
    month, weekday = date.month - 1, date.weekday()
    return dict(
        fields,
        month=MONTHS[language][month],
        mon=MONTH_ABBREVIATIONS[language][month],
        mon_lower=MONTH_ABBREVIATIONS[language][month].lower(),
        weekday=WEEKDAYS[language][weekday],
        wkd=WEEKDAY_ABBREVIATIONS[language][weekday],
    )


def _ordinal(day, language):
    if language == "en":
        suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
        return f"{day}{suffix}"
    if language == "fr":
        return "1er" if day == 1 else str(day)
    return str(day)


def _as_date(value, name):
    if isinstance(value, datetime.datetime) or not isinstance(value, (datetime.date, str)):
        raise ValueError(f"{name} must be a datetime.date or a 'YYYY-MM-DD' string, got {value!r}")
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name} must be a date 'YYYY-MM-DD', got {value!r}") from None
    return value


def _checked_choice(values, allowed, name):
    if isinstance(values, str) or not values:
        raise ValueError(f"{name} must be a non-empty list of names from {allowed}, got {values!r}")
    values = tuple(values)
    for value in values:
        if value not in allowed:
            raise ValueError(f"unknown name {value!r} in {name}; expected some of {allowed}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} repeats a name: {values}")
    return values
