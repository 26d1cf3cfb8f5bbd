"""What the sensitive-word filter (IM-11) costs per message: a plain benchmark, not a test.

Builds ``imserver.words.WordFilter`` from a realistic list (by default 2,000
words: Chinese words of 2-4 characters generated deterministically from a fixed
set of common characters, plus a few real ones such as 代孕, 卖卵, 微信, QQ) and
times ``check()`` on clean Chinese messages of 20, 100 and 500 characters, on
messages that contain an evasion (spaces, full-width letters, punctuation put
inside a word) for each policy, and with an empty filter. Prints the median
over several runs of the time per message (``time.perf_counter_ns``) and the
messages per second one core sustains.

    .venv/bin/python -m imserver.bench.words [--words 2000] [--runs 7] [--seconds 0.3] [--json]

Results are recorded in ``load/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from imserver.words import WordFilter, normalise

Run = tuple[dict[str, Any], Sequence[Any]]
"""What a benchmark's run gives: facts about the run (machine, sizes), and one dataclass per case."""

SEED = 20261127

REAL_WORDS: tuple[tuple[str, str], ...] = (
    ("代孕", "block"),
    ("卖卵", "block"),
    ("买卵", "block"),
    ("借卵", "block"),
    ("供卵", "block"),
    ("包成功", "block"),
    ("包生男孩", "block"),
    ("性别鉴定", "block"),
    ("微信", "flag"),
    ("加微", "flag"),
    ("私聊", "flag"),
    ("转账", "flag"),
    ("QQ", "mask"),
    ("vx", "mask"),
    ("傻逼", "mask"),
    ("骗子", "mask"),
)
"""Words of the kind the center lists, with their policies."""

WORD_CHARS = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说"
    "产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使"
    "点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明"
    "看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料"
    "象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指"
    "几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶"
    "油思术极交受联什认六共权收证改清美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声"
    "报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算"
    "低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除"
    "消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆"
    "包火住调满县局照参红细引听该铁价严卵孕胚移植促排取卵泡激素黄体酮医护士"
)
"""About 1,000 common characters (the start of a frequency list) plus IVF terms, so listed words
share characters with ordinary messages, as real lists do."""

SENTENCES = (
    "医生您好，我今天第三天促排，卵泡监测的结果出来了，想问一下下一步怎么安排。",
    "护士说明天早上八点空腹抽血，抽完血再去做B超，大概需要多长时间？",
    "移植后第七天可以正常上班吗？平时需要注意哪些饮食和作息？",
    "昨天打完夜针以后肚子有点胀，这种情况正常吗，需要来医院看看吗？",
    "谢谢医生的耐心解答，我们会按时复查，有问题再来咨询您。",
    "黄体酮注射的部位有硬块，热敷可以缓解吗？还是换成口服的药物？",
    "我们是第二次做试管了，上次没有成功，这次心里特别紧张。",
    "请问取卵手术需要家属陪同吗，术后多久可以回家休息？",
    "群里的姐妹们，大家移植后都是怎么安排饮食的，可以分享一下经验吗？",
    "今天验血的结果已经上传到系统里了，麻烦医生帮忙看一下指标。",
)
"""Ordinary messages in a treatment group."""

EVASIONS: tuple[tuple[str, str, str], ...] = (
    ("mask", "full-width + space", "有问题可以加我ＱＱ 号一起交流，"),
    ("mask", "upper case + dot", "我的Q.Q在个人资料里，"),
    ("block", "space inside", "听说有人找代 孕的中介，"),
    ("block", "punctuation inside", "群里有没有卖。卵的渠道，"),
    ("flag", "hyphen inside", "医生方便的话加个微-信吗，"),
)
"""(policy, evasion, fragment): a listed word written the way people dodge filters."""


def word_list(count: int) -> list[tuple[str, str]]:
    """``count`` (word, policy) pairs: the real words, then generated 2-4 character words.

    Generated words never occur in SENTENCES (after normalising), so the clean
    messages stay clean; policies are about 80% mask, 10% block, 10% flag.
    """
    corpus = normalise("".join(SENTENCES))
    rng = random.Random(SEED)
    found = dict(REAL_WORDS)
    while len(found) < count:
        word = "".join(rng.choice(WORD_CHARS) for _ in range(rng.randint(2, 4)))
        if word in found or normalise(word) in corpus:
            continue
        roll = rng.random()
        found[word] = "block" if roll < 0.1 else "flag" if roll < 0.2 else "mask"
    return list(found.items())[:count]


def clean_message(length: int, offset: int = 0) -> str:
    text = "".join(SENTENCES[(offset + i) % len(SENTENCES)] for i in range(length // 20 + 2))
    return text[:length]


@dataclass
class Result:
    case: str
    chars: int
    median_us: float
    min_us: float
    per_second: int
    outcome: str


def over(check: Callable[[str], Any], texts: list[str]) -> Callable[[], None]:
    """One call of ``check`` per text: what ``measure`` repeats."""
    def each() -> None:
        for text in texts:
            check(text)
    return each


def measure(op: Callable[[], object], *, runs: int, seconds: float, calls: int = 1) -> tuple[float, float]:
    """Median and best µs per call over ``runs`` runs of about ``seconds`` each; ``op`` makes ``calls`` calls."""
    loops = 1
    while True:  # calibrate: enough repetitions to last ``seconds``
        start = time.perf_counter_ns()
        for _ in range(loops):
            op()
        elapsed = time.perf_counter_ns() - start
        if elapsed >= seconds * 1e9 / 4:
            break
        loops *= 2
    loops = max(1, int(loops * seconds * 1e9 / max(elapsed, 1)))
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        for _ in range(loops):
            op()
        samples.append((time.perf_counter_ns() - start) / (loops * calls) / 1000)
    return statistics.median(samples), min(samples)


def describe(verdict: Any) -> str:
    if verdict.clean:
        return "clean"
    parts = [f"{name} {getattr(verdict, name)}" for name in ("blocked", "flagged", "masked") if getattr(verdict, name)]
    return "; ".join(parts)


def run(count: int, runs: int, seconds: float) -> tuple[dict[str, Any], list[Result]]:
    entries = word_list(count)
    start = time.perf_counter_ns()
    full = WordFilter(entries)
    build_ms = (time.perf_counter_ns() - start) / 1e6
    empty = WordFilter()
    cases: list[tuple[str, Any, list[str]]] = []
    for length in (20, 100, 500):
        texts = [clean_message(length, offset) for offset in range(len(SENTENCES))]
        assert all(full.check(t).clean for t in texts), "the clean corpus must not contain a listed word"
        cases.append((f"clean, {count} words", full, texts))
    for policy, how, fragment in EVASIONS:
        text = (fragment + clean_message(100))[:100]
        cases.append((f"{policy} word, {how}", full, [text]))
    cases.append(("clean, empty filter", empty, [clean_message(100, o) for o in range(len(SENTENCES))]))
    results = []
    for name, flt, texts in cases:
        median, best = measure(over(flt.check, texts), runs=runs, seconds=seconds, calls=len(texts))
        results.append(Result(name, len(texts[0]), round(median, 2), round(best, 2), int(1e6 / median),
                              describe(flt.check(texts[0]))))
    info = {
        "python": sys.version.split()[0], "machine": platform.machine(), "words": full.size,
        "build_ms": round(build_ms, 1), "runs": runs, "seconds_per_run": seconds,
    }
    return info, results


def command_line(argv: list[str] | None, description: str, run: Callable[[int, int, float], Run],
                 table: Callable[[argparse.Namespace, Run], None]) -> None:
    """What every in-process micro-benchmark here does: take its options, ``run(words, runs, seconds)``, and
    print the result (``info``, dataclasses) as JSON with ``--json``, else as ``table`` prints it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--words", type=int, default=2000, help="size of the word list (default 2000)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per case; the median is reported")
    parser.add_argument("--seconds", type=float, default=0.3, help="approximate length of one run")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    info, results = done = run(args.words, args.runs, args.seconds)
    if args.json:
        print(json.dumps({"info": info, "results": [asdict(r) for r in results]}, ensure_ascii=False, indent=1))
    else:
        table(args, done)


def main(argv: list[str] | None = None) -> None:
    command_line(argv, "Time imserver.words.WordFilter.check() per message", run, _table)


def _table(args: argparse.Namespace, done: Run) -> None:
    info, results = done
    print(f"WordFilter: {info['words']} words, built in {info['build_ms']} ms; Python {info['python']}; "
          f"median of {args.runs} runs of ~{args.seconds} s")
    print(f"{'case':<36} {'chars':>5} {'µs/msg':>9} {'best':>9} {'msgs/s':>10}  verdict")
    for r in results:
        print(f"{r.case:<36} {r.chars:>5} {r.median_us:>9.2f} {r.min_us:>9.2f} {r.per_second:>10,}  {r.outcome}")


if __name__ == "__main__":
    main()
