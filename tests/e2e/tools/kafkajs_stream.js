// A kafkajs 2.2.4 producer (acks=all) and group consumer streaming through one
// bootstrap address, for the restart test: the third client library.
//
// Usage: node kafkajs_stream.js BOOTSTRAP TOPIC GROUP
// Prints one JSON line per second: {"acked": N, "failed": N, "consumed": N}.
// On a line "stop" on stdin (or after 150 s) it stops producing, waits up to
// 45 s until every acknowledged record was consumed, and prints
// {"final": true, "acked": N, "failed": [...], "consumed": N, "lost": [...]}.
'use strict';

const { Kafka, logLevel } = require('kafkajs');

const [bootstrap, topic, group] = process.argv.slice(2);
const kafka = new Kafka({
  clientId: 'kafkajs-restart',
  brokers: [bootstrap],
  logLevel: logLevel.NOTHING,
  retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 30 },
  requestTimeout: 10000,
});

const acked = new Set();
const failed = [];
const consumed = new Set();
let stopping = false;

async function produce(producer) {
  let seq = 0;
  while (!stopping) {
    const batch = [];
    for (let i = 0; i < 10; i++, seq++) {
      batch.push({ key: `key-${seq % 10}`, value: `j-${String(seq).padStart(7, '0')}` });
    }
    try {
      await producer.send({ topic, acks: -1, messages: batch });
      batch.forEach((m) => acked.add(m.value));
    } catch (e) {
      batch.forEach((m) => failed.push(`${m.value}: ${e.message}`));
    }
  }
}

async function main() {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }] });
  await admin.disconnect();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 1000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => { consumed.add(message.value.toString()); } });
  const ticker = setInterval(() => {
    console.log(JSON.stringify({ acked: acked.size, failed: failed.length, consumed: consumed.size }));
  }, 1000);
  const stop = new Promise((resolve) => {
    process.stdin.on('data', (d) => { if (d.toString().includes('stop')) resolve(); });
    setTimeout(resolve, 150000);
  });
  const producing = produce(producer);
  await stop;
  stopping = true;
  await producing;
  const deadline = Date.now() + 45000;
  while (Date.now() < deadline && [...acked].some((v) => !consumed.has(v))) {
    await new Promise((r) => setTimeout(r, 200));
  }
  clearInterval(ticker);
  const lost = [...acked].filter((v) => !consumed.has(v)).sort();
  console.log(JSON.stringify({ final: true, acked: acked.size, failed, consumed: consumed.size, lost }));
  await consumer.disconnect();
  await producer.disconnect();
}

main().then(() => process.exit(0), (e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(1); });
