"""The tokeniser: exact token lists for the cases IMDB reviews contain."""

import time

import pytest

from elmo_imdb.tokenize import clean_review, tokenize


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("One.<br /><br />Two.", "One. Two."),
        ("One<br/>Two<br>Three<BR />Four<Br>Five", "One Two Three Four Five"),
        ("an <i>italic</i> and <a href='x.html'>a link</a>", "an italic and a link"),
        ("Tom &amp; Jerry &quot;live&quot; &eacute;t&eacute; &#233; &#x27;", "Tom & Jerry \"live\" été é '"),
        ("&lt;b&gt;escaped markup stays text&lt;/b&gt;", "<b>escaped markup stays text</b>"),
        ("a < b and c > d, <3", "a < b and c > d, <3"),
        ("  spaces\tand\nlines\r\n  and\u00a0nbsp  ", "spaces and lines and nbsp"),
        ("cafe\u0301", "café"),  # combining accent composed into one character
        ("a\x96b\x85c\x97d\x92e\x81f", "a–b…c—d’e f"),  # Windows-1252 read as C1 controls
        ("a\x00b\x08c\x1bd\x7fe\ufffdf", "a b c d e f"),  # C0 controls, DEL, U+FFFD: no text
        ("a&#0;b&#x81;c&#xfffd;d&#x96;e&#127;f", "a b c d–ef"),  # the same as entities (&#127;: none, as HTML)
        ("&amp;#0;", "&#0;"),  # an escaped entity is text, unescaped once
        ("<br /><br />", ""),
        ("", ""),
    ],
)
def test_clean_review(text, cleaned):
    assert clean_review(text) == cleaned


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        # punctuation split off, case kept
        ("Great movie!", ["Great", "movie", "!"]),
        ("Hello, world. How are you?", ["Hello", ",", "world", ".", "How", "are", "you", "?"]),
        ("(see above); yes: no", ["(", "see", "above", ")", ";", "yes", ":", "no"]),
        # clitics, Penn Treebank / Moses style
        ("I don't know", ["I", "do", "n't", "know"]),
        ("it's here", ["it", "'s", "here"]),
        ("we'll see", ["we", "'ll", "see"]),
        ("I'm sure", ["I", "'m", "sure"]),
        ("they've gone", ["they", "'ve", "gone"]),
        ("you'd think", ["you", "'d", "think"]),
        ("we're done", ["we", "'re", "done"]),
        ("can't won't isn't", ["ca", "n't", "wo", "n't", "is", "n't"]),
        ("DON'T IT'S", ["DO", "N'T", "IT", "'S"]),
        ("shouldn't've", ["should", "n't", "'ve"]),
        ("the director's cut", ["the", "director", "'s", "cut"]),
        ("the 90's", ["the", "90", "'s"]),
        ("don’t it’s", ["do", "n’t", "it", "’s"]),  # typographic apostrophe
        # apostrophes that are not clitics
        ("O'Brien's film", ["O'Brien", "'s", "film"]),
        ("rock'n'roll", ["rock'n'roll"]),
        ("the actors' work", ["the", "actors", "'", "work"]),
        ("a 'cult' classic", ["a", "'", "cult", "'", "classic"]),
        # quotes
        ('"Titanic" is long', ['"', "Titanic", '"', "is", "long"]),
        ('he said "no."', ["he", "said", '"', "no", ".", '"']),
        # numbers
        ("rated 3.5 out of 10", ["rated", "3.5", "out", "of", "10"]),
        ("1,000 extras cost $2,500,000.50", ["1,000", "extras", "cost", "$", "2,500,000.50"]),
        ("90% of 1999.Then", ["90", "%", "of", "1999", ".", "Then"]),
        ("7/10", ["7", "/", "10"]),
        ("#1 in 3D", ["#", "1", "in", "3D"]),
        # hyphens and dashes
        ("a well-made, low-budget film", ["a", "well-made", ",", "low-budget", "film"]),
        ("over-the-top", ["over-the-top"]),
        ("good -- no, great", ["good", "--", "no", ",", "great"]),
        ("well--made", ["well", "--", "made"]),
        ("self- made", ["self", "-", "made"]),
        # abbreviations
        ("the U.S. and the U.K.", ["the", "U.S.", "and", "the", "U.K."]),
        ("e.g. this", ["e.g.", "this"]),
        ("Mr. Smith", ["Mr", ".", "Smith"]),
        # repeated punctuation: dots stay together, anything else one mark per token
        ("Well...", ["Well", "..."]),
        ("Well.....", ["Well", "....."]),
        ("Wow!!!", ["Wow", "!", "!", "!"]),
        ("What?!", ["What", "?", "!"]),
        ("wait… what", ["wait", "…", "what"]),
        # HTML
        ("One.<br /><br />Two.", ["One", ".", "Two", "."]),
        ("end<br/>start", ["end", "start"]),
        ("Tom &amp; Jerry", ["Tom", "&", "Jerry"]),
        ("&quot;Jaws&quot;", ['"', "Jaws", '"']),
        ("<i>Vertigo</i>", ["Vertigo"]),
        ("a <3 b", ["a", "<", "3", "b"]),
        # non-ASCII letters are word characters
        ("Amélie was très bien", ["Amélie", "was", "très", "bien"]),
        ("Über-cool Fräulein", ["Über-cool", "Fräulein"]),
        ("日本の映画 is great", ["日本の映画", "is", "great"]),
        ("Ça va? Señor", ["Ça", "va", "?", "Señor"]),
        ("cafe\u0301 au lait", ["café", "au", "lait"]),
        ("10 €, 5 £", ["10", "€", ",", "5", "£"]),
        ("loved it 😀😀", ["loved", "it", "😀", "😀"]),
        ("great\x97really\x85", ["great", "—", "really", "…"]),
        ("didn\x92t", ["did", "n’t"]),
        # URLs get no special care
        (
            "see http://www.imdb.com/title/tt0111161/",
            ["see", "http", ":", "/", "/", "www", ".", "imdb", ".", "com", "/", "title", "/",
             "tt0111161", "/"],
        ),
        # nothing to tokenise
        ("", []),
        ("   \n\t ", []),
        ("<br /><br />", []),
        ("<br /> <br/>\n<p></p>", []),
        # punctuation only
        ("!!!", ["!", "!", "!"]),
        ("...", ["..."]),
        ("?! -- ...", ["?", "!", "--", "..."]),
    ],
)
def test_tokenize(text, tokens):
    assert tokenize(text) == tokens


def test_a_60_character_token_is_kept_whole():
    word = "supercalifragilisticexpialidocious" + "x" * 26
    hyphenated = "-".join(["twelve-chars"] * 5)[:60]
    assert len(word) == 60 and len(hyphenated) == 60
    assert tokenize(f"a {word} b") == ["a", word, "b"]
    assert tokenize(hyphenated) == [hyphenated]


def test_tokens_are_never_empty_and_never_hold_whitespace():
    text = "A  weird\u00a0review\u2003with\u200a<br />odd\x85spacing\r\n, \tdon't  … ok\u3000日本"
    tokens = tokenize(text)
    assert tokens
    assert all(token and not any(char.isspace() for char in token) for token in tokens)


def test_a_100_kb_review_is_tokenised_fast_and_completely():
    sentence = "It's a well-made film, rated 8.5/10 -- I didn't expect that!!! <br /><br />"
    review = sentence * (100_000 // len(sentence))
    start = time.perf_counter()
    tokens = tokenize(review)
    elapsed = time.perf_counter() - start
    assert tokens == tokenize(sentence) * (100_000 // len(sentence))
    assert elapsed < 1.0


@pytest.mark.parametrize(
    "review",
    ["a" * 100_000, "a-" * 50_000, "1." * 50_000, "<a" * 50_000, "a'" * 50_000, "!" * 100_000],
)
def test_pathological_100_kb_reviews_take_linear_time(review):
    start = time.perf_counter()
    tokenize(review)
    assert time.perf_counter() - start < 1.0
