"""The hot-path benchmark (NFR-3) still runs against the server's current code; timings are never asserted."""

from __future__ import annotations

import json

import pytest

from imserver.bench import hotpath


def test_the_table_has_every_case(capsys: pytest.CaptureFixture[str]) -> None:
    hotpath.main(["--runs", "1", "--seconds", "0.001", "--words", "200"])
    out = capsys.readouterr().out
    assert "150 bytes UTF-8" in out
    for case in ("1 decode", "2 sensitive-word", "3 visibility loop", "4 views.message + encode",
                 "5 whole path, 50 members", "5 whole path, 5,000 members", "mention-only"):
        assert case in out


def test_the_json_counts_views_as_the_rules_say(capsys: pytest.CaptureFixture[str]) -> None:
    hotpath.main(["--runs", "1", "--seconds", "0.001", "--words", "200", "--json"])
    report = json.loads(capsys.readouterr().out)
    results = {r["case"]: r for r in report["results"]}
    assert report["info"]["text_bytes"] == 150
    # Staff and her husband see her for real, her own devices with her cid too; the other 45 see her pseudonym.
    assert results["3 visibility loop (a+b+c)"]["note"] == "sender 1, real 4, masked 45"
    assert results["5 whole path, 5,000 members"]["views"] == 3
    mention = results["5 whole path, 50 members, mention-only"]
    assert mention["views"] == 3 and "sender/masked target 1" in mention["note"] and "hidden 46" in mention["note"]
    for result in report["results"]:
        assert result["median_us"] > 0 and result["per_second"] > 0
