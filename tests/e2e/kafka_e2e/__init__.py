"""Helpers for the kafka-proxy end-to-end suite: real processes (tansu, the
release proxy binary), real clients (librdkafka via confluent-kafka,
kafka-python, Debian kcat), bounded waits and PID-based cleanup."""
