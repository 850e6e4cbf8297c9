import calendar
import datetime
import re

import pytest

from training.data import dates

# The test's own tables (typed here, not taken from the module): full names, Monday first.
MONTH_NAMES = {
    "en": "january february march april may june july august september october november december",
    "de": "januar februar märz april mai juni juli august september oktober november dezember",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
}
WEEKDAY_NAMES = {
    "en": "monday tuesday wednesday thursday friday saturday sunday",
    "de": "montag dienstag mittwoch donnerstag freitag samstag sonntag",
    "fr": "lundi mardi mercredi jeudi vendredi samedi dimanche",
    "es": "lunes martes miércoles jueves viernes sábado domingo",
}
# strptime formats of the numeric forms.
STRPTIME = {
    "ymd_slash": "%Y/%m/%d",
    "dmy_slash": "%d/%m/%Y",
    "dmy_dot": "%d.%m.%Y",
    "dmy_dash": "%d-%m-%Y",
    "dmy_unpadded": "%d/%m/%Y",
    "dmy_short_year": "%d.%m.%y",
}
FILLERS = {"the", "of", "de", "am", "le", "el", "st", "nd", "rd", "th", "er"}


def lookup(word, table, language):
    """The index of the one name in the test's table that `word` (a full name or an abbreviation) starts."""
    word = word.rstrip(".").lower()
    found = [index for index, name in enumerate(table[language].split()) if name.startswith(word)]
    assert len(found) == 1 and len(word) >= 2, f"{word!r} names no single entry of {table[language]!r}"
    return found[0]


def parse(example, start=dates.DEFAULT_START, end=dates.DEFAULT_END):
    """The date that `example.source` names, read independently of the module; checks the weekday too."""
    source = example.source
    if example.form in STRPTIME:
        parsed = datetime.datetime.strptime(source, STRPTIME[example.form]).date()
        if example.form == "dmy_unpadded":
            assert not re.search(r"(^|/)0", source), source
        if example.form == "dmy_short_year":
            # strptime puts '00..'68 in the 2000s; the range has one year per two digits.
            years = [y for y in range(start.year, end.year + 1) if y % 100 == parsed.year % 100]
            assert len(years) == 1
            parsed = parsed.replace(year=years[0])
        return parsed
    tokens = [t for t in re.findall(r"[^\W\d_]+\.?|'\d\d|\d+", source) if t.rstrip(".").lower() not in FILLERS]
    words = [t for t in tokens if not t[0].isdigit() and not t.startswith("'")]
    numbers = [t for t in tokens if t[0].isdigit() or t.startswith("'")]
    weekday = None
    if len(words) == 2 or len(numbers) == 3:
        weekday = lookup(words.pop(0), WEEKDAY_NAMES, example.language)
    if words:
        (month_word,) = words
        month = lookup(month_word, MONTH_NAMES, example.language) + 1
        day = int(next(n for n in numbers if len(n) <= 2))
        year = next(n for n in numbers if len(n) == 4 or n.startswith("'"))
        if year.startswith("'"):
            year = next(y for y in range(start.year, end.year + 1) if y % 100 == int(year[1:]))
        parsed = datetime.date(int(year), month, day)
    else:
        day, month, year = map(int, numbers)
        parsed = datetime.date(year, month, day)
    if weekday is not None:
        assert weekday == parsed.weekday(), f"{source!r}: the weekday is not {parsed:%A}"
    return parsed


SIZES = {"train": 3000, "validation": 200, "test": 400}


@pytest.fixture(scope="module")
def splits():
    return dates.date_splits(SIZES, seed=7)


def test_every_example_parses_back_to_its_date_and_iso_target(splits):
    for examples in splits.values():
        for example in examples:
            assert parse(example) == example.date, example
            assert datetime.datetime.strptime(example.target, "%Y-%m-%d").date() == example.date
            assert dates.DEFAULT_START <= example.date <= dates.DEFAULT_END


def test_one_date_written_in_forms_people_use():
    date = datetime.date(2026, 11, 25)  # a Wednesday
    expected = {
        ("day_month_year", "en"): "25 November 2026",
        ("mon_day_short_year", "en"): "nov 25 '26",
        ("weekday_dmy", "en"): "Wednesday, 25.11.2026",
        ("ymd_slash", None): "2026/11/25",
        ("dmy_slash", None): "25/11/2026",
        ("month_ordinal_year", "en"): "November 25th, 2026",
        ("weekday_day_month_year", "de"): "Mittwoch, 25. November 2026",
        ("wkd_day_mon_year", "fr"): "mer. 25 nov. 2026",
        ("weekday_day_month_year", "es"): "miércoles, 25 de noviembre de 2026",
        ("dmy_short_year", None): "25.11.26",
    }
    for (form, language), text in expected.items():
        assert dates.render(date, form, language) == text
    first = datetime.date(2021, 3, 1)  # a Monday
    assert dates.render(first, "ordinal_of_month", "fr") == "le 1er mars 2021"
    assert dates.render(first, "ordinal_of_month", "en") == "the 1st of March 2021"
    assert dates.render(first, "dmy_unpadded") == "1/3/2021"
    assert dates.render(first, "wkd_day_mon_year", "de") == "Mo., 1. März 2021"
    assert dates.render(datetime.date(2021, 3, 2), "wkd_day_mon_year", "es") == "mar., 2 mar. 2021"
    assert [dates.render(datetime.date(2021, 3, d), "month_ordinal_year", "en")[6:10] for d in (2, 3, 11, 12, 13, 22)] \
        == ["2nd,", "3rd,", "11th", "12th", "13th", "22nd"]


def test_english_names_match_the_calendar_module():
    assert list(dates.MONTHS["en"]) == list(calendar.month_name)[1:]
    assert list(dates.MONTH_ABBREVIATIONS["en"]) == list(calendar.month_abbr)[1:]
    assert list(dates.WEEKDAYS["en"]) == list(calendar.day_name)
    assert list(dates.WEEKDAY_ABBREVIATIONS["en"]) == list(calendar.day_abbr)


def test_splits_are_disjoint_by_date(splits):
    days = {split: [example.date for example in examples] for split, examples in splits.items()}
    assert {split: len(d) for split, d in days.items()} == SIZES
    # Held-out splits: one example per date; no date shared with another split, in any form.
    assert len(set(days["test"])) == SIZES["test"] and len(set(days["validation"])) == SIZES["validation"]
    assert not set(days["test"]) & set(days["train"])
    assert not set(days["validation"]) & set(days["train"])
    assert not set(days["test"]) & set(days["validation"])
    # Training goes through its dates evenly: more examples than dates left means every date is used.
    small = dates.date_splits({"train": 50, "test": 10}, seed=1, start="2026-01-01", end="2026-01-31")
    train_days = [example.date for example in small["train"]]
    assert len(set(train_days)) == 21 and not set(train_days) & {e.date for e in small["test"]}


def test_splits_are_seeded_and_the_test_split_ignores_the_training_size(splits):
    assert dates.date_splits(SIZES, seed=7) == splits
    assert dates.date_splits(SIZES, seed=8)["test"] != splits["test"]
    assert dates.date_splits({"train": 10, "validation": 200, "test": 400}, seed=7)["test"] == splits["test"]


def test_every_form_and_language_appears(splits):
    seen = {(example.form, example.language) for example in splits["train"]}
    assert seen == set(dates.variants())
    assert {form for form, _ in seen} == set(dates.FORMS) and len(dates.FORMS) >= 14
    assert {language for _, language in seen} == {None, "en", "de", "fr", "es"}
    assert len({example.source for example in splits["train"]}) > 0.95 * SIZES["train"]


def test_forms_and_languages_can_be_chosen():
    examples = dates.date_splits({"train": 200}, seed=0, forms=["day_month_year", "dmy_dot"], languages=["de"])
    assert {(e.form, e.language) for e in examples["train"]} == {("day_month_year", "de"), ("dmy_dot", None)}
    for example in examples["train"]:
        assert parse(example) == example.date


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match=r"forms \['dmy_short_year', 'mon_day_short_year'\] write two-digit years.*"
                                         r"1900\.\.2049"):
        dates.date_splits({"test": 5}, seed=0, start="1900-01-01")
    assert dates.date_splits({"test": 5}, seed=0, start="1900-01-01", forms=["dmy_dot"])["test"]
    with pytest.raises(ValueError, match=r"has 10 dates; the held-out splits need 10 distinct dates and training "
                                         r"needs at least one more"):
        dates.date_splits({"train": 5, "test": 6, "validation": 4}, seed=0, start="2026-01-01", end="2026-01-10")
    with pytest.raises(ValueError, match=r"form 'month_day_year' is written only in \('en',\), and languages="):
        dates.date_splits({"test": 5}, seed=0, forms=["month_day_year"], languages=["fr"])
    with pytest.raises(ValueError, match=r"unknown name 'us_slash' in forms"):
        dates.date_splits({"test": 5}, seed=0, forms=["us_slash"])
    with pytest.raises(ValueError, match=r"end must be a date 'YYYY-MM-DD', got '2026-02-30'"):
        dates.date_splits({"test": 5}, seed=0, end="2026-02-30")
    with pytest.raises(ValueError, match=r"sizes\['test'\] must be a non-negative int, got -1"):
        dates.date_splits({"test": -1}, seed=0)
    with pytest.raises(ValueError, match=r"form 'weekday_dmy' is written in \('en', 'de', 'fr', 'es'\), got language "
                                         r"'it'"):
        dates.render(datetime.date(2026, 1, 1), "weekday_dmy", "it")


def test_the_long_variant_writes_the_same_dates_inside_filler_words(splits):
    long = dates.date_splits(SIZES, seed=7, filler_words=(5, 8))
    date_words = set(FILLERS)
    for language in MONTH_NAMES:
        date_words |= set(MONTH_NAMES[language].split()) | set(WEEKDAY_NAMES[language].split())
    befores, afters = [], []
    for split, examples in long.items():
        assert len(examples) == len(splits[split])
        for plain, example in zip(splits[split], examples):
            # The same date, form and language as without filler: only the source changed.
            assert example._replace(source=plain.source) == plain
            before, found, after = example.source.partition(" " + plain.source + " ")
            assert found, f"{example.source!r} does not hold {plain.source!r} between two words"
            for words, counts in ((before.split(" "), befores), (after.split(" "), afters)):
                counts.append(len(words))
                for word in words:
                    assert word.isalpha() and word.islower(), word
                    # No word of a date: not a form's own word, no month or weekday name begins with it (so it
                    # is no abbreviation either).
                    assert not any(name.startswith(word) for name in date_words), word
    for counts in (befores, afters):
        assert set(counts) == {5, 6, 7, 8}
    assert 80 < sum(len(e.source) for e in long["train"]) / len(long["train"]) < 110
    assert dates.date_splits(SIZES, seed=7, filler_words=(0, 0)) == splits
    assert dates.date_splits(SIZES, seed=7, filler_words=[5, 8]) == long  # a config's JSON list


def test_bad_filler_words_are_clear_errors():
    for bad in ((3, 2), (-1, 2), 5, (1, 2, 3), (1.0, 2), "5,8"):
        with pytest.raises(ValueError, match=r"filler_words must be None or two ints \[low, high\] with 0 <= low <= "
                                             r"high, got"):
            dates.date_splits({"test": 5}, seed=0, filler_words=bad)
