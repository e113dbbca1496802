"""Hive partitions: columns read from folder names, checked against the rows, and pruning."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.conftest import run_cli
from tests.test_load import checksum, sends_frame
from upshot.config import Config
from upshot.errors import EXIT_USAGE, InputError, UsageError
from upshot.load import load
from upshot.partitions import Pruning, values


def test_folder_values_are_parsed_as_hive_writes_them():
    path = "/logs/sends/Date=2026-11-16/channel=in%2Dapp/x=/part=0.parquet"
    # the file name is not a folder; keys take the contract's spelling; %XX is decoded
    assert values(path) == {"date": "2026-11-16", "channel": "in-app", "x": ""}
    assert values("s3://b/date=1/date=2/f.csv") == {"date": "2"}
    assert values("plain/folders/f.csv") == {}


def _tree(root: Path, days: list[str], channels: list[str]) -> list[str]:
    paths = []
    for day in days:
        for channel in channels:
            folder = root / f"date={day}" / f"channel={channel}"
            folder.mkdir(parents=True)
            paths.append(str(folder / "part-0.parquet"))
    return paths


def test_pruning_keeps_the_files_whose_folders_pass_every_condition(tmp_path):
    files = _tree(tmp_path, ["2026-11-15", "2026-11-16", "2026-11-17"], ["push", "email"])
    pruning = Pruning.parse(["channel=push", "Channel=sms"], date(2026, 11, 16), date(2026, 11, 17))
    kept, pruned = pruning.select(files)
    assert [Path(f).parent.parent.name for f in kept] == ["date=2026-11-16", "date=2026-11-17"]
    assert {Path(f).parent.name for f in kept} == {"channel=push"}
    assert pruned == 4
    # bounds are inclusive, either may be open
    assert len(Pruning.parse([], since=date(2026, 11, 17)).select(files)[0]) == 2
    assert len(Pruning.parse([], until=date(2026, 11, 17)).select(files)[0]) == 6
    assert Pruning().select(files) == (files, 0)
    # a file outside the folder a condition reads does not pass it
    assert Pruning.parse(["channel=push"]).select([*files, str(tmp_path / "x.parquet")])[1] == 4


def test_pruning_refuses_conditions_no_file_can_meet(tmp_path):
    files = _tree(tmp_path, ["2026-11-16"], ["push"])
    with pytest.raises(UsageError, match=r"no input file is under a chanel= folder"):
        Pruning.parse(["chanel=push"]).select(files)
    with pytest.raises(UsageError, match=r"--since/--until: no input file is under a date="):
        Pruning.parse([], since=date(2026, 1, 1)).select([str(tmp_path / "a.parquet")])
    with pytest.raises(UsageError, match=r"after --until"):
        Pruning.parse([], date(2026, 11, 17), date(2026, 11, 16))
    with pytest.raises(UsageError, match=r"expected KEY=VALUE"):
        Pruning.parse(["push"])
    bad = str(tmp_path / "date=yesterday" / "f.parquet")
    with pytest.raises(InputError, match=r"date=yesterday.*folder date='yesterday' is not a date"):
        Pruning.parse([], since=date(2026, 1, 1)).select([*files, bad])


def _write_by_channel(root: Path, frame: pl.DataFrame, day: str = "2026-11-16") -> None:
    for (channel,), part in frame.partition_by("channel", as_dict=True).items():
        folder = root / f"date={day}" / f"channel={channel}"
        folder.mkdir(parents=True, exist_ok=True)
        part.drop("channel").write_parquet(folder / "part-0.parquet")


def test_a_column_the_files_lack_is_read_from_its_folder(tmp_path):
    frame = sends_frame(200)
    _write_by_channel(tmp_path / "hive", frame)
    flat = tmp_path / "flat.parquet"
    frame.write_parquet(flat)
    hive_db, flat_db = tmp_path / "hive.duckdb", tmp_path / "flat.duckdb"
    report = load(str(hive_db), "sends", [str(tmp_path / "hive")], config=Config())
    load(str(flat_db), "sends", [str(flat)], config=Config())
    assert report.document()["totals"]["rows_quarantined"] == 0
    assert all(f.ignored_columns == () for f in report.files)
    # the same rows as the unpartitioned file, channel included
    assert checksum(hive_db, "sends") == checksum(flat_db, "sends")


def test_rows_that_contradict_their_folder_are_quarantined(tmp_path):
    frame = sends_frame(100)
    folder = tmp_path / "date=2026-11-16" / "channel=push"
    folder.mkdir(parents=True)
    # a mis-partitioned write: every row lands in channel=push, whatever its channel
    frame.write_parquet(folder / "part-0.parquet")
    db = tmp_path / "w.duckdb"
    report = load(str(db), "sends", [str(tmp_path)], config=Config(), max_reject_rate=1.0)
    emails = frame.filter(pl.col("channel") == "email")
    assert report.reasons == {"partition_mismatch": emails.height}
    assert checksum(db, "sends")[0] == frame.height - emails.height
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT row_number, column_name, raw_value FROM quarantine ORDER BY row_number"
        ).fetchall()
    expected = frame.with_row_index("row", 1).filter(pl.col("channel") == "email")["row"]
    assert [r[0] for r in rows] == expected.to_list()
    assert {(r[1], r[2]) for r in rows} == {("channel", "email")}


def test_hives_null_partition_is_a_null_value(tmp_path):
    folder = tmp_path / "channel=__HIVE_DEFAULT_PARTITION__"
    folder.mkdir()
    sends_frame(10).drop("channel").write_parquet(folder / "part-0.parquet")
    db = tmp_path / "w.duckdb"
    report = load(str(db), "sends", [str(tmp_path)], config=Config(), max_reject_rate=1.0)
    assert report.reasons == {"null_required": 10}


def test_the_same_bytes_in_two_partitions_are_two_files(tmp_path):
    for channel in ("push", "sms"):
        (tmp_path / f"channel={channel}").mkdir()
    sends_frame(30).drop("channel").write_parquet(tmp_path / "channel=push" / "part-0.parquet")
    shutil.copyfile(
        tmp_path / "channel=push" / "part-0.parquet", tmp_path / "channel=sms" / "part-0.parquet"
    )
    db = tmp_path / "w.duckdb"
    report = load(str(db), "sends", [str(tmp_path)], config=Config())
    # not skipped as a file seen before: its folder makes it other rows (here, with the
    # same send_ids, which the key dedupe then skips)
    assert [(f.status, f.duplicates_skipped) for f in report.files] == [
        ("loaded", 0),
        ("loaded", 30),
    ]


def test_pruned_files_are_never_opened(tmp_path, monkeypatch):
    import upshot.load

    frame = sends_frame(120)
    days = ("2026-11-15", "2026-11-16", "2026-11-17")
    for day, part in zip(days, frame.iter_slices(40), strict=True):
        _write_by_channel(tmp_path / "hive", part, day)
    opened: list[str] = []
    real = upshot.load.fingerprint
    monkeypatch.setattr(
        upshot.load, "fingerprint", lambda path, con: opened.append(path) or real(path, con)
    )
    db = tmp_path / "w.duckdb"
    pruning = Pruning.parse(["channel=push"], since=date(2026, 11, 16))
    report = load(str(db), "sends", [str(tmp_path / "hive")], config=Config(), pruning=pruning)
    assert report.pruned == 4
    assert {(Path(p).parent.parent.name, Path(p).parent.name) for p in opened} == {
        ("date=2026-11-16", "channel=push"),
        ("date=2026-11-17", "channel=push"),
    }
    want = frame.slice(40, 80).filter(pl.col("channel") == "push").height
    assert checksum(db, "sends")[0] == want


def test_the_cli_prunes_reports_and_refuses(tmp_path):
    _write_by_channel(tmp_path / "hive", sends_frame(60))
    db = str(tmp_path / "w.duckdb")
    result = run_cli(
        "--db",
        db,
        "load",
        "sends",
        str(tmp_path / "hive"),
        "--partition",
        "channel=email",
        "--until",
        "2026-11-16",
        "--json",
    )
    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert document["totals"]["files"] == 1
    assert document["totals"]["files_pruned"] == 1
    assert "channel=email" in document["files"][0]["source"]
    hive = str(tmp_path / "hive")
    refused = run_cli("--db", db, "load", "sends", hive, "--partition", "region=eu")
    assert refused.code == EXIT_USAGE
    assert "no input file is under a region= folder" in refused.err
    bad = run_cli("--db", db, "load", "sends", str(tmp_path / "hive"), "--since", "16/11/2026")
    assert bad.code == EXIT_USAGE


def test_text_formats_under_hive_folders_keep_their_row_numbers(tmp_path):
    import gzip

    folder = tmp_path / "date=2026-11-16" / "channel=email"
    folder.mkdir(parents=True)
    header = "send_id,user_id,message_class,decided_at,treated,propensity,randomized"
    lines = [header] + [f"s{i},u{i},promo,2026-11-16 10:00:00,true,0.5,false" for i in range(5)]
    lines.insert(3, "s9,u9,promo,2026-11-16 10:00:00,true")  # data row 3: too few fields
    lines[5] = lines[5].replace("true", "maybe")  # data row 5: not a boolean
    (folder / "part-0.csv").write_text("\n".join(lines) + "\n")
    records = [
        {"event_id": f"e{i}", "user_id": f"u{i}", "occurred_at": "2026-11-16T11:00:00Z",
         "event": "open"}
        for i in range(3)
    ]  # fmt: skip
    with gzip.open(folder / "part-1.ndjson.gz", "wt") as f:
        f.write("\n".join(json.dumps(r) for r in records) + "\n{not json\n")
    db = str(tmp_path / "w.duckdb")
    sends = load(db, "sends", [str(folder / "part-0.csv")], config=Config(), max_reject_rate=1)
    assert sends.reasons == {"bad_boolean": 1, "malformed_row": 1}
    # outcomes have no channel column: the folder is not data for them, only an index
    outcomes = load(
        db, "outcomes", [str(folder / "part-1.ndjson.gz")], config=Config(), max_reject_rate=1
    )
    assert outcomes.reasons == {"malformed_json": 1}
    assert outcomes.files[0].rows_accepted == 3
    with duckdb.connect(db, read_only=True) as con:
        rows = con.execute(
            "SELECT row_number, reason FROM quarantine ORDER BY table_name DESC, row_number"
        ).fetchall()
        channels = con.execute("SELECT DISTINCT channel FROM sends").fetchall()
    assert rows == [(3, "malformed_row"), (5, "bad_boolean"), (4, "malformed_json")]
    assert channels == [("email",)]
