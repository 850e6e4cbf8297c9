"""What every benchmark's section shares: the note that `make bench` runs a command's defaults."""

from absl import flags

from benchmarks import report


def flag_values(shared_machine=None, **values):
    """A fresh FlagValues with integer flags `values` (default 1) set as given, and --shared_machine if not None."""
    fv = flags.FlagValues()
    for name in values:
        flags.DEFINE_integer(name, 1, "", flag_values=fv)
    if shared_machine is not None:
        flags.DEFINE_bool("shared_machine", False, "", flag_values=fv)
    fv(["program", *(f"--{name}={value}" for name, value in values.items()),
        *([] if shared_machine is None else [f"--shared_machine={str(shared_machine).lower()}"])])
    return fv


def test_the_make_bench_note_appears_only_when_the_named_flags_have_their_defaults():
    assert report.make_bench_note(flag_values(rounds=1, steps=1), ("rounds", "steps")) == (
        " (`make bench` runs these defaults)")
    assert report.make_bench_note(flag_values(rounds=3, steps=1), ("rounds", "steps")) == ""
    # A flag left out of the names does not count.
    assert report.make_bench_note(flag_values(rounds=1, steps=5), ("rounds",)) == " (`make bench` runs these defaults)"
    assert report.make_bench_note(flag_values(shared_machine=True, rounds=1), ("rounds",)) == (
        " (`make bench` runs these defaults, without --shared_machine)")
    assert report.make_bench_note(flag_values(shared_machine=False, rounds=1), ("rounds",)) == (
        " (`make bench` runs these defaults)")
