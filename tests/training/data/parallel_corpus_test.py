import pytest

from training.data import parallel_corpus

# The lecture's example pair, and a few more lines of Chinese-English.
CHINESE = ["我爱你。", "机器学习很有趣。", "", "今天天气很好！"]
ENGLISH = ["I love you.", "Machine learning is fun.", "", "The weather is nice today!"]


def write(path, lines, ending="\n", prefix=""):
    path.write_bytes((prefix + "".join(line + ending for line in lines)).encode("utf-8"))


def write_corpus(directory, source="zh", target="en"):
    directory.mkdir(exist_ok=True)
    for stem, count in (("train", 4), ("valid", 2), ("test", 1)):
        write(directory / f"{stem}.{source}", CHINESE[:count])
        write(directory / f"{stem}.{target}", ENGLISH[:count])
    return directory


def test_reads_chinese_english_pairs_line_by_line(tmp_path):
    corpus = parallel_corpus.read_parallel_corpus(write_corpus(tmp_path / "c"), "zh", "en")
    assert list(corpus) == ["train", "validation", "test"]
    # The line blank on both sides is skipped; the order is the files'.
    assert corpus["train"] == (
        ["我爱你。", "机器学习很有趣。", "今天天气很好！"],
        ["I love you.", "Machine learning is fun.", "The weather is nice today!"],
    )
    assert corpus["validation"] == (CHINESE[:2], ENGLISH[:2])
    assert corpus["test"] == (["我爱你。"], ["I love you."])
    # Either direction, and only the splits asked for.
    reverse = parallel_corpus.read_parallel_corpus(tmp_path / "c", "en", "zh", splits=["test"])
    assert reverse == {"test": (["I love you."], ["我爱你。"])}


def test_strips_lines_byte_order_marks_and_crlf(tmp_path):
    directory = write_corpus(tmp_path / "c", "de", "en")
    write(directory / "test.de", ["  Guten  Morgen ", "Danke"], ending="\r\n", prefix="\ufeff")
    write(directory / "test.en", ["Good  morning", "\tThanks"])
    corpus = parallel_corpus.read_parallel_corpus(directory, "de", "en")
    assert corpus["test"] == (["Guten  Morgen", "Danke"], ["Good  morning", "Thanks"])


def test_a_missing_directory_or_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"parallel corpus directory '.*nowhere' does not exist"):
        parallel_corpus.read_parallel_corpus(tmp_path / "nowhere", "zh", "en")
    directory = write_corpus(tmp_path / "c")
    (directory / "valid.en").unlink()
    with pytest.raises(FileNotFoundError, match=r"no validation file '.*valid\.en': a parallel corpus needs valid\.zh "
                                                r"and valid\.en in"):
        parallel_corpus.read_parallel_corpus(directory, "zh", "en")


def test_unequal_line_counts_name_both_files_and_the_first_unpaired_line(tmp_path):
    directory = write_corpus(tmp_path / "c")
    write(directory / "train.en", ENGLISH + ["One more."])
    with pytest.raises(ValueError, match=r"'.*train\.zh' has 4 lines and '.*train\.en' has 5: line 5 of "
                                         r"'.*train\.en' has no partner in '.*train\.zh'"):
        parallel_corpus.read_parallel_corpus(directory, "zh", "en")


def test_a_line_blank_on_one_side_only_is_an_error_naming_file_and_line(tmp_path):
    directory = write_corpus(tmp_path / "c")
    write(directory / "train.zh", ["我爱你。", "   ", "", "今天天气很好！"])
    with pytest.raises(ValueError, match=r"line 2 of '.*train\.zh' is blank but line 2 of '.*train\.en' is not"):
        parallel_corpus.read_parallel_corpus(directory, "zh", "en")


def test_non_utf8_bytes_are_an_error_naming_file_and_line(tmp_path):
    directory = write_corpus(tmp_path / "c")
    (directory / "valid.en").write_bytes("I love you.\nMachine \xe9 learning\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"'.*valid\.en' is not UTF-8: line 2, byte offset 20 \(byte 0xe9\)"):
        parallel_corpus.read_parallel_corpus(directory, "zh", "en")


def test_empty_splits_and_bad_arguments_are_clear_errors(tmp_path):
    directory = write_corpus(tmp_path / "c")
    write(directory / "test.zh", ["", ""])
    write(directory / "test.en", ["", ""])
    with pytest.raises(ValueError, match=r"'.*test\.zh' and '.*test\.en' hold no sentence pair"):
        parallel_corpus.read_parallel_corpus(directory, "zh", "en")
    with pytest.raises(ValueError, match=r"target_language must be a file extension like 'de' or 'zh'.*got 'e/n'"):
        parallel_corpus.read_parallel_corpus(directory, "zh", "e/n")
    with pytest.raises(ValueError, match=r"source_language and target_language must differ, both are 'zh'"):
        parallel_corpus.read_parallel_corpus(directory, "zh", "zh")
    with pytest.raises(ValueError, match=r"unknown split 'valid'; expected some of \('train', 'validation', 'test'\)"):
        parallel_corpus.read_parallel_corpus(directory, "zh", "en", splits=["valid"])
