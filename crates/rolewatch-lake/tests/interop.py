"""Reads a rolewatch lake with DuckDB and pyarrow, as an analyst would, and prints what each
engine sees as one JSON object. Usage: interop.py LAKE_DIR"""

import json
import sys

import duckdb
import pyarrow.dataset as ds


def main(lake: str) -> None:
    con = duckdb.connect()
    events = f"read_parquet('{lake}/events/**/*.parquet', hive_partitioning=true)"
    dead = f"read_parquet('{lake}/dead_letters/*.parquet')"
    report = {
        "duckdb_events": con.execute(f"SELECT count(*) FROM {events}").fetchone()[0],
        "duckdb_dead_letters": con.execute(f"SELECT count(*) FROM {dead}").fetchone()[0],
        "duckdb_hours": [
            [int(hour), count]
            for hour, count in con.execute(
                f"SELECT hour, count(*) FROM {events} GROUP BY hour ORDER BY hour"
            ).fetchall()
        ],
    }
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {events})").fetchall())
    report["duckdb_ts_type"] = types["ts"]
    report["duckdb_objects_type"] = types["objects"]

    dataset = ds.dataset(f"{lake}/events", format="parquet", partitioning="hive")
    table = dataset.to_table()
    report["pyarrow_events"] = table.num_rows
    report["pyarrow_ts_type"] = str(table.schema.field("ts").type)
    hours = {}
    for hour in table.column("hour").to_pylist():
        hours[int(hour)] = hours.get(int(hour), 0) + 1
    report["pyarrow_hours"] = [[hour, count] for hour, count in sorted(hours.items())]
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
