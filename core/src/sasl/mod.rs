//! SASL: the proxy as server towards clients and as client towards brokers.
