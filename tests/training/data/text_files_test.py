import gzip

import pytest

from training.data import babi, parallel_corpus, text_corpus, text_files


def test_lines_end_at_newline_with_bom_crlf_and_final_newline_handled(tmp_path):
    path = tmp_path / "f.txt"
    # A byte-order mark, "\r\n" and "\n" endings, a blank line, inner and surrounding spaces, a U+2028 that is not a
    # line end, and a last line ending in "\r" without "\n".
    path.write_bytes("\ufeff a b \r\n\nc\u2028d\n  \r\ne\r".encode("utf-8"))
    assert text_files.read_lines(path) == [" a b ", "", "c\u2028d", "  ", "e"]
    path.write_bytes(b"one\ntwo\n")
    assert text_files.read_lines(str(path)) == ["one", "two"]  # the final newline starts no third line
    path.write_bytes(b"one\ntwo\n\n")
    assert text_files.read_lines(path) == ["one", "two", ""]  # a blank last line is a line
    for content in (b"", "\ufeff".encode("utf-8")):
        path.write_bytes(content)
        assert text_files.read_lines(path) == [] and text_files.read_text(path) == ""
    path.write_bytes("\ufeffx\r\ny".encode("utf-8"))
    assert text_files.read_text(path) == "x\r\ny"  # read_text only decodes and drops the byte-order mark


@pytest.mark.parametrize(
    "content, where",
    [
        (b"fine\nbad \xff byte\n", r"line 2, byte offset 9 \(byte 0xff\): invalid start byte$"),
        (b"ok \xc3", r"line 1, byte offset 3 \(byte 0xc3\): unexpected end of data$"),
        # Byte offsets count the file's bytes, the byte-order mark's three included.
        (b"\xef\xbb\xbfI love you.\nMachine \xe9 learning\n",
         r"line 2, byte offset 23 \(byte 0xe9\): invalid continuation byte$"),
    ],
)
def test_bytes_that_are_not_utf8_name_file_line_offset_and_byte(tmp_path, content, where):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    for read in (text_files.read_text, text_files.read_lines):
        with pytest.raises(ValueError, match=rf"^'.*bad\.txt' is not UTF-8: {where}"):
            read(path)


def test_every_reader_says_the_same_about_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "qa1_x_train.txt"
    path.write_bytes(b"1 Mary moved to the bathroom.\n2 Jos\xe9 went to the hallway.\n")
    message = r"^'.*qa1_x_train\.txt' is not UTF-8: line 2, byte offset 35 \(byte 0xe9\): invalid continuation byte$"
    with pytest.raises(ValueError, match=message):
        babi.read_stories(path, task=1)
    with pytest.raises(ValueError, match=message):
        parallel_corpus.read_lines(path)
    with pytest.raises(ValueError, match=message):
        text_corpus.read_lines(path)


def test_a_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        text_files.read_lines(tmp_path / "nowhere.txt")


def test_a_gz_file_is_decompressed_and_named_in_its_errors(tmp_path):
    path = tmp_path / "f.txt.gz"
    path.write_bytes(gzip.compress("\ufeffone\r\ntwo\n\nthree".encode("utf-8")))
    assert text_files.read_lines(path) == ["one", "two", "", "three"]
    assert text_files.read_text(str(path)) == "one\r\ntwo\n\nthree"
    assert text_files.split_lines("one\r\ntwo\n\nthree\n") == ["one", "two", "", "three"]
    # Line and offset of bytes that are not UTF-8 are those of the decompressed text.
    path.write_bytes(gzip.compress(b"fine\nbad \xff byte\n"))
    with pytest.raises(ValueError, match=r"^'.*f\.txt\.gz' is not UTF-8: line 2, byte offset 9 \(byte 0xff\)"):
        text_files.read_lines(path)
    for content in (b"plain text", gzip.compress(b"cut short")[:-6]):
        path.write_bytes(content)
        with pytest.raises(ValueError, match=r"^'.*f\.txt\.gz' is not a valid gzip file \(its name ends in \.gz\)"):
            text_files.read_text(path)
    # Without the suffix, gzip bytes are not decompressed: they are not UTF-8.
    plain = tmp_path / "f.txt"
    plain.write_bytes(gzip.compress(b"x"))
    with pytest.raises(ValueError, match="is not UTF-8"):
        text_files.read_text(plain)
