"""Credit registry: records written per second from `incidents.incident.closed` events, and
score queries (GetStanding) per second over gRPC, beside raw kombu publishing and raw
PostgreSQL inserts and selects in the same run; records imported per second from a department's
100,000-row batch beside a raw COPY of the same rows, and public queries per second over HTTP
beside the raw indexed select of the same enterprises' records. Prints figures; asserts nothing
about speed."""
from __future__ import annotations

import argparse
import csv
import http.client
import io
import json
import os
import random
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import kombu
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from bench.bench_incidents import run_concurrently  # noqa: E402
from demo import services  # noqa: E402
from demo.run import fresh_database  # noqa: E402
from demo.supervisor import Supervisor  # noqa: E402
from shared import broker_users  # noqa: E402
from gridbus.credit.v1 import credit_pb2 as pb, credit_pb2_grpc  # noqa: E402
from services.credit.domain import USCC_CHARS, uscc_check_char  # noqa: E402
from shared import tls  # noqa: E402
from shared.auth import SERVICE, Principal, mint_token  # noqa: E402
from shared.health import check_grpc, check_nameko, wait_until  # noqa: E402


def uscc(rng) -> str:
    body = "91330100" + "".join(rng.choice(USCC_CHARS) for _ in range(9))
    return body + uscc_check_char(body)


def closed_event(code: str) -> dict:
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/gridbus/incidents",
            "type": "incidents.incident.closed", "subject": "incidents/x",
            "time": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"), "datacontenttype": "application/json",
            "sequence": "1", "data": {"incident_id": str(uuid.uuid4()), "category": "0107", "priority": 3,
                                      "grid_code": "330102001001001", "violation_confirmed": True,
                                      "subject": {"type": "enterprise", "ref": code},
                                      "actor": {"id": "bench", "role": "dispatcher"}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--subjects", type=int, default=200)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100_000, help="rows in the department's batch")
    parser.add_argument("--public-queries", type=int, default=4000)
    args = parser.parse_args()

    url = os.environ.get("GRIDBUS_BENCH_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/gridbus_bench_credit")
    os.environ["GRIDBUS_DATABASE_URL"] = url
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    from services.credit import chain
    from services.credit import operations as ops
    from services.registry import migrate
    from shared.config import settings
    from shared.outbox import CONTENT_TYPE, events_exchange
    s = settings()
    fresh_database(url)
    migrate(url)
    rng = random.Random(5)
    system = Principal("bench", SERVICE, ())
    subjects = [ops.register(system, type_="enterprise", code=uscc(rng), name=f"Bench Co. {i}") for i in range(args.subjects)]

    log_dir = ROOT / ".run" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    port = 50000 + os.getpid() % 10000
    public_port = port + 1
    sup = Supervisor({**os.environ, "GRIDBUS_CREDIT_GRPC_PORT": str(port),
                      "GRIDBUS_CREDIT_PUBLIC_HTTP_PORT": str(public_port),
                      "GRIDBUS_PUBLIC_RATE_LIMIT": "100000000/minute"}, log_dir)
    services.start(sup, ["credit"])
    try:
        wait_until(lambda: check_grpc(f"127.0.0.1:{port}", timeout=1))
        wait_until(lambda: check_nameko(s.amqp_uri, "credit", timeout=2))
        events = [closed_event(rng.choice(subjects).code) for _ in range(args.events)]
        bodies = [json.dumps(e).encode() for e in events]

        # Raw broker: publishing the same bodies, persistent, with confirms, to a bench queue.
        with tls.amqp_connection(s.amqp_uri, s, transport_options={"confirm_publish": True}) as conn:
            q = kombu.Queue(f"bench-raw-{uuid.uuid4().hex[:6]}", exclusive=True, auto_delete=True)
            q(conn.default_channel).declare()
            producer = conn.Producer()
            t0 = time.perf_counter()
            for b in bodies:
                producer.publish(b, exchange="", routing_key=q.name, content_type=CONTENT_TYPE, delivery_mode=2)
            raw_publish = len(bodies) / (time.perf_counter() - t0)

        # Raw PostgreSQL: inserting rows of the same shape, one transaction each.
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_records (id uuid PRIMARY KEY, subject text, payload text, hash text)")
            t0 = time.perf_counter()
            for b in bodies:
                with conn.transaction():
                    conn.execute("INSERT INTO bench_records VALUES (%s, %s, %s, md5(%s))", (uuid.uuid4(), "s", b, b))
            raw_insert = len(bodies) / (time.perf_counter() - t0)

        with psycopg.connect(dsn) as conn:
            before = conn.execute("SELECT count(*) FROM credit.records").fetchone()[0]
        # As incidents' broker user, whose events credit takes (shared/broker_users.py).
        incidents_uri = sup.env[broker_users.env_name("incidents")]
        with tls.amqp_connection(incidents_uri, s, transport_options={"confirm_publish": True}) as conn:
            producer = conn.Producer()
            t0 = time.perf_counter()
            for e, b in zip(events, bodies):
                producer.publish(b, exchange=events_exchange(), routing_key=e["type"], content_type=CONTENT_TYPE,
                                 content_encoding="utf-8", delivery_mode=2, message_id=e["id"],
                                 user_id=broker_users.credentials(incidents_uri)[0], declare=[events_exchange()])
        with psycopg.connect(dsn, autocommit=True) as conn:
            while conn.execute("SELECT count(*) FROM credit.records").fetchone()[0] < before + len(events):
                time.sleep(0.05)
                if time.perf_counter() - t0 > 600:
                    break
            written = conn.execute("SELECT count(*) FROM credit.records").fetchone()[0] - before
        records_rate = written / (time.perf_counter() - t0)

        token = mint_token("bench-dept", "department", ["330100"])
        md = [("authorization", f"Bearer {token}")]
        picks = [rng.choice(subjects).id for _ in range(args.queries)]
        t0 = time.perf_counter()
        run_concurrently(args.clients, picks,
                         lambda: credit_pb2_grpc.CreditServiceStub(tls.channel(f"127.0.0.1:{port}")),
                         lambda stub, sid: stub.GetStanding(pb.GetStandingRequest(subject_id=sid), metadata=md))
        score_rate = len(picks) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        run_concurrently(args.clients, picks, lambda: psycopg.connect(dsn, autocommit=True),
                         lambda conn, sid: conn.execute("SELECT kind, severity, valid_from, valid_until, supersedes "
                                                        "FROM credit.records WHERE subject_id = %s", (sid,)).fetchall())
        raw_select = len(picks) / (time.perf_counter() - t0)
        with psycopg.connect(dsn) as conn:
            chain_rows = conn.execute("SELECT count(*) FROM credit.records").fetchone()[0]
        imported = bench_import(system, dsn, args.batch, rng)
        wait_until(lambda: check_public(public_port))
        public = bench_public(dsn, public_port, imported["codes"], args.public_queries, args.clients, rng)
        with psycopg.connect(dsn) as conn:
            chain_rows = conn.execute("SELECT count(*) FROM credit.records").fetchone()[0]
        t0 = time.perf_counter()
        verdict = chain.verify(system)
        verify_rate = verdict.checked / (time.perf_counter() - t0)
    finally:
        sup.stop()

    print(f"\nCredit registry, {args.subjects} enterprises, {os.cpu_count()} cores")
    print(f"{'records from events':<40} {records_rate:>10,.0f}/s   ({written} of {len(events)} events)")
    print(f"{'  raw kombu publish (persistent, confirms)':<40} {raw_publish:>10,.0f}/s   ratio {records_rate / raw_publish:.3f}")
    print(f"{'  raw PostgreSQL insert (a commit each)':<40} {raw_insert:>10,.0f}/s   ratio {records_rate / raw_insert:.3f}")
    print(f"{'GetStanding over gRPC':<40} {score_rate:>10,.0f}/s   ({args.clients} clients)")
    print(f"{'  raw select of a subject records':<40} {raw_select:>10,.0f}/s   ratio {score_rate / raw_select:.3f}")
    print(f"{'import of a department batch':<40} {imported['rate']:>10,.0f} rows/s   ({imported['inserted']:,} of "
          f"{args.batch:,} rows in {imported['seconds']:.1f} s, {imported['refused']} refused)")
    print(f"{'  raw COPY of the same rows':<40} {imported['raw']:>10,.0f} rows/s   ratio {imported['rate'] / imported['raw']:.3f}")
    print(f"{'  its events published, start to last':<40} {imported['events_rate']:>10,.0f} events/s")
    print(f"{'public queries over HTTP':<40} {public['rate']:>10,.0f}/s   ({args.clients} clients, by code)")
    print(f"{'  raw indexed select of the same':<40} {public['raw']:>10,.0f}/s   ratio {public['rate'] / public['raw']:.3f}")
    print(f"{'VerifyChain':<40} {verify_rate:>10,.0f} records/s over {chain_rows} ({'intact' if verdict.broken is None else 'BROKEN'})")


COLUMNS = ["authority", "decision_number", "decision_date", "kind", "subject_code", "subject_name", "legal_basis",
           "severity", "list"]


def batch_rows(n: int, rng) -> tuple[list[list[str]], list[str]]:
    """A department's batch: penalties and list entries over n/5 enterprises, decided in the last year."""
    from services.credit.intake import today
    from datetime import timedelta
    codes = [uscc(rng) for _ in range(max(1, n // 5))]
    rows = []
    for i in range(n):
        code = codes[i % len(codes)]
        decided = (today() - timedelta(days=rng.randint(0, 360))).isoformat()
        if i % 10 == 9:
            rows.append(["FY-COURT", f"(2026)执{i:07d}号", decided, "list_entry", code, f"Batch Co. {code[-6:]}",
                         "SPC rules, art. 1", "", "court.dishonest_debtors"])
        else:
            rows.append(["SCJG-MARKET", f"市监罚〔2026〕{i:07d}号", decided, "penalty", code, f"Batch Co. {code[-6:]}",
                         "行政处罚法 第二十八条", str(rng.randint(1, 4)), ""])
    return rows, codes


def bench_import(system, dsn: str, n: int, rng) -> dict:
    """intake.import_records (what `gridbus credit import` runs) on n rows, then a raw COPY of
    the same CSV into a plain table of the same columns, in the same database."""
    import yaml

    from services.credit import intake, sharing
    with open(intake.DIRECTORY_FILE, encoding="utf-8") as f:
        intake.load_authorities(system, yaml.safe_load(f))
    rows, codes = batch_rows(n, rng)
    text = io.StringIO()
    csv.writer(text).writerows([COLUMNS, *rows])
    t0 = time.perf_counter()
    report = intake.import_records(system, sharing.read_csv(io.StringIO(text.getvalue())))
    seconds = time.perf_counter() - t0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_batch (authority text, decision_number text, decision_date date, kind text, "
                     "subject_code text, subject_name text, legal_basis text, severity int, list text)")
        t1 = time.perf_counter()
        with conn.cursor().copy("COPY bench_batch FROM STDIN (FORMAT csv, HEADER)") as copy:
            copy.write(text.getvalue())
        raw = n / (time.perf_counter() - t1)
        t2 = time.perf_counter()
        while conn.execute("SELECT count(*) FROM credit.outbox WHERE published_at IS NULL").fetchone()[0]:
            time.sleep(0.2)
            if time.perf_counter() - t2 > 900:
                break
        events_rate = report.count(intake.INSERTED) / (time.perf_counter() - t2 + seconds)
    return {"rate": report.count(intake.INSERTED) / seconds, "raw": raw, "seconds": seconds, "codes": codes,
            "inserted": report.count(intake.INSERTED), "refused": report.count(intake.REFUSED),
            "events_rate": events_rate}


def check_public(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200


def bench_public(dsn: str, port: int, codes: list[str], n: int, clients: int, rng) -> dict:
    picks = [rng.choice(codes) for _ in range(n)]

    def get(conn, code):
        conn.request("GET", f"/credit/v1/enterprises/{code}")
        reply = conn.getresponse()
        reply.read()
        assert reply.status == 200, reply.status
    t0 = time.perf_counter()
    run_concurrently(clients, picks, lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=30), get)
    rate = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    run_concurrently(clients, picks, lambda: psycopg.connect(dsn, autocommit=True),
                     lambda conn, code: conn.execute(
                         "SELECT r.* FROM credit.subjects s JOIN credit.records r ON r.subject_id = s.id "
                         "WHERE s.uscc = %s", (code,)).fetchall())
    return {"rate": rate, "raw": n / (time.perf_counter() - t0)}


if __name__ == "__main__":
    main()
