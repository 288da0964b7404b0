//! Benchmark load driver: a librdkafka producer or consumer moving fixed-size records
//! as fast as one client instance can, printing one JSON line of results.
//!
//! ```text
//! loadgen produce --bootstrap HOST:PORT --topic T --records N [--record-size 1024] [-X key=value]...
//! loadgen consume --bootstrap HOST:PORT --topic T --records N [--partitions 1] [-X key=value]...
//! ```
//! `-X` passes librdkafka properties (as rdkafka_performance does). Every run is
//! bounded by `--timeout SECONDS` (default 600).

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

/// Command line of one run.
struct Args {
    mode: Mode,
    bootstrap: String,
    topic: String,
    records: u64,
    record_size: usize,
    partitions: i32,
    timeout: Duration,
    props: Vec<(String, String)>,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Produce,
    Consume,
}

fn usage() -> String {
    "usage: loadgen produce|consume --bootstrap HOST:PORT --topic T --records N \
     [--record-size BYTES] [--partitions N] [--timeout SECONDS] [-X key=value]..."
        .to_string()
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mode = match argv.next().as_deref() {
        Some("produce") => Mode::Produce,
        Some("consume") => Mode::Consume,
        _ => return Err(usage()),
    };
    let mut args = Args {
        mode,
        bootstrap: String::new(),
        topic: String::new(),
        records: 0,
        record_size: 1024,
        partitions: 1,
        timeout: Duration::from_secs(600),
        props: Vec::new(),
    };
    while let Some(flag) = argv.next() {
        let value = argv.next().ok_or_else(|| format!("{flag} needs a value\n{}", usage()))?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--bootstrap" => args.bootstrap = value,
            "--topic" => args.topic = value,
            "--records" => args.records = number(&value)?,
            "--record-size" => {
                args.record_size = usize::try_from(number(&value)?).map_err(|e| e.to_string())?
            }
            "--partitions" => args.partitions = i32::try_from(number(&value)?).map_err(|e| e.to_string())?,
            "--timeout" => args.timeout = Duration::from_secs(number(&value)?),
            "-X" => {
                let (k, v) = value.split_once('=').ok_or_else(|| format!("-X {value}: want key=value"))?;
                args.props.push((k.to_string(), v.to_string()));
            }
            _ => return Err(format!("unknown flag {flag}\n{}", usage())),
        }
    }
    if args.bootstrap.is_empty() || args.topic.is_empty() || args.records == 0 {
        return Err(usage());
    }
    Ok(args)
}

/// What one run measured.
struct Outcome {
    records: u64,
    bytes: u64,
    errors: u64,
    first_error: Option<String>,
    seconds: f64,
}

/// Counts delivery reports; the first error is kept for the report.
struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((err, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| err.to_string());
                }
            }
        }
    }
}

fn config(args: &Args) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &args.bootstrap);
    for (k, v) in &args.props {
        cfg.set(k, v);
    }
    cfg
}

fn produce(args: &Args) -> Result<Outcome, String> {
    let context = Deliveries {
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        first_error: std::sync::Mutex::new(None),
    };
    let producer: BaseProducer<Deliveries> =
        config(args).create_with_context(context).map_err(|e| format!("producer: {e}"))?;
    // Not compressible in any useful way, and never the same bytes twice in a row.
    let payload: Vec<u8> = (0..args.record_size).map(|i| (i * 31 + 7) as u8).collect();
    let start = Instant::now();
    let deadline = start + args.timeout;
    let mut sent = 0u64;
    while sent < args.records {
        let record = BaseRecord::<(), [u8]>::to(&args.topic).payload(&payload[..]);
        match producer.send(record) {
            Ok(()) => sent += 1,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(format!("send: {e}")),
        }
        if Instant::now() > deadline {
            return Err(format!("timed out after {sent} records sent"));
        }
        if sent.is_multiple_of(1024) {
            producer.poll(Duration::ZERO);
        }
    }
    let remaining = deadline.saturating_duration_since(Instant::now());
    producer.flush(remaining).map_err(|e| format!("flush: {e}"))?;
    let seconds = start.elapsed().as_secs_f64();
    let ctx = producer.context();
    let ok = ctx.ok.load(Ordering::Relaxed);
    let errors = ctx.failed.load(Ordering::Relaxed);
    let first_error = ctx.first_error.lock().ok().and_then(|g| g.clone());
    Ok(Outcome { records: ok, bytes: ok * args.record_size as u64, errors, first_error, seconds })
}

fn consume(args: &Args) -> Result<Outcome, String> {
    let mut cfg = config(args);
    cfg.set("enable.auto.commit", "false");
    if !args.props.iter().any(|(k, _)| k == "group.id") {
        cfg.set("group.id", "kafka-proxy-bench");
    }
    let consumer: BaseConsumer = cfg.create().map_err(|e| format!("consumer: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..args.partitions {
        tpl.add_partition_offset(&args.topic, p, Offset::Beginning).map_err(|e| format!("assign: {e}"))?;
    }
    consumer.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
    let mut records = 0u64;
    let mut bytes = 0u64;
    let mut errors = 0u64;
    let mut first_error = None;
    let mut start = None;
    let deadline = Instant::now() + args.timeout;
    while records < args.records {
        if Instant::now() > deadline {
            return Err(format!("timed out after {records} records consumed"));
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(msg)) => {
                // The clock starts at the first record: connection and assignment are not load.
                start.get_or_insert_with(Instant::now);
                records += 1;
                bytes += msg.payload_len() as u64;
            }
            Some(Err(e)) => {
                errors += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    let seconds = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    Ok(Outcome { records, bytes, errors, first_error, seconds })
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let result = match args.mode {
        Mode::Produce => produce(&args),
        Mode::Consume => consume(&args),
    };
    match result {
        Ok(o) => {
            let mb_per_s = if o.seconds > 0.0 { o.bytes as f64 / 1e6 / o.seconds } else { 0.0 };
            println!(
                "{{\"mode\":{},\"records\":{},\"bytes\":{},\"errors\":{},\"seconds\":{:.3},\"mb_per_s\":{:.1},\"first_error\":{}}}",
                json_string(if args.mode == Mode::Produce { "produce" } else { "consume" }),
                o.records,
                o.bytes,
                o.errors,
                o.seconds,
                mb_per_s,
                o.first_error.as_deref().map_or("null".to_string(), json_string),
            );
            if o.errors > 0 || o.records < args.records { ExitCode::from(1) } else { ExitCode::SUCCESS }
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(1)
        }
    }
}
