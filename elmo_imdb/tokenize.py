"""The one tokeniser of the project: turns a raw IMDB review into the tokens ELMo reads.

ELMo's language model was trained on the 1B Word Benchmark, which was tokenised with the
Moses tokeniser. ELMo reads characters, so it accepts any token, but its representations are
best for tokens shaped like the ones it saw in training. The rules below therefore follow
Moses/Penn Treebank conventions, kept to a few readable regular expressions:

- case is kept (the character model sees capitals);
- punctuation is kept, split off the words (``"Great movie!"`` -> ``Great movie !``);
- English clitics are split off the word before them: ``don't`` -> ``do n't``,
  ``can't`` -> ``ca n't``, ``it's`` -> ``it 's``, likewise ``'re 've 'll 'm 'd``
  (the typographic apostrophe ``’`` counts as an apostrophe);
- an apostrophe inside a word that is not a clitic stays in it (``O'Brien``, ``rock'n'roll``);
- hyphenated words stay whole (``well-made``), and so do numbers with decimal points or
  thousands separators (``3.5``, ``1,000``);
- abbreviations written as letters with dots stay whole (``U.S.``, ``e.g.``), but a single
  word's final dot is split off (``Mr.`` -> ``Mr .``), as Moses does without its
  abbreviation lists;
- runs of dots stay one token (``...``), as do runs of dashes (``--``), as in Moses; every
  other punctuation mark is a token of its own, so ``!!!`` -> ``! ! !`` and ``?!`` -> ``? !``,
  which keeps them to tokens ELMo has seen often;
- any other symbol (``$``, ``%``, ``"``, emoji) is a token of its own;
- no length limit: ELMo's character model truncates long tokens itself.

Words are runs of Unicode word characters, so ``Amélie``, ``über`` and ``日本`` are words.
Every regular expression here scans the text once, so time is linear in the review length.
"""

import html
import re
import unicodedata

# Any HTML tag, `<br />` (how IMDB reviews mark paragraphs) being by far the most common.
# A tag starts with a letter (or `/` and a letter), so text such as `a < b` or `<3` is kept.
_HTML_TAG = re.compile(r"</?[a-z][^<>]*>", re.IGNORECASE)

# Some reviews hold Windows-1252 punctuation mis-decoded as C1 control characters: U+0096 is
# meant as an en dash, U+0085 as an ellipsis (and Python would take it for a line break),
# U+0092 as an apostrophe. They are mapped back to the characters meant; the five codes that
# Windows-1252 leaves undefined become spaces.
_C1_CONTROL_AS_WINDOWS_1252 = {
    code: bytes([code]).decode("cp1252", errors="replace").replace("\ufffd", " ")
    for code in range(0x80, 0xA0)
}
# C0 control characters (NUL and the others that are not whitespace), DEL, and the replacement
# character U+FFFD (a decoder's mark for bytes it could not read) carry no text: spaces.
_NOT_TEXT = {code: " " for code in [*range(0x00, 0x20), 0x7F, 0xFFFD]}

_APOSTROPHE = "['’]"
_CLITIC = rf"n{_APOSTROPHE}t|{_APOSTROPHE}(?:s|re|ve|ll|m|d)"

# A clitic directly after a word character; a space is put in front of it.
_CLITIC_AFTER_WORD = re.compile(rf"(?<=\w)({_CLITIC})\b", re.IGNORECASE)

_TOKEN = re.compile(
    rf"""
      (?:[^\W\d_]\.){{2,}}                  # abbreviation with dots: U.S., e.g.
    | \w+(?:(?:-|{_APOSTROPHE}|(?<=\d)[.,](?=\d))\w+)*
                                            # word: well-made, O'Brien, n't, 3.5, 1,000, 日本
    | {_APOSTROPHE}(?:s|re|ve|ll|m|d)\b     # clitic split off its word: 's 're 've 'll 'm 'd
    | \.{{2,}}                              # ellipsis: ... (any run of dots)
    | -{{2,}}                               # dash written as a run of hyphens: --
    | [^\w\s]                               # any other punctuation mark or symbol
    """,
    re.VERBOSE | re.IGNORECASE,
)


def clean_review(text: str) -> str:
    """Turn a review as stored in the dataset into plain text on one line.

    C1 control characters become the Windows-1252 characters they stand for (U+0096 -> ``–``);
    other control characters (NUL, ...) and the replacement character U+FFFD become spaces,
    both in the stored text and in what its HTML entities unescape to (``&#0;`` -> U+FFFD,
    ``&#x81;`` -> U+0081).
    HTML tags (mostly the ``<br />`` line breaks) become spaces so that the words on either
    side stay apart; HTML entities such as ``&amp;`` become the characters they stand for
    (after removing tags, so an escaped ``&lt;b&gt;`` stays visible text). Unicode is put in
    NFC form so that an accented letter written as letter + combining accent becomes one word
    character. Runs of whitespace become one space and the ends are trimmed.
    """
    text = _HTML_TAG.sub(" ", _as_text(text))
    text = _as_text(html.unescape(text))  # again: an entity such as &#0; or &#x81; unescapes to a control
    text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def _as_text(text: str) -> str:
    return text.translate(_C1_CONTROL_AS_WINDOWS_1252).translate(_NOT_TEXT)


def tokenize(text: str) -> list[str]:
    """Split a raw review into ELMo tokens (see the module docstring for the rules).

    Tokens are never empty and never contain whitespace; a review holding only markup or
    whitespace gives ``[]``.
    """
    text = _CLITIC_AFTER_WORD.sub(r" \1", clean_review(text))
    return _TOKEN.findall(text)
