//! Drives `kafka-proxy-core` with a minimal mio/epoll loop.
