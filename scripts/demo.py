"""The kafka-proxy demo: a real broker, the proxy in front of it, a client through the proxy.

Starts tansu (memory storage) and target/release/kafka-proxy on loopback, then
with librdkafka (confluent-kafka) through the proxy only: creates a topic,
produces 10 keyed records, consumes them back in a consumer group and prints
them with the broker list the client saw. Stops both processes by PID.
Run through scripts/demo.sh, which installs the peers and builds the binary.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from kafka_e2e.ports import pick_port, pick_proxy_base  # noqa: E402
from kafka_e2e.proxy import KafkaProxy, PortLayout, render_config  # noqa: E402
from kafka_e2e.tansu import TANSU_NODE_ID, TansuBroker  # noqa: E402

TOPIC = "demo-orders"
GROUP = "demo-group"
RECORDS = [(f"customer-{i % 3}", f"order #{i + 1}: {n} x widget") for i, n in enumerate(range(1, 11))]


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    ap = argparse.ArgumentParser(description="kafka-proxy demo")
    ap.add_argument("--runtime", choices=("tokio", "mio"), default="tokio")
    ap.add_argument("--proxy", type=Path, default=REPO / "target/release/kafka-proxy")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, _terminate)

    work = Path(tempfile.mkdtemp(prefix="kafka-proxy-demo-"))
    layout = PortLayout(pick_proxy_base())
    span = set(range(layout.base, layout.broker_port(layout.max_broker_id) + 1))
    tansu = TansuBroker(pick_port(avoid=span), work / "tansu")
    config = work / "proxy.yaml"
    proxy = None
    try:
        tansu.start()
        print(f"broker     tansu 0.6.0 (memory storage), node {TANSU_NODE_ID}, at {tansu.bootstrap}"
              f"  [pid {tansu.process.pid}]")
        config.write_text(render_config([tansu.bootstrap], layout))
        proxy = KafkaProxy(config, layout, args.runtime, work, binary=args.proxy).start()
        print(f"proxy      kafka-proxy --runtime {args.runtime}, bootstrap {proxy.bootstrap}, "
              f"broker {TANSU_NODE_ID} -> {layout.hostname}:{layout.broker_port(TANSU_NODE_ID)}"
              f"  [pid {proxy.process.pid}]")
        print(f"config     {config}:")
        print("".join(f"             {line}\n" for line in config.read_text().splitlines()), end="")
        print(f"logs       {work}")
        print()

        boot = {"bootstrap.servers": proxy.bootstrap}
        admin = AdminClient(boot)
        admin.create_topics([NewTopic(TOPIC, num_partitions=3, replication_factor=1)],
                            request_timeout=15)[TOPIC].result(timeout=15)
        md = admin.list_topics(timeout=10)
        print(f"metadata   the client asked {proxy.bootstrap} and was told:")
        for b in md.brokers.values():
            where = "a proxy address" if b.port != tansu.port else "THE BROKER ITSELF (not rewritten!)"
            print(f"             broker {b.id} at {b.host}:{b.port}   <- {where}")
        parts = len(md.topics[TOPIC].partitions)
        print(f"             topic {TOPIC}: {parts} partitions, leaders "
              f"{sorted({p.leader for p in md.topics[TOPIC].partitions.values()})}")
        print()

        acked = []
        producer = Producer({**boot, "acks": "all", "linger.ms": 5})
        for key, value in RECORDS:
            producer.produce(TOPIC, key=key, value=value,
                             on_delivery=lambda err, m: acked.append((err, m.partition(), m.offset())))
        producer.flush(20)
        errors = [e for e, _, _ in acked if e is not None]
        print(f"produced   {len(acked) - len(errors)}/{len(RECORDS)} records acknowledged through the proxy"
              + (f", errors: {errors}" if errors else ""))

        consumer = Consumer({**boot, "group.id": GROUP, "auto.offset.reset": "earliest",
                             "enable.auto.commit": False,
                             # tansu delays a group's first join by a time growing with the session timeout
                             "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000})
        consumer.subscribe([TOPIC])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < len(RECORDS) and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=100, timeout=0.5):
                if m.error() is None:
                    got.append(m)
        consumer.commit(asynchronous=False)
        consumer.close()
        del admin, producer  # close their connections before the proxy goes away
        print(f"consumed   {len(got)} records in group {GROUP} (offsets committed through the proxy):")
        for m in sorted(got, key=lambda m: (m.partition(), m.offset())):
            print(f"             partition {m.partition()} offset {m.offset():2}  "
                  f"key={m.key().decode():11} value={m.value().decode()}")
        ok = len(got) == len(RECORDS) and not errors
        print()
        print("demo " + ("OK" if ok else "FAILED"))
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("interrupted")
        return 130
    except Exception as e:  # a failed step: say which, with the process log, not a traceback
        print(f"\ndemo FAILED: {e}")
        return 1
    finally:
        print()
        if proxy is not None and proxy.process.running():
            print(f"stopping   kafka-proxy (pid {proxy.process.pid})")
            proxy.stop()
        if tansu.process.running():
            print(f"stopping   tansu (pid {tansu.process.pid})")
            tansu.stop()


if __name__ == "__main__":
    sys.exit(main())
